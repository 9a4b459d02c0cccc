"""Pure conversions: Braintree SDK objects → Recover wire models.

Nothing here calls Braintree; facts a webhook lacks come in through a :class:`Facts` object
(the provider's cached ``transaction.find`` / ``subscription.find``). Amounts are Braintree's
decimal major-unit strings, already ``Decimal`` in the SDK: no float, no minor-unit conversion.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Protocol

import pycountry

from recoverkit.declines import NormalizedDecline
from recoverkit.errors import MissingFactError
from recoverkit.provider import RecoverMessage
from recoverkit.schema import (
    Customer,
    Invoice,
    Outcome,
    PaymentEvent,
    PaymentMethodUpdate,
    ResponseType,
    Subscription,
    Transaction,
)
from recoverkit_braintree.codes import (
    card_network,
    decline_for,
    funding_source,
    settlement_outcome,
)

__all__ = [
    "Facts",
    "attempt",
    "cycle_of",
    "invoice_id",
    "issuer_country",
    "payment_event_message",
    "payment_method_update",
    "utc",
]

logger = logging.getLogger("recoverkit_braintree.translate")
PSP = "braintree"


class Facts(Protocol):
    """Where translation reads what a webhook lacks (cached Braintree lookups)."""

    def transaction(self, transaction_id: str) -> Any:
        """The SDK ``Transaction`` with this id."""

    def subscription(self, subscription_id: str) -> Any:
        """The SDK ``Subscription`` with this id, as Braintree holds it now."""


def utc(value: datetime | date | None) -> datetime | None:
    """A timezone-aware UTC datetime (the SDK parses ``Z`` timestamps as naive UTC)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, time.min, tzinfo=UTC)


def _get(obj: Any, name: str) -> Any:
    value = getattr(obj, name, None) if obj is not None else None
    return None if value == "" else value


def _period_start(txn: Any) -> date | None:
    details = getattr(txn, "subscription_details", None)
    start = getattr(details, "billing_period_start_date", None)
    if isinstance(start, date):
        return start
    if isinstance(start, str) and start:  # the SDK leaves some dates as text in nested details
        return date.fromisoformat(start)
    return None


def invoice_id(txn: Any, subscription_id: str | None) -> str:
    """Recover's invoice id for an attempt.

    A subscription cycle is ``<subscription id>:<billing period start>`` so every attempt of the
    cycle (first charge and retries) shares it; a one-off charge uses its ``order_id`` or id.
    """
    start = _period_start(txn)
    if subscription_id and start is not None:
        return f"{subscription_id}:{start.isoformat()}"
    if subscription_id:
        return f"{subscription_id}:{_get(txn, 'id')}"
    return str(_get(txn, "order_id") or _get(txn, "id"))


_TOKEN_HOLDERS = ("credit_card_details", "paypal_details", "us_bank_account", "venmo_account")
_INSTRUMENT_SCHEMES = {"paypal_account": "paypal", "us_bank_account": "ach"}
_CAPTURED = frozenset({"submitted_for_settlement", "settling", "settled"})


def _payment_method_id(txn: Any, card: Any, subscription: Any) -> str:
    token = getattr(card, "token", None)
    if token:
        return str(token)
    for details in _TOKEN_HOLDERS[1:]:
        token = getattr(getattr(txn, details, None), "token", None)
        if token:
            return str(token)
    token = _get(subscription, "payment_method_token")
    if token:
        return str(token)
    raise MissingFactError(
        f"braintree: transaction {_get(txn, 'id')} names no payment method token and has no "
        "subscription to take it from; Recover needs payment_method_id",
        provider=PSP,
        object_id=_get(txn, "id"),
    )


def _scheme(txn: Any, card: Any) -> str:
    network = card_network(getattr(card, "card_type", None))
    if network and network != "unknown":
        return network
    instrument = str(_get(txn, "payment_instrument_type") or "unknown")
    return _INSTRUMENT_SCHEMES.get(instrument, instrument)


def _response_type(decline: NormalizedDecline | None) -> ResponseType | None:
    if decline is None:
        return None
    if decline.response_type.value == "hard_decline":
        return ResponseType.HARD_DECLINE
    return ResponseType.SOFT_DECLINE


def _outcome(txn: Any, decline: NormalizedDecline | None) -> Outcome:
    """What Recover is told about the attempt, from the step that decided it.

    A settlement decline carries the settlement outcome (code, text, ACH return code), never the
    authorization's ``1000 Approved``; a gateway rejection says what Braintree refused and why.
    """
    status = _get(txn, "status")
    settlement = settlement_outcome(txn)
    if settlement is not None:
        code = settlement.code
        return Outcome(
            raw_response_message=settlement.describe(),
            psp_response_message=settlement.text or (decline.message if decline else None),
            processor_response_code=int(code) if code and code.isdigit() else None,
            network_status=settlement.ach_return_code,
            response_type=_response_type(decline),
        )
    if status == "gateway_rejected":
        message = decline.message if decline and decline.message else "Gateway Rejected"
        return Outcome(
            raw_response_message=message,
            psp_response_message=message,
            processor_response_code=None,
            network_status=None,
            response_type=_response_type(decline),
        )
    code = _get(txn, "processor_response_code")
    text = _get(txn, "processor_response_text")
    raw = (
        _get(txn, "additional_processor_response")
        or (f"{code} : {text}" if code and text else None)
        or (decline.message if decline else None)
        or str(status)
    )
    return Outcome(
        raw_response_message=str(raw),
        psp_response_message=text or (decline.message if decline else None),
        processor_response_code=int(code) if code and str(code).isdigit() else None,
        network_status=_get(txn, "network_response_code"),
        response_type=_response_type(decline),
    )


