"""Field types shared by the wire models: UTC timestamps, currency codes, money amounts."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, PlainValidator, WithJsonSchema

from recoverkit.schema.money import is_currency


def _as_utc(value: datetime) -> datetime:
    # Butter's webhook examples carry timestamps with no zone; RECOVER_API.md reads them as UTC.
    if value.tzinfo is UTC:  # the common case, and the cheapest
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, microseconds only when present: ``2023-09-25T03:57:26Z``."""
    text = _as_utc(value).isoformat()
    return text.removesuffix("+00:00") + "Z"


def _currency_code(value: str) -> str:
    if value in _KNOWN_CODES:  # the common case: a code already seen, upper case
        return value
    code = value.upper()
    if not is_currency(code):
        raise ValueError(f"{value!r} is not an ISO 4217 currency code")
    _KNOWN_CODES.add(code)  # bounded: ISO 4217 has fewer than 200 codes with decimals
    return code


_KNOWN_CODES: set[str] = set()


MAX_AMOUNT_DIGITS = 15


def _amount(value: object) -> Decimal:
    """The whole check of an amount, in one call (the wire models build one per transaction)."""
    if value.__class__ is not Decimal:
        # Recover sends and takes amounts as JSON numbers, never strings: "49.99" is refused.
        if isinstance(value, str):
            raise ValueError("an amount must be a JSON number, not a string")
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError("an amount must be a finite number")
            # A JSON number arrives as a float; repr() gives the shortest text that round-trips,
            # which is the text that was on the wire (exact up to 15 significant digits).
            value = Decimal(repr(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            value = Decimal(value)
        elif not isinstance(value, Decimal):
            raise ValueError(f"an amount must be a JSON number, not {type(value).__name__}")
    assert isinstance(value, Decimal)
    if not value.is_finite():
        raise ValueError("an amount must be a finite number")
    if value < 0:
        raise ValueError("an amount must not be negative")
    digits = len(value.as_tuple().digits)
    if digits > MAX_AMOUNT_DIGITS:
        raise ValueError(
            f"an amount may have at most {MAX_AMOUNT_DIGITS} digits, this one has {digits}"
        )
    return value


#: A timestamp: naive values are read as UTC; sent as ISO 8601 UTC with ``Z`` (pydantic writes
#: an aware UTC datetime that way itself, so no Python serializer sits on the hot path).
Timestamp = Annotated[datetime, AfterValidator(_as_utc)]

#: An ISO 4217 alphabetic code, upper case on the wire.
CurrencyCode = Annotated[str, AfterValidator(_currency_code)]


#: An amount in decimal major units; never negative, never NaN or infinite, at most 15
#: significant digits. It stays a ``Decimal`` when serialised: :func:`~.encoding.dumps` writes it
#: as a JSON number with its exact decimal text (``8.00``, never ``8.0``), and the models that
#: carry a currency give it that currency's number of decimals
#: (:func:`~recoverkit.schema.money.wire_amount`).
Amount = Annotated[
    Decimal,
    # One Python call does every check (pydantic's Decimal validation would add a second pass).
    PlainValidator(_amount),
    # What travels, in both directions: a JSON number (a string is refused, see _amount).
    WithJsonSchema({"type": "number", "minimum": 0}),
]
