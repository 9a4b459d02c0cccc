"""The recoverkit exception tree.

::

    RecoverkitError
    ├── ConfigurationError          a setting is missing or wrong; names the setting
    ├── PluginError                 plugin loading and registration
    │   ├── DuplicateProviderError  two plugins register the same provider name
    │   └── UnknownProviderError    no installed plugin provides that name
    ├── WebhookError                a PSP webhook cannot be accepted (answer 4xx, store nothing)
    │   ├── SignatureError          signature missing, stale or wrong
    │   └── MalformedWebhookError   body or headers cannot be decoded
    ├── WireValidationError         a Recover wire message fails validation; names the field path
    ├── ProviderError               a PSP API call failed; names provider and object
    │   ├── RequestNotSentError     the request never left: safe to try again
    │   ├── OutcomeUnknownError     it may have taken effect: look it up, never repeat
    │   └── MissingFactError        a fact only the PSP API holds could not be fetched
    ├── UnsupportedCapabilityError  the provider does not implement that capability
    └── RecoverAPIError             Recover answered with an error

Declines are data (:class:`recoverkit.declines.NormalizedDecline`), never exceptions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class RecoverkitError(Exception):
    """Base class of every error recoverkit raises on purpose."""


class ConfigurationError(RecoverkitError):
    """A setting is missing or invalid."""


class PluginError(RecoverkitError):
    """A plugin could not be loaded or registered."""


class DuplicateProviderError(PluginError):
    """Two plugins registered the same provider name."""


class UnknownProviderError(PluginError):
    """No installed plugin provides the requested provider name."""


class WebhookError(RecoverkitError):
    """An inbound webhook cannot be accepted."""


class SignatureError(WebhookError):
    """The webhook's signature is missing, stale or does not match any configured secret."""


class MalformedWebhookError(WebhookError):
    """The webhook's body or headers cannot be decoded."""


class WireValidationError(RecoverkitError):
    """A Recover wire message failed validation.

    ``errors`` holds one ``(field_path, message)`` pair per problem; ``str()`` names them all.
    """

    def __init__(self, message_name: str, errors: Sequence[tuple[str, str]]) -> None:
        self.message_name = message_name
        self.errors = list(errors)
        detail = "; ".join(f"{path}: {msg}" for path, msg in self.errors)
        super().__init__(f"invalid {message_name}: {detail}")


class ProviderError(RecoverkitError):
    """A call to the PSP failed."""

    def __init__(self, message: str, *, provider: str, object_id: str | None = None) -> None:
        self.provider = provider
        self.object_id = object_id
        super().__init__(message)


class RequestNotSentError(ProviderError):
    """The request never reached the PSP; trying again cannot cause a second effect."""


class OutcomeUnknownError(ProviderError):
    """The PSP may have acted on the request; look the outcome up before doing anything else."""


class MissingFactError(ProviderError):
    """A fact the webhook lacks could not be fetched from the PSP API."""


class UnsupportedCapabilityError(RecoverkitError):
    """The provider does not implement the requested capability."""


class RecoverAPIError(RecoverkitError):
    """Recover answered a request with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        errors: Any = None,
        request_id: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.errors = errors
        self.request_id = request_id
        super().__init__(message)
