"""recoverkit: connect payment service providers to Recover, a failed-payment recovery service.

The public API is what ``__all__`` lists; everything else is private and may change.
"""

from importlib.metadata import PackageNotFoundError, version

from recoverkit.declines import Advice, DeclineCategory, NormalizedDecline, ResponseType
from recoverkit.errors import (
    ConfigurationError,
    DuplicateProviderError,
    MalformedWebhookError,
    MissingFactError,
    OutcomeUnknownError,
    PluginError,
    ProviderError,
    RecoverAPIError,
    RecoverkitError,
    RequestNotSentError,
    SignatureError,
    UnknownProviderError,
    UnsupportedCapabilityError,
    WebhookError,
    WireValidationError,
)
from recoverkit.hookspecs import PaymentAmendment, hookimpl
from recoverkit.plugins import Plugins
from recoverkit.provider import (
    BillingContext,
    Capability,
    DoctorCheck,
    EndOfDunningPolicy,
    InvoiceRef,
    Provider,
    ProviderEvent,
    ProviderSettings,
    RecoverMessage,
    RetryAttempt,
    RetryInstruction,
    Translation,
    WebhookRequest,
)

try:
    __version__ = version("recoverkit")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0+unknown"

__all__ = [
    "Advice",
    "BillingContext",
    "Capability",
    "ConfigurationError",
    "DeclineCategory",
    "DoctorCheck",
    "DuplicateProviderError",
    "EndOfDunningPolicy",
    "InvoiceRef",
    "MalformedWebhookError",
    "MissingFactError",
    "NormalizedDecline",
    "OutcomeUnknownError",
    "PaymentAmendment",
    "PluginError",
    "Plugins",
    "Provider",
    "ProviderError",
    "ProviderEvent",
    "ProviderSettings",
    "RecoverAPIError",
    "RecoverMessage",
    "RecoverkitError",
    "RequestNotSentError",
    "ResponseType",
    "RetryAttempt",
    "RetryInstruction",
    "SignatureError",
    "Translation",
    "UnknownProviderError",
    "UnsupportedCapabilityError",
    "WebhookError",
    "WebhookRequest",
    "WireValidationError",
    "__version__",
    "hookimpl",
]
