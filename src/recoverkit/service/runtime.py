"""What the service needs at run time, built from settings: providers and the Recover client."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import UTC, datetime

from recoverkit.client import RecoverClient
from recoverkit.config import Settings, provider_overrides
from recoverkit.errors import ConfigurationError, UnknownProviderError
from recoverkit.plugins import Plugins
from recoverkit.provider import Provider

__all__ = ["ProviderRegistry", "build_client", "utcnow"]


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
