"""Braintree decline and status tables: transaction → :class:`NormalizedDecline`.

The decline table is ``declines.csv`` (a ``source`` URL on every row). Lookup order for a
declined transaction: gateway rejection reason, settlement decline, processor response code
(exact row, then the ``2109-2999`` range row). A Mastercard merchant advice code and the network's
own response code refine the row through :func:`recoverkit.declines.normalize`.
"""

from __future__ import annotations

import dataclasses
import logging
from functools import cache
from importlib.resources import files
from typing import Any, Final

from recoverkit.declines import (
    DeclineTable,
    NormalizedDecline,
    ResponseType,
    iso_response,
    normalize,
)
from recoverkit.schema import FundingSource

__all__ = [
    "DECLINED_STATUSES",
    "SUCCESS_STATUSES",
    "card_network",
    "decline_for",
    "decline_table",
    "funding_source",
    "table_key",
]

logger = logging.getLogger("recoverkit_braintree.codes")

#: Transaction statuses that mean the money was (or is being) collected.
SUCCESS_STATUSES: Final = frozenset(
    {
        "authorized",
        "authorizing",
        "submitted_for_settlement",
        "settling",
        "settlement_pending",
        "settlement_confirmed",
        "settled",
    }
)
#: Transaction statuses that are a declined attempt.
DECLINED_STATUSES: Final = frozenset(
    {"processor_declined", "gateway_rejected", "failed", "settlement_declined", "settlement_failed"}
)

_RANGE_ROW = "2109-2999"
_NETWORKS: Final = {
    "visa": "visa",
    "mastercard": "mastercard",
    "american express": "amex",
    "discover": "discover",
    "jcb": "jcb",
    "maestro": "maestro",
    "unionpay": "unionpay",
    "diners club": "diners",
}


@cache
def decline_table() -> DeclineTable:
    """The bundled ``declines.csv``."""
    return DeclineTable.from_csv(files("recoverkit_braintree") / "declines.csv")


def table_key(status: str, code: str | None, gateway_reason: str | None) -> str:
    """The ``declines.csv`` row key for a declined transaction's raw facts."""
    if status == "gateway_rejected":
        specific = f"gateway_rejected:{gateway_reason}"
        return specific if gateway_reason and decline_table().lookup(specific) else status
    if status in {"settlement_declined", "settlement_failed"}:
        return "settlement_declined"
    code = (code or "").strip()
    if decline_table().lookup(code) is None and code.isdigit() and 2109 <= int(code) <= 2999:
        return _RANGE_ROW
    return code or status


def card_network(card_type: str | None) -> str | None:
    """A lower-case network name from Braintree's ``card_type`` (``"MasterCard"`` → mastercard)."""
    if not card_type:
        return None
    name = card_type.strip().lower()
    return _NETWORKS.get(name, name.replace(" ", "_"))


def _attr(obj: Any, name: str) -> Any:
    value = getattr(obj, name, None)
    return value if value not in ("", None) else None


def decline_for(transaction: Any) -> NormalizedDecline | None:
    """The normalized decline of an SDK ``Transaction``, or None when it succeeded.

    Unknown statuses are treated as declines with the generic soft category and a warning.
    """
    status = _attr(transaction, "status") or "unknown"
    if status in SUCCESS_STATUSES:
        return None
    if status not in DECLINED_STATUSES:
        logger.warning(
            "braintree transaction %s has status %r, not a known outcome; treated as a decline",
            _attr(transaction, "id"),
            status,
        )
    code = _attr(transaction, "processor_response_code")
    gateway_reason = _attr(transaction, "gateway_rejection_reason")
    key = table_key(status, code, gateway_reason)
    if status in {"settlement_declined", "settlement_failed"}:
        raw = _attr(transaction, "processor_settlement_response_code") or status
        message = _attr(transaction, "processor_settlement_response_text")
    elif status == "gateway_rejected":
        raw = key
        message = f"gateway rejected: {gateway_reason or 'no reason given'}"
    else:
        raw = code or status
        message = _attr(transaction, "processor_response_text")
    card = getattr(transaction, "credit_card_details", None)
    network = card_network(_attr(card, "card_type")) if card is not None else None
    network_code = _attr(transaction, "network_response_code")
    iso = network_code if network_code and iso_response(network_code) else None
    decline = normalize(
        decline_table(),
        key,
        message=message,
        iso_response_code=iso,
        mastercard_advice_code=_attr(transaction, "merchant_advice_code"),
        network=network,
        sent_to_network=status != "gateway_rejected",
    )
    if not decline.recognized:
        # Braintree labels each code soft or hard; trust that label for codes our table lacks.
        bt_type = _attr(transaction, "processor_response_type")
        if bt_type == "hard_declined":
            decline = dataclasses.replace(decline, response_type=ResponseType.HARD)
    return decline if decline.raw_code == raw else dataclasses.replace(decline, raw_code=raw)


def funding_source(transaction: Any) -> FundingSource:
    """Recover's ``funding_source`` from the card's BIN indicators or the instrument type."""
    instrument = _attr(transaction, "payment_instrument_type") or ""
    if "paypal" in instrument:
        return FundingSource.PAYPAL
    card = getattr(transaction, "credit_card_details", None)
    if card is None:
        return FundingSource.UNKNOWN
    if _attr(card, "prepaid") == "Yes":
        return FundingSource.PREPAID
    if _attr(card, "debit") == "Yes":
        return FundingSource.DEBIT
    if _attr(card, "debit") == "No":
        return FundingSource.CREDIT
    return FundingSource.UNKNOWN
