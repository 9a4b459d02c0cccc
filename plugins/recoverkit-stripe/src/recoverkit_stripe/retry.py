"""RetryStatus answers and retry execution through Stripe.

Invoices are retried with ``POST /v1/invoices/{id}/pay`` off-session, non-invoice charges by
confirming their PaymentIntent off-session; both always carry the instruction's idempotency key
(so a crashed worker re-sending within Stripe's 24 h window gets the stored result, not a second
authorization). A decline is a :class:`RetryAttempt` with ``success=False``, never an exception.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any

import stripe

from recoverkit.declines import NormalizedDecline
from recoverkit.provider import InvoiceRef, RetryAttempt, RetryInstruction
from recoverkit.schema import RetryStatusResponse, to_major
from recoverkit_stripe.codes import decline_from_charge, decline_from_error
from recoverkit_stripe.errors import call_stripe
from recoverkit_stripe.shapes import (
    expandable_id,
    invoice_is_legacy_shape,
    invoice_payment_refs,
    invoice_subscription_id,
)

logger = logging.getLogger("recoverkit_stripe.retry")

__all__ = ["execute_retry", "payment_intent_id_of", "retry_status"]

Obj = dict[str, Any]
_ENDED_SUBSCRIPTIONS = frozenset({"canceled", "incomplete_expired"})
_INVOICE_REFUSALS = {
    "paid": "invoice is already paid",
    "void": "invoice was voided",
    "uncollectible": "invoice was marked uncollectible",
    "draft": "invoice is still a draft (not finalized)",
}


def _dict(obj: Any) -> Obj:
    result: Obj = obj.to_dict() if isinstance(obj, stripe.StripeObject) else dict(obj)
    return result


def payment_intent_id_of(client: stripe.StripeClient, invoice: InvoiceRef) -> str | None:
    """The PaymentIntent of a non-invoice charge: ``extra["payment_intent_id"]`` or its charge's."""
    explicit = invoice.extra.get("payment_intent_id")
    if isinstance(explicit, str) and explicit:
        return explicit
    charge_id = invoice.psp_transaction_id
    if not charge_id:
        return None
    charge = call_stripe(
        "retrieving the charge", charge_id, lambda: client.v1.charges.retrieve(charge_id)
    )
    return expandable_id(_dict(charge).get("payment_intent"))


def retry_status(client: stripe.StripeClient, invoice: InvoiceRef) -> RetryStatusResponse:
    """Retry only an open invoice with an amount remaining whose subscription still runs."""
    if invoice.psp_invoice_id is None:
        return _payment_intent_status(client, invoice)
    invoice_id = invoice.psp_invoice_id
    data = _dict(
        call_stripe(
            "retrieving the invoice", invoice_id, lambda: client.v1.invoices.retrieve(invoice_id)
        )
    )
    status = str(data.get("status"))
    if status != "open":
        reason = _INVOICE_REFUSALS.get(status)
        if reason is None:
            logger.warning("unknown Stripe invoice status %r for %s; refusing", status, invoice_id)
            reason = f"invoice status is {status}"
        return RetryStatusResponse(retry=False, reason=reason)
    remaining = int(data.get("amount_remaining") or 0)
    if remaining <= 0:
        return RetryStatusResponse(retry=False, reason="nothing remains to be paid")
    subscription_id = invoice_subscription_id(data) or invoice.psp_subscription_id
    if subscription_id:
        sub = _dict(
            call_stripe(
                "retrieving the subscription",
                subscription_id,
                lambda: client.v1.subscriptions.retrieve(subscription_id),
            )
        )
        if sub.get("status") in _ENDED_SUBSCRIPTIONS:
            return RetryStatusResponse(retry=False, reason=f"subscription is {sub['status']}")
    return RetryStatusResponse(
        retry=True, amount=to_major(remaining, str(data["currency"]), psp="stripe")
    )


def _payment_intent_status(client: stripe.StripeClient, invoice: InvoiceRef) -> RetryStatusResponse:
    pi_id = payment_intent_id_of(client, invoice)
    if pi_id is None:
        return RetryStatusResponse(
            retry=False, reason="no Stripe invoice or PaymentIntent is known for this invoice"
        )
    intent = _dict(
        call_stripe(
            "retrieving the payment intent",
            pi_id,
            lambda: client.v1.payment_intents.retrieve(pi_id),
        )
    )
    status = intent.get("status")
    if status in ("requires_payment_method", "requires_confirmation"):
        amount = to_major(int(intent["amount"]), str(intent["currency"]), psp="stripe")
        return RetryStatusResponse(retry=True, amount=amount)
    return RetryStatusResponse(retry=False, reason=f"payment intent is {status}")


def _charge_or_none(client: stripe.StripeClient, charge_id: str | None) -> Obj | None:
    if not charge_id:
        return None
    charge = call_stripe(
        "retrieving the charge", charge_id, lambda: client.v1.charges.retrieve(charge_id)
    )
    return _dict(charge)


