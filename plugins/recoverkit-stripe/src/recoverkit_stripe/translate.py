"""Stripe events → Recover messages. Pure: facts the webhook lacks come from a :class:`Facts`.

**One transaction per attempt.** A failed renewal emits ``charge.failed``,
``payment_intent.payment_failed`` and ``invoice.payment_failed`` for the same attempt. The source of
truth is:

- invoice attempts: ``invoice.payment_failed`` / ``invoice.payment_succeeded`` (the only events
  that name the invoice and subscription in every API version). ``invoice.paid`` (also fires for
  out-of-band settlement, which is no attempt), ``invoice.payment_action_required`` (the same
  attempt also fires ``invoice.payment_failed``) and the charge / PaymentIntent events of
  invoice-bound charges are no-ops with a reason;
- charges that pay no invoice: ``charge.failed`` / ``charge.succeeded``; PaymentIntent events are
  no-ops (a PaymentIntent failure without a charge never reached a network).

Messages carry the charge id as their dedupe key, so even two Event objects for one change
(Stripe documents that this happens) forward one transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from recoverkit.declines import NormalizedDecline
from recoverkit.provider import BillingContext, ProviderEvent, RecoverMessage, Translation
from recoverkit.schema import (
    Billing,
    Customer,
    FundingSource,
    Invoice,
    Outcome,
    PaymentEvent,
    PaymentMethodUpdate,
    ResponseType,
    Subscription,
    Transaction,
    to_major,
)
from recoverkit_stripe.backfill import BACKFILL_EVENT_TYPE
from recoverkit_stripe.codes import decline_from_charge
from recoverkit_stripe.facts import Facts
from recoverkit_stripe.shapes import (
    expandable_id,
    invoice_is_legacy_shape,
    invoice_payment_refs,
    invoice_subscription_id,
)

logger = logging.getLogger("recoverkit_stripe.translate")

__all__ = ["BillingResolver", "translate_event"]

Obj = Mapping[str, Any]
#: Supplies billing facts for a charge that pays no Stripe invoice (the ``billing_context`` hook).
BillingResolver = Callable[[ProviderEvent], BillingContext | None]

_FUNDING = {
    "credit": FundingSource.CREDIT,
    "debit": FundingSource.DEBIT,
    "prepaid": FundingSource.PREPAID,
    "unknown": FundingSource.UNKNOWN,
}
_PM_REASONS = {
    "payment_method.automatically_updated": "network_updated",
    "payment_method.updated": "updated",
    "payment_method.attached": "added",
    "payment_method.detached": "removed",
    "customer.source.updated": "source_updated",
}
_LEDGER_EVENTS = frozenset(
    {
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "invoice.voided",
        "invoice.marked_uncollectible",
    }
)
#: Metadata keys read from a non-invoice charge (or its PaymentIntent) for Recover's ids.
META_SUBSCRIPTION = "recover_subscription_id"
META_SUBSCRIPTION_START = "recover_subscription_start"
META_INVOICE = "recover_invoice_id"
META_CUSTOMER = "recover_customer_id"


def _ts(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), UTC)


def _object(event: ProviderEvent) -> Obj:
    obj: Obj = event.data["data"]["object"]
    return obj


def _created(event: ProviderEvent) -> int:
    return int(event.data["created"])


# --- the transaction -----------------------------------------------------------------------------


def _card(charge: Obj) -> Obj:
    card: Obj = (charge.get("payment_method_details") or {}).get("card") or {}
    return card


def _funding(card: Obj) -> FundingSource:
    funding = card.get("funding")
    if funding is None:
        return FundingSource.UNKNOWN
    found = _FUNDING.get(str(funding))
    if found is None:
        logger.warning("unknown Stripe card funding %r; sent as UNKNOWN", funding)
        return FundingSource.UNKNOWN
    return found


def _outcome(charge: Obj, decline: NormalizedDecline | None) -> Outcome:
    # Butter's example: raw_response_message "insufficient_funds" (the code), psp_response_message
    # "The customer has insufficient funds." (the processor's words).
    outcome = charge.get("outcome") or {}
    message = charge.get("failure_message") or outcome.get("seller_message")
    code = outcome.get("network_decline_code")
    return Outcome(
        raw_response_message=decline.raw_code if decline else "approved",
        psp_response_message=str(message) if message else None,
        processor_response_code=int(code) if isinstance(code, str) and code.isdigit() else None,
        network_status=outcome.get("network_status"),
        response_type=ResponseType(decline.response_type.value) if decline else None,
    )


def transaction_from_charge(
    charge: Obj, decline: NormalizedDecline | None, *, acquirer_country: str
) -> Transaction | None:
    """One Recover transaction for a Charge; None when the charge has no payment method id."""
    card = _card(charge)
    details = charge.get("payment_method_details") or {}
    payment_method = expandable_id(charge.get("payment_method")) or expandable_id(
        charge.get("source")
    )
    if payment_method is None:
        return None
    currency = str(charge["currency"]).upper()
    address = (charge.get("billing_details") or {}).get("address") or {}
    success = charge.get("status") == "succeeded"
    return Transaction(
        id=str(charge["id"]),
        psp_transaction_id=str(charge["id"]),
        psp="stripe",
        acquirer_country=acquirer_country,
        amount=to_major(int(charge["amount"]), currency, psp="stripe"),
        currency=currency,
        funding_source=_funding(card),
        payment_method_id=payment_method,
        psp_transaction_created_at=_ts(charge["created"]),
        scheme=str(card.get("network") or card.get("brand") or details.get("type") or "unknown"),
        success=success,
        outcome=_outcome(charge, None if success else decline),
        network_transaction_id=card.get("network_transaction_id") or None,
        issuer_country=card.get("country") or None,
        billing_postal_code=address.get("postal_code") or None,
        captured=charge.get("captured"),
        refunded=charge.get("refunded"),
    )


def _subscription_model(subscription: Obj) -> Subscription:
    billing = product = None
    items = ((subscription.get("items") or {}).get("data")) or []
    price = (items[0].get("price") or items[0].get("plan") or {}) if items else {}
    recurring = price.get("recurring") or price
    if recurring.get("interval") in ("day", "week", "month", "year"):
        billing = Billing(period=recurring["interval"], frequency=recurring.get("interval_count"))
    product = expandable_id(price.get("product"))
    ended = subscription.get("ended_at")
    return Subscription(
        id=str(subscription["id"]),
        start_date=_ts(subscription["start_date"]),
        end_date=_ts(ended) if ended else None,
        product_id=product,
        billing=billing,
    )


def _message(event: PaymentEvent, charge: Obj, decline: NormalizedDecline | None) -> RecoverMessage:
    return RecoverMessage(body=event, dedupe_key=f"stripe:charge:{charge['id']}", decline=decline)


# --- invoice attempts ----------------------------------------------------------------------------


def _attempt_charge(
    invoice: Obj, created: int, paid: bool, facts: Facts
) -> tuple[Obj | None, Obj | None]:
    """The (charge, last_payment_error) of the attempt an invoice event reports."""
    want = "succeeded" if paid else "failed"
    if invoice_is_legacy_shape(invoice):
        charge_id = expandable_id(invoice.get("charge"))
        pi_id = expandable_id(invoice.get("payment_intent"))
    else:
        payments: list[Obj] | None = (invoice.get("payments") or {}).get("data")
        if payments is None:
            payments = list(facts.invoice_payments(str(invoice["id"]), seen_at=created))
        pi_id, charge_id = invoice_payment_refs(payments, paid=paid)
    error = None
    charge: Obj | None = facts.charge(charge_id) if charge_id else None
    if pi_id:
        intent = facts.payment_intent(pi_id, seen_at=created)
        error = None if paid else intent.get("last_payment_error")
        if charge is None:
            latest = intent.get("latest_charge")
            # The attempt is the newest charge of the intent created by the time of the event
            # with the event's outcome — never "whatever is latest now".
            if (
                isinstance(latest, Mapping)
                and int(latest.get("created", 0)) <= created
                and latest.get("status") == want
            ):
                charge = latest
            else:
                for candidate in facts.charges_of_payment_intent(pi_id, created_lte=created):
                    if candidate.get("status") == want:
                        charge = candidate
                        break
    return charge, error


def translate_invoice_attempt(
    event: ProviderEvent,
    facts: Facts,
    *,
    paid: bool,
    acquirer_country: str,
    invoice: Obj | None = None,
    charge: Obj | None = None,
) -> Translation:
    """``invoice.payment_failed`` / ``invoice.payment_succeeded`` → one Payments event.

    Backfill passes the ``invoice`` and the ``charge`` it already knows.
    """
    invoice = invoice if invoice is not None else _object(event)
    invoice_id = str(invoice["id"])
    subscription_id = invoice_subscription_id(invoice)
    if subscription_id is None:
        return Translation.ignore(
            event, f"invoice {invoice_id} bills no subscription (one-off invoice)"
        )
    error = None
    if charge is None:
        charge, error = _attempt_charge(invoice, _created(event), paid, facts)
    if charge is None:
        return Translation.ignore(
            event,
            f"invoice {invoice_id}: no charge was attempted (no payment method, or the "
            "PaymentIntent never reached a card network)",
        )
    if "payment_method_details" not in charge:
        charge = facts.charge(str(charge["id"]))
    decline = None if paid else decline_from_charge(charge, error)
    transaction = transaction_from_charge(charge, decline, acquirer_country=acquirer_country)
    if transaction is None:
        return Translation.ignore(event, f"charge {charge['id']} has no payment method id")
    customer = expandable_id(invoice.get("customer")) or expandable_id(charge.get("customer"))
    body = PaymentEvent(
        customer=Customer(id=str(customer), psp_id=customer),
        subscription=_subscription_model(facts.subscription(subscription_id)),
        invoice=Invoice(id=invoice_id, created_at=_ts(invoice["created"])),
        transactions=[transaction],
    )
    return Translation(event=event, messages=(_message(body, charge, decline),))


# --- charges that pay no invoice -----------------------------------------------------------------


def _context_from_metadata(*sources: Obj) -> BillingContext | None:
    for source in sources:
        meta = source.get("metadata") or {}
        sub, start = meta.get(META_SUBSCRIPTION), meta.get(META_SUBSCRIPTION_START)
        if not sub or not start:
            continue
        started = _ts(start) if str(start).isdigit() else datetime.fromisoformat(str(start))
        return BillingContext(
            customer_id=str(meta.get(META_CUSTOMER) or source.get("customer") or ""),
            subscription_id=str(sub),
            invoice_id=str(meta.get(META_INVOICE) or source.get("id")),
            subscription_start=started,
            invoice_created_at=_ts(source["created"]),
        )
    return None


def _invoice_of_charge(charge: Obj, facts: Facts) -> str | None:
    invoice_id = expandable_id(charge.get("invoice"))
    pi_id = expandable_id(charge.get("payment_intent"))
    if invoice_id is None and "invoice" not in charge and pi_id:
        # basil+ charges no longer name their invoice: ask InvoicePayment.
        invoice_id = facts.invoice_of_payment_intent(pi_id)
    return invoice_id


def translate_backfilled_charge(
    event: ProviderEvent,
    facts: Facts,
    *,
    acquirer_country: str,
    billing_context: BillingResolver | None = None,
) -> Translation:
    """A charge from :mod:`.backfill`: the same Payments event its webhook would have produced."""
    charge = _object(event)
    invoice_id = _invoice_of_charge(charge, facts)
    if invoice_id is None:
        return translate_charge(
            event, facts, acquirer_country=acquirer_country, billing_context=billing_context
        )
    if "payment_method_details" not in charge:
        charge = facts.charge(str(charge["id"]))
    return translate_invoice_attempt(
        event,
        facts,
        paid=charge.get("status") == "succeeded",
        acquirer_country=acquirer_country,
        invoice=facts.invoice(invoice_id),
        charge=charge,
    )


def translate_charge(
    event: ProviderEvent,
    facts: Facts,
    *,
    acquirer_country: str,
    billing_context: BillingResolver | None = None,
) -> Translation:
    """``charge.failed`` / ``charge.succeeded`` of a charge that pays no invoice."""
    charge = _object(event)
    charge_id = str(charge["id"])
    pi_id = expandable_id(charge.get("payment_intent"))
    invoice_id = _invoice_of_charge(charge, facts)
    if invoice_id is not None:
        return Translation.ignore(
            event,
            f"charge {charge_id} pays invoice {invoice_id}; invoice.payment_failed / "
            "invoice.payment_succeeded carries this attempt",
        )
    intent = facts.payment_intent(pi_id, seen_at=_created(event)) if pi_id else None
    context = billing_context(event) if billing_context else None
    context = context or _context_from_metadata(charge, *([intent] if intent else []))
    if context is None:
        return Translation.ignore(
            event,
            f"charge {charge_id} pays no invoice and carries no billing context: set metadata "
            f"{META_SUBSCRIPTION} and {META_SUBSCRIPTION_START} on the PaymentIntent, or "
            "implement the billing_context hook",
        )
    success = charge.get("status") == "succeeded"
    error = intent.get("last_payment_error") if intent and not success else None
    decline = None if success else decline_from_charge(charge, error)
    transaction = transaction_from_charge(charge, decline, acquirer_country=acquirer_country)
    if transaction is None:
        return Translation.ignore(event, f"charge {charge_id} has no payment method id")
    customer = expandable_id(charge.get("customer"))
    body = PaymentEvent(
        customer=Customer(id=context.customer_id or str(customer), psp_id=customer),
        subscription=Subscription(
            id=context.subscription_id, start_date=context.subscription_start
        ),
        invoice=Invoice(id=context.invoice_id, created_at=context.invoice_created_at),
        transactions=[transaction],
    )
    return Translation(event=event, messages=(_message(body, charge, decline),))


# --- payment methods -----------------------------------------------------------------------------


def translate_payment_method(event: ProviderEvent) -> Translation:
    """Card changes (account updater, customer edits, attach/detach, legacy sources)."""
    obj = _object(event)
    customer = expandable_id(obj.get("customer"))
    if customer is None:  # a detached PaymentMethod names its former customer only here
        previous = event.data["data"].get("previous_attributes") or {}
        customer = expandable_id(previous.get("customer"))
    if customer is None:
        return Translation.ignore(event, f"payment method {obj.get('id')} has no customer")
    body = PaymentMethodUpdate(
        customer_id=customer,
        psp_customer_id=customer,
        payment_method_id=str(obj["id"]),
        reason=_PM_REASONS[event.type],
    )
    return Translation(
        event=event,
        messages=(RecoverMessage(body=body, dedupe_key=f"stripe:event:{event.dedupe_key}"),),
    )


# --- dispatch ------------------------------------------------------------------------------------


def translate_event(
    event: ProviderEvent,
    facts: Facts,
    *,
    acquirer_country: str,
    billing_context: BillingResolver | None = None,
) -> Translation:
    """Translate one Stripe snapshot event (see the module docstring for the source of truth)."""
    kind = event.type
    if kind == "invoice.payment_failed":
        return translate_invoice_attempt(
            event, facts, paid=False, acquirer_country=acquirer_country
        )
    if kind == "invoice.payment_succeeded":
        return translate_invoice_attempt(event, facts, paid=True, acquirer_country=acquirer_country)
    if kind == "invoice.paid":
        return Translation.ignore(
            event,
            "invoice.payment_succeeded carries a successful attempt; invoice.paid also fires "
            "for out-of-band payments, which are not attempts",
        )
    if kind == "invoice.payment_action_required":
        return Translation.ignore(
            event,
            "the attempt is reported by invoice.payment_failed; this event only says the "
            "customer must authenticate on-session",
        )
    if kind in ("charge.failed", "charge.succeeded"):
        return translate_charge(
            event, facts, acquirer_country=acquirer_country, billing_context=billing_context
        )
    if kind in ("payment_intent.payment_failed", "payment_intent.succeeded"):
        return Translation.ignore(
            event,
            "charge.* (non-invoice) or invoice.payment_* (invoice) carries this attempt; a "
            "PaymentIntent failure without a charge never reached a card network",
        )
    if kind in _PM_REASONS:
        return translate_payment_method(event)
    if kind == BACKFILL_EVENT_TYPE:
        return translate_backfilled_charge(
            event, facts, acquirer_country=acquirer_country, billing_context=billing_context
        )
    if kind in _LEDGER_EVENTS:
        return Translation.ignore(
            event, "ledger state (invoice/subscription status), not a Recover message"
        )
    return Translation.ignore(event, f"event type {kind} carries nothing for Recover")
