"""recoverkit-adyen: Adyen webhooks in, Checkout ContAuth retries out (docs/providers/adyen.md)."""

from recoverkit_adyen.context import (
    METADATA_KEYS,
    BillingContextMissingError,
    default_billing_context,
    format_reference,
)
from recoverkit_adyen.provider import AdyenProvider
from recoverkit_adyen.settings import TEST_HMAC_KEY, AdyenSettings

__all__ = [
    "METADATA_KEYS",
    "TEST_HMAC_KEY",
    "AdyenProvider",
    "AdyenSettings",
    "BillingContextMissingError",
    "default_billing_context",
    "format_reference",
]
