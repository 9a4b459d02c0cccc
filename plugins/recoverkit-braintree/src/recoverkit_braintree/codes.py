"""Braintree decline and status tables: transaction → :class:`NormalizedDecline`.

The decline table is ``declines.csv`` (a ``source`` URL on every row). Lookup order for a
declined transaction: gateway rejection reason, settlement decline, processor response code
(exact row, then the ``2109-2999`` range row). A Mastercard merchant advice code and the network's
own response code refine the row through :func:`recoverkit.declines.normalize`.
"""

from __future__ import annotations

import dataclasses
import logging
import re
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
    "SettlementOutcome",
    "card_network",
    "decline_for",
    "decline_table",
    "funding_source",
    "settlement_outcome",
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


_SETTLEMENT_STATUSES: Final = frozenset({"settlement_declined", "settlement_failed"})
_ACH_RETURN = re.compile(r"R\d\d")


def table_key(status: str, code: str | None, gateway_reason: str | None) -> str:
    """The ``declines.csv`` row key for a declined transaction's raw facts.

    ``code`` is the processor response code, or for a settlement decline the ACH return code or
    the settlement response code. A status is only a key when nothing more specific is known,
    and then through its own explicit row (``processor_declined``, ``failed``, …).
    """
    table = decline_table()
    if status == "gateway_rejected":
        specific = f"gateway_rejected:{gateway_reason}"
        return specific if gateway_reason and table.lookup(specific) else status
    code = (code or "").strip()
    if status in _SETTLEMENT_STATUSES:
        return code if code and table.lookup(code) else "settlement_declined"
    if code and table.lookup(code) is None and code.isdigit() and 2109 <= int(code) <= 2999:
        return _RANGE_ROW
    if code:
        return code
    return status if table.lookup(status) else "processor_declined"


@dataclasses.dataclass(frozen=True, slots=True)
class SettlementOutcome:
    """What a settlement decline says: settlement response code/text and any ACH return code."""

    code: str | None
    text: str | None
    ach_return_code: str | None

    @property
    def key_code(self) -> str | None:
        """The most specific code: the ACH return code when known, else the settlement code."""
        return self.ach_return_code or self.code

    def describe(self) -> str:
        """``"4001 : Settlement Declined; ACH return code R01"`` (what Recover is told)."""
        head = " : ".join(p for p in (self.code, self.text) if p) or "settlement declined"
        return f"{head}; ACH return code {self.ach_return_code}" if self.ach_return_code else head


def settlement_outcome(transaction: Any) -> SettlementOutcome | None:
    """The settlement outcome of a settlement-declined transaction, else None.

    Braintree's settlement response codes are the 4000 class (4001 Settlement Declined, …); an
    ACH return code (R01, R02, …) comes in ``ach_return_code`` when Braintree gives one (or in
    place of the settlement code).
    """
    if _attr(transaction, "status") not in _SETTLEMENT_STATUSES:
        return None
    code = _attr(transaction, "processor_settlement_response_code")
    ach = _attr(transaction, "ach_return_code")
    code_text = str(code).strip() if code is not None else None
    if ach is None and code_text and _ACH_RETURN.fullmatch(code_text.upper()):
        ach, code_text = code_text, None
    return SettlementOutcome(
        code=code_text,
        text=_attr(transaction, "processor_settlement_response_text"),
        ach_return_code=str(ach).strip().upper() if ach is not None else None,
    )


def _row_text(key: str) -> str | None:
    row = decline_table().lookup(key)
    text = row.extra.get("text") if row is not None else None
    return text or None


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
    settlement = settlement_outcome(transaction)
    message: str | None
    if settlement is not None:
        key = table_key(status, settlement.key_code, None)
        raw = settlement.key_code or key
        message = settlement.describe()
    elif status == "gateway_rejected":
        key = table_key(status, None, gateway_reason)
        # The raw code is Braintree's rejection reason itself (never sent to the network).
        raw = str(gateway_reason) if gateway_reason else status
        explained = _row_text(key)
        message = f"Gateway Rejected: {gateway_reason or 'no reason given'}" + (
            f" ({explained})" if explained else ""
        )
    else:
        key = table_key(status, code, None)
        raw = str(code) if code else key
        message = _attr(transaction, "processor_response_text") or _row_text(key)
    card = getattr(transaction, "credit_card_details", None)
    network = card_network(_attr(card, "card_type")) if card is not None else None
    # The authorization's network code and advice do not describe a later settlement decline.
    network_code = None if settlement else _attr(transaction, "network_response_code")
    iso = network_code if network_code and iso_response(network_code) else None
    decline = normalize(
        decline_table(),
        key,
        message=message,
        iso_response_code=iso,
        mastercard_advice_code=None if settlement else _attr(transaction, "merchant_advice_code"),
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