def issuer_country(value: Any) -> str | None:
    """Recover's ISO 3166-1 alpha-2 issuer country from Braintree's ``country_of_issuance``.

    Braintree gives alpha-3 (``USA``, ``DEU``); ``Unknown``, empty or unrecognised → None.
    Conversion goes through pycountry's ISO 3166 database, not a hand-written table.
    """
    if not isinstance(value, str):
        return None
    code = value.strip().upper()
    if len(code) == 3 and code.isalpha():
        country = pycountry.countries.get(alpha_3=code)
    elif len(code) == 2 and code.isalpha():
        country = pycountry.countries.get(alpha_2=code)
    else:
        return None
    return str(country.alpha_2) if country is not None else None


def attempt(
    txn: Any, *, subscription: Any, acquirer_country: str
) -> tuple[Transaction, NormalizedDecline | None]:
    """One Braintree transaction as Recover's ``transactions[]`` item, with its decline."""
    decline = decline_for(txn)
    txn_id = str(txn.id)
    currency = _get(txn, "currency_iso_code")
    created = utc(_get(txn, "created_at"))
    if not currency or created is None:
        raise MissingFactError(
            f"braintree: transaction {txn_id} lacks currency_iso_code or created_at; "
            "translate it from transaction.find, not from a webhook subject",
            provider=PSP,
            object_id=txn_id,
        )
    card = getattr(txn, "credit_card_details", None)
    bin_ = getattr(card, "bin", None)
    wire = Transaction(
        id=txn_id,
        psp_transaction_id=txn_id,
        psp=PSP,
        acquirer_country=acquirer_country,
        amount=Decimal(txn.amount),
        currency=str(currency),
        funding_source=funding_source(txn),
        payment_method_id=_payment_method_id(txn, card, subscription),
        psp_transaction_created_at=created,
        scheme=_scheme(txn, card),
        success=decline is None,
        outcome=_outcome(txn, decline),
        network_transaction_id=_get(txn, "network_transaction_id"),
        mid=_get(txn, "merchant_account_id"),
        bin=bin_ if isinstance(bin_, str) and bin_.isdigit() and 6 <= len(bin_) <= 8 else None,
        captured=_get(txn, "status") in _CAPTURED,
        issuer_country=issuer_country(getattr(card, "country_of_issuance", None)),
        refunded=bool(getattr(txn, "refund_ids", None)) or None,
    )
    return wire, decline


def cycle_of(txn: Any, subscription: Any) -> list[Any]:
    """Every attempt of ``txn``'s billing cycle that the subscription lists, oldest first.

    ``txn`` itself (fresh from ``transaction.find``) replaces its copy in the subscription's list.
    """
    start = _period_start(txn)
    same: dict[str, Any] = {}
    for other in _get(subscription, "transactions") or []:
        if _get(other, "type") not in (None, "sale"):
            continue
        if start is not None and _period_start(other) == start:
            same[str(_get(other, "id"))] = other
    same[str(txn.id)] = txn
    if len(same) == 1:
        return [txn]
    epoch = datetime.min.replace(tzinfo=UTC)
    return sorted(same.values(), key=lambda t: (utc(_get(t, "created_at")) or epoch, _get(t, "id")))


def payment_event_message(
    attempts: Sequence[Any],
    *,
    subscription: Any,
    acquirer_country: str,
    dedupe_key: str,
) -> RecoverMessage:
    """A Payments event for one invoice cycle; its decline is the newest attempt's."""
    if not attempts:
        raise ValueError("a Payments event needs at least one attempt")
    newest = attempts[-1]
    items: list[Transaction] = []
    decline: NormalizedDecline | None = None
    for txn in attempts:
        item, decline = attempt(txn, subscription=subscription, acquirer_country=acquirer_country)
        items.append(item)
    customer_id = _customer_id(attempts)
    subscription_id = _get(subscription, "id") or _get(newest, "subscription_id")
    invoice = invoice_id(attempts[0], subscription_id)
    first_created = items[0].psp_transaction_created_at
    period_start = utc(_period_start(attempts[0]))
    start = (
        utc(_get(subscription, "created_at"))
        or utc(_get(subscription, "first_billing_date"))
        or first_created
    )
    body = PaymentEvent(
        customer=Customer(id=customer_id, psp_id=customer_id),
        subscription=Subscription(
            id=str(subscription_id or invoice),
            start_date=start,
            product_id=_get(subscription, "plan_id"),
        ),
        invoice=Invoice(id=invoice, created_at=period_start or first_created),
        transactions=items,
    )
    return RecoverMessage(body=body, dedupe_key=dedupe_key, decline=decline)


def _customer_id(attempts: Iterable[Any]) -> str:
    for txn in reversed(list(attempts)):
        customer = _get(_get(txn, "customer_details"), "id")
        if customer:
            return str(customer)
    ids = [_get(t, "id") for t in attempts]
    raise MissingFactError(
        f"braintree: transactions {ids} carry no customer id; Recover needs customer.id",
        provider=PSP,
        object_id=str(ids[-1]) if ids else None,
    )


def payment_method_update(
    *, customer_id: str | None, token: str | None, reason: str, dedupe_key: str, object_id: str
) -> RecoverMessage:
    """A Payment Method Update for a vaulted payment method."""
    if not customer_id or not token:
        raise MissingFactError(
            f"braintree: {object_id} lacks a customer id or payment method token",
            provider=PSP,
            object_id=object_id,
        )
    body = PaymentMethodUpdate(
        customer_id=customer_id, psp_customer_id=customer_id, payment_method_id=token, reason=reason
    )
    return RecoverMessage(body=body, dedupe_key=dedupe_key)
