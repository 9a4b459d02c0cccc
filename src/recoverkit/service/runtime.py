"""What the service needs at run time, built from settings: providers and the Recover client."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from recoverkit.client import RecoverClient
from recoverkit.config import Settings, provider_overrides
from recoverkit.errors import ConfigurationError, UnknownProviderError
from recoverkit.plugins import Plugins
from recoverkit.provider import Provider

__all__ = ["ProviderRegistry", "build_client", "startup_summary", "utcnow"]


def utcnow() -> datetime:
    """The service's clock (the one place the edges read it)."""
    return datetime.now(UTC)


class ProviderRegistry:
    """Provider instances by name, built on first use from the plugins and the settings.

    ``instances`` are used as given (tests, embedding applications). ``enabled_providers``
    narrows what the receiver accepts.
    """

    def __init__(
        self,
        settings: Settings,
        plugins: Plugins,
        instances: Mapping[str, Provider] | None = None,
    ) -> None:
        self._settings = settings
        self._plugins = plugins
        self._instances: dict[str, Provider] = dict(instances or {})
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Every provider name this service accepts."""
        known = set(self._plugins.providers) | set(self._instances)
        enabled = self._settings.enabled_providers
        return sorted(known if enabled is None else known & set(enabled))

    def cached(self, name: str) -> Provider | None:
        """The provider if already built and enabled (no locking, no construction)."""
        enabled = self._settings.enabled_providers
        if enabled is not None and name not in enabled:
            return None
        return self._instances.get(name)

    def get(self, name: str) -> Provider:
        """The provider called ``name``; :class:`UnknownProviderError` if none is enabled."""
        enabled = self._settings.enabled_providers
        if enabled is not None and name not in enabled:
            raise UnknownProviderError(f"provider {name!r} is not in enabled_providers")
        with self._lock:
            provider = self._instances.get(name)
            if provider is None:
                cls = self._plugins.provider_class(name)
                try:
                    overrides = provider_overrides(self._settings, name, cls.settings_class)
                    # create_provider also points billing_context at the hook (Adyen needs it).
                    provider = self._plugins.create_provider(name, **overrides)
                except ConfigurationError:
                    raise
                except Exception as exc:  # pydantic ValidationError and friends
                    raise ConfigurationError(
                        f"provider {name!r} settings are invalid: {exc}"
                    ) from None
                self._instances[name] = provider
        return provider


def build_client(settings: Settings) -> RecoverClient:
    """A :class:`RecoverClient` from the ``recover_*`` settings; the API key is required."""
    if settings.recover_api_key is None:
        raise ConfigurationError(
            "recover_api_key is not set: export RECOVERKIT_RECOVER_API_KEY or set "
            "recover_api_key_file"
        )
    return RecoverClient(
        api_key=settings.recover_api_key.get_secret_value(),
        base_url=settings.recover_base_url,
        timeout=settings.recover_timeout,
        connect_timeout=settings.recover_connect_timeout,
        max_attempts=settings.recover_max_attempts,
        max_connections=max(settings.recover_concurrency, 4),
    )


def _database(url: str) -> str:
    """``postgresql 10.0.0.5/recoverkit`` or ``sqlite recoverkit.db``: never the password."""
    try:
        parsed = make_url(url)
    except Exception:
        return "unparseable database_url"
    where = f"{parsed.host}/{parsed.database}" if parsed.host else str(parsed.database or "")
    return f"{parsed.get_backend_name()} {where}".strip()


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"


def startup_summary(
    settings: Settings, providers: list[str], worker: str
) -> tuple[str, dict[str, Any]]:
    """The start-up log line and its fields: what runs, against what — never a credential."""
    try:
        release = version("recoverkit")
    except PackageNotFoundError:  # pragma: no cover - a source checkout without metadata
        release = "unknown"
    fields: dict[str, Any] = {
        "event": "startup",
        "version": release,
        "providers": ",".join(providers) or "-",
        "database": _database(settings.database_url),
        "recover": _host(settings.recover_base_url),
        "worker": worker,
        "retry_status_auth": settings.retry_status.configured,
        "retry_results_auth": settings.retry_results.configured,
        "end_of_dunning_auth": settings.end_of_dunning.configured,
        "end_of_dunning_policy": str(settings.end_of_dunning_policy.value),
    }
    message = (
        f"recoverkit {release} starting: providers {fields['providers']}, database "
        f"{fields['database']}, Recover {fields['recover']}, worker {worker}"
    )
    return message, fields
