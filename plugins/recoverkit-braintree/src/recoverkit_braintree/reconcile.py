"""Retry Results and End of Dunning written back to Braintree.

Braintree keeps its own subscription state: a retry made through ``subscription.retry_charge``
already moved the balance and status, and ``Subscription.update`` has no balance field, so a
payment collected elsewhere cannot be recorded on the subscription. ``reconcile`` therefore reads
and compares, logging any disagreement; ``end_dunning`` can cancel the subscription.
"""

from __future__ import annotations

import logging
from typing import Any

from recoverkit.errors import ConfigurationError, ProviderError
from recoverkit.provider import EndOfDunningPolicy, InvoiceRef
from recoverkit.schema import EndOfDunning, RetryResults
from recoverkit_braintree.codes import SUCCESS_STATUSES
from recoverkit_braintree.gateway import CachedLookups, api_errors

__all__ = ["ENDED_STATUSES", "end_dunning", "reconcile"]

logger = logging.getLogger("recoverkit_braintree.reconcile")
PSP = "braintree"
#: Subscription statuses that cannot be cancelled again (cancelled ones cannot be reactivated).
ENDED_STATUSES = frozenset({"Canceled", "Expired"})


def reconcile(lookups: CachedLookups, result: RetryResults, invoice: InvoiceRef) -> list[str]:
    """Compare Recover's result with Braintree; return (and log) the disagreements found.

    Read-only, hence idempotent.
    """
    problems: list[str] = []
    for item in result.psp_transactions:
        txn = lookups.transaction(item.psp_transaction_id)
        collected = txn.status in SUCCESS_STATUSES
        if item.success != collected:
            problems.append(
                f"Recover says transaction {txn.id} success={item.success}, Braintree says "
                f"{txn.status}"
            )
    if result.success and invoice.psp_subscription_id:
        sub = lookups.fresh_subscription(invoice.psp_subscription_id)
        if sub.status == "Past Due":
            problems.append(
                f"Recover says invoice {invoice.invoice_id} was paid but Braintree subscription "
                f"{sub.id} is still Past Due: the payment did not go through retry_charge"
            )
    for problem in problems:
        logger.warning("braintree reconcile: %s", problem)
    return problems


def end_dunning(
    gateway: Any, notice: EndOfDunning, invoice: InvoiceRef, policy: EndOfDunningPolicy
) -> bool:
    """Apply ``policy``; return True when Braintree was changed. Safe to call twice."""
    if policy is EndOfDunningPolicy.NONE or notice.recovered:
        return False
    if policy is not EndOfDunningPolicy.CANCEL_SUBSCRIPTION:
        raise ConfigurationError(
            f"braintree: end_of_dunning_policy {policy} is not supported; use none or "
            "cancel_subscription"
        )
    sub_id = invoice.psp_subscription_id
    if not sub_id:
        logger.info("braintree end_dunning: invoice %s has no subscription", invoice.invoice_id)
        return False
    with api_errors("subscription", sub_id):
        sub = gateway.subscription.find(sub_id)
    if sub.status in ENDED_STATUSES:
        return False
    with api_errors("subscription cancel", sub_id, mutating=True):
        result = gateway.subscription.cancel(sub_id)
    if not result.is_success:
        raise ProviderError(
            f"braintree: cancelling subscription {sub_id} failed: {result.message}",
            provider=PSP,
            object_id=sub_id,
        )
    return True
