"""Write Recover's outcomes back into Stripe: Retry Results and End of Dunning.

Both are idempotent by construction: they read the object first and only write what differs, so a
redelivered webhook (Recover redelivers every 12 hours for 7 days) changes nothing the second time.
Every write also carries a deterministic Stripe idempotency key derived from Recover's delivery
(:func:`delivery_key`), so two deliveries racing past the read — or a retry after a lost answer —
make one write at Stripe.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import stripe

from recoverkit.provider import EndOfDunningPolicy, InvoiceRef
from recoverkit.schema import EndOfDunning, RetryResults
from recoverkit_stripe.errors import call_stripe
from recoverkit_stripe.shapes import invoice_subscription_id

logger = logging.getLogger("recoverkit_stripe.reconcile")

__all__ = ["delivery_key", "end_dunning", "reconcile", "result_metadata"]

#: Prefixes of Stripe objects that can carry a payment; anything else was collected elsewhere.
_STRIPE_PAYMENT_PREFIXES = ("ch_", "py_", "pi_")
_ENDED_SUBSCRIPTIONS = frozenset({"canceled", "incomplete_expired"})


def _dict(obj: Any) -> dict[str, Any]:
    result: dict[str, Any] = obj.to_dict() if isinstance(obj, stripe.StripeObject) else dict(obj)
    return result


def result_metadata(result: RetryResults) -> dict[str, str]:
    """The invoice metadata that records a Retry Results outcome (Stripe metadata is strings)."""
    meta = {
        "recover_butter_id": result.butter_id,
        "recover_result": "success" if result.success else "failure",
    }
    if result.transaction_id:
        meta["recover_transaction_id"] = result.transaction_id
    if result.invoice_id:
        meta["recover_invoice_id"] = result.invoice_id
    if result.dunning_complete is not None:
        meta["recover_dunning_complete"] = "true" if result.dunning_complete else "false"
    return meta


def _collected_elsewhere(result: RetryResults) -> bool:
    successful = [t.psp_transaction_id for t in result.psp_transactions if t.success]
    return bool(successful) and not any(t.startswith(_STRIPE_PAYMENT_PREFIXES) for t in successful)


def delivery_key(action: str, message: RetryResults | EndOfDunning) -> str:
    """``recoverkit:<action>:<id>``: the same for every delivery of one Recover message.

    Retry Results carry Recover's ``butter_id``; an End of Dunning notice has none, so its invoice
    id and timestamp (both fixed for one notice) are hashed.
    """
    if isinstance(message, RetryResults):
        return f"recoverkit:{action}:{message.butter_id}"
    ident = f"{message.invoice_id}|{message.timestamp.isoformat()}"
    return f"recoverkit:{action}:{hashlib.sha256(ident.encode()).hexdigest()[:32]}"


def _retrieve_invoice(client: stripe.StripeClient, invoice_id: str) -> dict[str, Any]:
    return _dict(
        call_stripe(
            "retrieving the invoice", invoice_id, lambda: client.v1.invoices.retrieve(invoice_id)
        )
    )


def reconcile(client: stripe.StripeClient, result: RetryResults, invoice: InvoiceRef) -> None:
    """Annotate the invoice with Recover's ids; on success make sure it ends up paid."""
    invoice_id = invoice.psp_invoice_id
    if invoice_id is None:
        logger.info("stripe: Retry Results for %s name no Stripe invoice", result.invoice_id)
        return
    data = _retrieve_invoice(client, invoice_id)
    if result.success and data.get("status") == "open":
        if _collected_elsewhere(result):
            # One key per Recover result: a redelivery replays Stripe's stored answer.
            call_stripe(
                "marking the invoice paid out of band",
                invoice_id,
                lambda: client.v1.invoices.pay(
                    invoice_id,
                    params={"paid_out_of_band": True},
                    options={"idempotency_key": delivery_key("oob", result)},
                ),
            )
        else:
            logger.warning(
                "stripe: Recover reports success for invoice %s through a Stripe payment but "
                "the invoice is still open; not marking it paid out of band (that would count "
                "the money twice). Check the payment %s in the Dashboard.",
                invoice_id,
                result.original_psp_transaction_id,
            )
    wanted = result_metadata(result)
    current = data.get("metadata") or {}
    if any(current.get(key) != value for key, value in wanted.items()):
        call_stripe(
            "annotating the invoice",
            invoice_id,
            lambda: client.v1.invoices.update(
                invoice_id,
                params={"metadata": wanted},
                options={"idempotency_key": delivery_key("metadata", result)},
            ),
        )


def end_dunning(
    client: stripe.StripeClient,
    notice: EndOfDunning,
    invoice: InvoiceRef,
    policy: EndOfDunningPolicy,
) -> None:
    """Apply ``policy`` once; a recovered invoice, or one already in the target state, is left."""
    if policy is EndOfDunningPolicy.NONE or notice.recovered:
        return
    invoice_id = invoice.psp_invoice_id
    if invoice_id is None:
        logger.info("stripe: End of Dunning for %s names no Stripe invoice", notice.invoice_id)
        return
    data = _retrieve_invoice(client, invoice_id)
    status = data.get("status")
    if policy is EndOfDunningPolicy.MARK_UNCOLLECTIBLE:
        if status == "open":
            call_stripe(
                "marking the invoice uncollectible",
                invoice_id,
                lambda: client.v1.invoices.mark_uncollectible(
                    invoice_id, options={"idempotency_key": delivery_key("uncollectible", notice)}
                ),
            )
    elif policy is EndOfDunningPolicy.VOID:
        if status in ("open", "uncollectible"):
            call_stripe(
                "voiding the invoice",
                invoice_id,
                lambda: client.v1.invoices.void_invoice(
                    invoice_id, options={"idempotency_key": delivery_key("void", notice)}
                ),
            )
    elif policy is EndOfDunningPolicy.CANCEL_SUBSCRIPTION:
        subscription_id = invoice_subscription_id(data) or invoice.psp_subscription_id
        if subscription_id is None:
            logger.warning("stripe: invoice %s bills no subscription to cancel", invoice_id)
            return
        sub = _dict(
            call_stripe(
                "retrieving the subscription",
                subscription_id,
                lambda: client.v1.subscriptions.retrieve(subscription_id),
            )
        )
        if sub.get("status") not in _ENDED_SUBSCRIPTIONS:
            call_stripe(
                "cancelling the subscription",
                subscription_id,
                lambda: client.v1.subscriptions.cancel(
                    subscription_id, options={"idempotency_key": delivery_key("cancel", notice)}
                ),
            )
    else:
        raise ValueError(f"stripe does not support end-of-dunning policy {policy.value}")