def _attempt(
    instruction: RetryInstruction,
    *,
    success: bool,
    charge: Obj | None,
    decline: NormalizedDecline | None,
    transaction_id: str | None = None,
) -> RetryAttempt:
    card = ((charge or {}).get("payment_method_details") or {}).get("card") or {}
    created = (charge or {}).get("created")
    return RetryAttempt(
        success=success,
        psp_transaction_id=(charge or {}).get("id") or transaction_id,
        amount=instruction.amount,
        currency=instruction.currency,
        payment_method_id=expandable_id((charge or {}).get("payment_method"))
        or instruction.payment_method_id,
        network_transaction_id=card.get("network_transaction_id") or None,
        decline=decline,
        created_at=datetime.fromtimestamp(int(created), UTC) if created else None,
    )


def _declined(
    client: stripe.StripeClient, instruction: RetryInstruction, exc: stripe.CardError
) -> RetryAttempt:
    error = _dict(exc.error) if exc.error is not None else {"code": exc.code}
    charge_id = error.get("charge")
    charge = _charge_or_none(client, charge_id if isinstance(charge_id, str) else None)
    if charge is not None:
        decline = decline_from_charge(charge, error)
    else:
        decline = decline_from_error(error)
    if decline is None:  # the charge reads as succeeded although the call raised: trust the error
        decline = decline_from_error(error)
    return _attempt(instruction, success=False, charge=charge, decline=decline)


def _invoice_charge_id(client: stripe.StripeClient, invoice: Obj) -> str | None:
    """The charge of the attempt ``/pay`` just made, in either invoice shape."""
    if invoice_is_legacy_shape(invoice):
        return expandable_id(invoice.get("charge"))
    invoice_id = str(invoice["id"])
    with_payments = _dict(
        call_stripe(
            "retrieving the invoice's payments",
            invoice_id,
            partial(client.v1.invoices.retrieve, invoice_id, params={"expand": ["payments"]}),
        )
    )
    payments = (with_payments.get("payments") or {}).get("data") or []
    pi_id, charge_id = invoice_payment_refs(payments, paid=invoice.get("status") == "paid")
    if charge_id or not pi_id:
        return charge_id
    intent = _dict(
        call_stripe(
            "retrieving the payment intent",
            pi_id,
            partial(client.v1.payment_intents.retrieve, pi_id),
        )
    )
    return expandable_id(intent.get("latest_charge"))


def execute_retry(client: stripe.StripeClient, instruction: RetryInstruction) -> RetryAttempt:
    """Charge once through Stripe with the instruction's idempotency key.

    ``/pay`` is off-session by default ("Defaults to true", ``stripe/params/_invoice_pay_params.py``
    in stripe 16.1.0), so the flag is not sent: the same request then also runs against
    localstripe, whose ``/pay`` accepts no parameters. ``payment_method`` is sent only when
    Recover names one.
    """
    ref = instruction.invoice
    options: Any = {"idempotency_key": instruction.idempotency_key}
    if ref.psp_invoice_id is None:
        return _confirm_payment_intent(client, instruction, options)
    invoice_id = ref.psp_invoice_id
    params: Any = {}
    if instruction.payment_method_id:
        params["payment_method"] = instruction.payment_method_id
    try:
        paid = _dict(
            call_stripe(
                "paying the invoice",
                invoice_id,
                lambda: client.v1.invoices.pay(invoice_id, params=params, options=options),
            )
        )
    except stripe.CardError as exc:
        return _declined(client, instruction, exc)
    charge = _charge_or_none(client, _invoice_charge_id(client, paid))
    success = paid.get("status") == "paid"
    decline = None if success or charge is None else decline_from_charge(charge)
    return _attempt(instruction, success=success, charge=charge, decline=decline)


def _confirm_payment_intent(
    client: stripe.StripeClient, instruction: RetryInstruction, options: Any
) -> RetryAttempt:
    pi_id = payment_intent_id_of(client, instruction.invoice)
    if pi_id is None:
        raise ValueError(
            f"stripe: invoice {instruction.invoice.invoice_id} has neither psp_invoice_id nor a "
            "PaymentIntent (extra['payment_intent_id'] or psp_transaction_id); cannot retry"
        )
    params: Any = {"off_session": True, "expand": ["latest_charge"]}
    if instruction.payment_method_id:
        params["payment_method"] = instruction.payment_method_id
    try:
        intent = _dict(
            call_stripe(
                "confirming the payment intent",
                pi_id,
                lambda: client.v1.payment_intents.confirm(pi_id, params=params, options=options),
            )
        )
    except stripe.CardError as exc:
        return _declined(client, instruction, exc)
    latest = intent.get("latest_charge")
    charge = dict(latest) if isinstance(latest, dict) else None
    success = intent.get("status") == "succeeded"
    decline = None
    if not success:
        error = intent.get("last_payment_error")
        if charge is not None:
            decline = decline_from_charge(charge, error)
        elif error:
            decline = decline_from_error(error)
    return _attempt(
        instruction, success=success, charge=charge, decline=decline, transaction_id=pi_id
    )
