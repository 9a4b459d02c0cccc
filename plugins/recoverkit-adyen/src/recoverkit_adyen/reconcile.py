"""RetryStatus, Retry Results and End of Dunning for Adyen, which holds no invoices.

Whether an invoice is still open, and what "paid" or "cancelled" means for it, lives in the
merchant's billing platform. The provider therefore delegates to merchant callables
(``retry_status_hook``, ``reconcile_hook``, ``end_dunning_hook``); the defaults here are what
recoverkit can decide from its own ledger alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from recoverkit.errors import ConfigurationError
from recoverkit.provider import EndOfDunningPolicy, InvoiceRef
from recoverkit.schema import EndOfDunning, RetryStatusResponse
from recoverkit_adyen.retry import disable_token
from recoverkit_adyen.settings import AdyenSettings

__all__ = ["apply_end_of_dunning", "default_retry_status"]

logger = logging.getLogger("recoverkit_adyen")

EndDunningHook = Callable[[EndOfDunning, InvoiceRef, EndOfDunningPolicy], None]


def default_retry_status(invoice: InvoiceRef) -> RetryStatusResponse:
    """Retry when the ledger knows a stored card and shopper to charge, for the ledger amount.

    This default cannot see whether the invoice was paid or cancelled in the merchant's
    platform: set ``provider.retry_status_hook`` to ask the platform.
    """
    if not invoice.payment_method_id or not invoice.psp_customer_id:
        return RetryStatusResponse(
            retry=False,
            reason="no stored Adyen payment method or shopperReference for this invoice",
        )
    return RetryStatusResponse(retry=True, amount=invoice.amount)


def apply_end_of_dunning(
    notice: EndOfDunning,
    invoice: InvoiceRef,
    policy: EndOfDunningPolicy,
    *,
    settings: AdyenSettings,
    client: Callable[[], Any],
    hook: EndDunningHook | None,
) -> None:
    """``disable_token`` deletes the stored card at Adyen (not when recovered); then the hook.

    Policies about subscriptions and invoices (``cancel_subscription``, ``void``,
    ``mark_uncollectible``) only mean something in the merchant's platform, so they need the hook.
    ``client`` builds the SDK client lazily: no credentials are needed for ``none``.
    """
    if policy not in (EndOfDunningPolicy.NONE, EndOfDunningPolicy.DISABLE_TOKEN) and hook is None:
        raise ConfigurationError(
            f"adyen: end-of-dunning policy {policy.value!r} acts on subscriptions or invoices, "
            "which Adyen does not hold: set the provider's end_dunning_hook, or use "
            "'none' / 'disable_token'"
        )
    if policy is EndOfDunningPolicy.DISABLE_TOKEN and not notice.recovered:
        disabled = disable_token(invoice, settings, client())
        if not disabled:
            logger.info("adyen: token of invoice %s was already gone", invoice.invoice_id)
    if hook is not None:
        hook(notice, invoice, policy)
