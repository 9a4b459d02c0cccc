"""Run the service: the app under uvicorn (``serve``) or a standalone worker (``worker``)."""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType

import uvicorn
from sqlalchemy import Engine

from recoverkit.config import Settings
from recoverkit.errors import ConfigurationError
from recoverkit.logs import configure_logging
from recoverkit.plugins import Plugins
from recoverkit.service.app import create_app
from recoverkit.service.runtime import ProviderRegistry, build_client, startup_summary
from recoverkit.service.worker import Worker
from recoverkit.store import crypto, is_current, make_engine

__all__ = ["engine_for", "load_plugins", "logging_from", "run_server", "run_worker"]

log = logging.getLogger(__name__)


def engine_for(settings: Settings) -> Engine:
    """The engine ``database_url`` names, with the configured SQLite durability (and the
    payload encryption keys, when set: docs/security.md)."""
    crypto.configure([k.get_secret_value() for k in settings.payload_encryption_keys])
    return make_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)


def logging_from(settings: Settings) -> None:
    """Configure logging from ``log_format``, ``log_level`` and ``access_log``."""
    configure_logging(
        level=settings.log_level, fmt=settings.log_format, access_log=settings.access_log
    )


def load_plugins(extra: Sequence[str] = ()) -> Plugins:
    """Installed plugins plus ``module:attribute`` objects (an embedding app's own plugins)."""
    objects: list[object] = []
    for spec in extra:
        module_name, _, attr = spec.partition(":")
        try:
            module = importlib.import_module(module_name)
            objects.append(getattr(module, attr) if attr else module)
        except (ImportError, AttributeError) as exc:
            raise ConfigurationError(f"cannot load plugin {spec!r}: {exc}") from None
    return Plugins(objects)


def run_server(
    settings: Settings,
    plugins: Plugins,
    *,
    host: str | None = None,
    port: int | None = None,
    run_worker: bool | None = None,
) -> None:
    """Serve the app with uvicorn until interrupted (``recoverkit serve``)."""
    logging_from(settings)
    engine = engine_for(settings)
    app = create_app(settings, plugins, engine, run_worker=run_worker)
    uvicorn.run(
        app,
        host=host or settings.host,
        port=settings.port if port is None else port,
        log_config=None,  # ours (logging_from), not uvicorn's
        log_level=settings.log_level.lower(),
        access_log=settings.access_log,
        lifespan="on",
    )


def run_worker(settings: Settings, plugins: Plugins, stop: threading.Event | None = None) -> None:
    """Run a standalone worker until SIGINT/SIGTERM (``recoverkit worker``)."""
    logging_from(settings)
    engine = engine_for(settings)
    if not is_current(engine):
        raise ConfigurationError("database migrations are not current: run recoverkit db upgrade")
    stop = stop or threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
    client = build_client(settings)
    providers = ProviderRegistry(settings, plugins)
    message, fields = startup_summary(settings, providers.names(), "standalone")
    log.info(message, extra=fields)
    worker = Worker(
        settings=settings,
        plugins=plugins,
        engine=engine,
        providers=providers,
        client=client,
    )
    try:
        worker.run(stop)
    finally:
        worker.close()
        client.close()
