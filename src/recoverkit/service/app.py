"""The ASGI app (Starlette): PSP webhook receiver, merchant endpoints, health and metrics.

``create_app(settings, plugins, engine)`` builds it; ``recoverkit serve`` and
``python -m recoverkit.service`` run it under uvicorn. Provider methods and database calls are
synchronous and run in worker threads, never on the event loop.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Mapping

from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from recoverkit.client import RecoverClient
from recoverkit.config import Settings
from recoverkit.errors import (
    ConfigurationError,
    MalformedWebhookError,
    SignatureError,
    UnknownProviderError,
    WebhookError,
)
from recoverkit.plugins import Plugins
from recoverkit.provider import Provider, WebhookRequest
from recoverkit.service import merchant
from recoverkit.service.http import BodyTimeout, BodyTooLarge, detail, one_line, read_body
from recoverkit.service.ingest import InboxWriter
from recoverkit.service.metrics import Metrics
from recoverkit.service.runtime import ProviderRegistry, build_client, startup_summary, utcnow
from recoverkit.service.state import ServiceState
from recoverkit.service.worker import Worker
from recoverkit.store import current_revision, head_revision

__all__ = ["create_app"]

log = logging.getLogger(__name__)

#: The 401 text for a PSP webhook whose signature failed (the reason is logged, not returned).
SIGNATURE_REFUSED = "webhook signature verification failed; the reason is in the server log"


async def receive_webhook(request: Request) -> Response:
    """``POST /webhooks/{provider}``: 2xx with the provider's ack only after the commit."""
    state: ServiceState = request.app.state.service
    name = request.path_params["provider"]
    metrics = state.metrics
    provider = state.providers.cached(name)
    try:
        if provider is None:  # first use: build it from the settings, off the event loop
            provider = await run_in_threadpool(state.providers.get, name)
    except UnknownProviderError:
        return detail(404, f"unknown provider {name!r}")
    except ConfigurationError as exc:
        log.error("provider %s is misconfigured: %s", name, exc)
        return detail(503, f"provider {name!r} is not configured on this server")
    try:
        body = await read_body(
            request, state.settings.max_body_bytes, state.settings.body_read_timeout
        )
    except BodyTooLarge:
        metrics.webhooks_rejected.labels(name, "too_large").inc()
        return detail(413, f"body larger than {state.settings.max_body_bytes} bytes")
    except BodyTimeout:
        metrics.webhooks_rejected.labels(name, "timeout").inc()
        return detail(408, "request body not received in time")
    except ClientDisconnect:
        return detail(400, "client disconnected")
    headers: dict[str, str] = {}
    for key, value in request.headers.items():
        headers.setdefault(key, value)  # first value wins, as WebhookRequest documents
    webhook = WebhookRequest(body=body, headers=headers)
    try:
        new = await state.writer.receive(provider, webhook)
    except SignatureError as exc:
        # The plugin's reason may name configured key ids, count secrets or quote the clock:
        # it goes to the log, the caller gets a fixed text (docs/security.md).
        log.warning("webhook for %s refused: %s", name, one_line(exc))
        metrics.webhooks_rejected.labels(name, "signature").inc()
        return detail(401, SIGNATURE_REFUSED)
    except ConfigurationError as exc:
        log.error("provider %s is misconfigured: %s", name, exc)
        metrics.webhooks_rejected.labels(name, "misconfigured").inc()
        return detail(503, f"provider {name!r} is not configured on this server")
    except (MalformedWebhookError, WebhookError) as exc:
        metrics.webhooks_rejected.labels(name, "malformed").inc()
        return detail(400, one_line(exc))
    except Exception:
        # Nothing was committed: the PSP will redeliver. Never echo internals to the caller.
        log.exception("webhook for %s could not be stored", name)
        metrics.webhooks_rejected.labels(name, "error").inc()
        return detail(500, "webhook not stored; it is safe to deliver again")
    metrics.webhooks_received.labels(name).inc()
    if new:
        metrics.events_stored.labels(name).inc(new)
    status, content_type, ack = provider.webhook_ack
    return Response(ack, status_code=status, media_type=content_type)


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok"})


def _readiness(engine: Engine) -> tuple[bool, str]:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        current, head = current_revision(engine), head_revision()
    except Exception:
        # The driver's text can name hosts, users and paths: log it, never return it.
        log.warning("readiness check: database unreachable", exc_info=True)
        return False, "database unreachable; see the server log"
    if current != head:
        return False, f"database at revision {current}, expected {head}: run recoverkit db upgrade"
    return True, f"database reachable, migrations at {head}"


async def readyz(request: Request) -> Response:
    """Readiness: the database answers and its migrations are current."""
    state: ServiceState = request.app.state.service
    ok, detail = await run_in_threadpool(_readiness, state.engine)
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "detail": detail}, 200 if ok else 503
    )


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text format."""
    state: ServiceState = request.app.state.service
    data = await run_in_threadpool(state.metrics.render)
    return Response(data, media_type="text/plain; version=0.0.4; charset=utf-8")


def create_app(
    settings: Settings,
    plugins: Plugins,
    engine: Engine,
    *,
    providers: Mapping[str, Provider] | None = None,
    client: RecoverClient | None = None,
    run_worker: bool | None = None,
    check_migrations: bool = True,
) -> Starlette:
    """The service app. The in-process worker (``serve_worker``) starts with the app's lifespan.

    ``providers`` replaces plugin-built instances by name and ``client`` the Recover client built
    from settings (tests, embedding applications).
    """
    state = ServiceState(
        settings=settings,
        plugins=plugins,
        engine=engine,
        providers=ProviderRegistry(settings, plugins, providers),
        metrics=Metrics(engine),
        writer=InboxWriter(engine, utcnow),
        client=client,
    )
    want_worker = settings.serve_worker if run_worker is None else run_worker

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if check_migrations:
            ok, detail = await run_in_threadpool(_readiness, engine)
            if not ok:
                raise ConfigurationError(f"cannot start: {detail}")
        thread: threading.Thread | None = None
        built_client = False
        message, fields = startup_summary(
            settings, state.providers.names(), "in-process" if want_worker else "off"
        )
        log.info(message, extra=fields)
        if want_worker:
            if state.client is None:
                state.client = build_client(settings)
                built_client = True
            state.worker = Worker(
                settings=settings,
                plugins=plugins,
                engine=engine,
                providers=state.providers,
                client=state.client,
                metrics=state.metrics,
            )
            thread = threading.Thread(
                target=state.worker.run, args=(state.stop,), name="recoverkit-worker", daemon=True
            )
            thread.start()
        try:
            yield
        finally:
            state.stop.set()
            if thread is not None:
                await run_in_threadpool(thread.join, 30)
            if state.worker is not None:
                state.worker.close()
            if built_client and state.client is not None:
                state.client.close()  # its keep-alive connections to Recover
                state.client = None

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/retry/{invoice_id:path}", merchant.retry_status, methods=["POST"]),
        Route("/webhooks/retry-results", merchant.retry_results, methods=["POST"]),
        Route("/webhooks/end-of-dunning", merchant.end_of_dunning, methods=["POST"]),
        Route("/webhooks/{provider}", receive_webhook, methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.service = state
    return app
