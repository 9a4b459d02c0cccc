"""Money: ISO 4217 exponents, per-PSP overrides, minor ⇄ major unit conversion.

Recover takes amounts as decimal major units (``12.23``); PSPs send integer minor units. This is
the one place that converts between them. Exponents come from ISO 4217 (the maintained ``iso4217``
package, which ships the ISO maintenance agency's ``list-one`` table) except where a PSP documents a
different number of decimals for its API: each plugin declares those (its provider's
``currency_exponents``, with sources) and :data:`PSP_EXPONENT_OVERRIDES` gathers them.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from types import MappingProxyType
from typing import Final

from iso4217 import Currency

__all__ = [
    "PSP_EXPONENT_OVERRIDES",
    "UnknownCurrencyError",
    "exponent",
    "is_currency",
    "register_exponents",
    "to_major",
    "to_minor",
    "wire_amount",
]

#: Where a PSP's API uses another number of decimals than ISO 4217, by PSP name: filled by the
#: plugins (a provider's ``currency_exponents`` class attribute, or :func:`register_exponents`),
#: never edited here. A read-only, live view.
_REGISTERED: dict[str, Mapping[str, int]] = {}
PSP_EXPONENT_OVERRIDES: Final[Mapping[str, Mapping[str, int]]] = MappingProxyType(_REGISTERED)

_NO_OVERRIDES: Final[Mapping[str, int]] = MappingProxyType({})


class UnknownCurrencyError(ValueError):
    """The code is not an ISO 4217 currency with a defined number of decimals."""


@cache
def _iso_exponent(code: str) -> int | None:
    try:
        return Currency(code).exponent
    except ValueError:
        return None


def is_currency(code: str) -> bool:
    """True for an upper-case ISO 4217 code with a defined exponent (not XAU, XXX …)."""
    return code.isupper() and _iso_exponent(code) is not None


def register_exponents(psp: str, table: Mapping[str, int]) -> Mapping[str, int]:
    """Declare ``psp``'s API exponents where they differ from ISO 4217; returns the table frozen.

    A provider class does this for itself through its ``currency_exponents`` class attribute
    (see ``docs/money.md``); call it directly only for a PSP without a provider class. Every code
    must be an ISO 4217 currency and every exponent 0 to 4. Declaring another table for a PSP
    that has one is an error (two plugins disagreeing on money must not pass silently).
    """
    frozen: dict[str, int] = {}
    for code, places in table.items():
        if not is_currency(code):
            raise ValueError(f"{psp}: {code!r} is not an upper-case ISO 4217 code with decimals")
        if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 4:
            raise ValueError(f"{psp}: the exponent of {code} must be an int from 0 to 4")
        frozen[code] = places
    existing = _REGISTERED.get(psp)
    if existing is not None and dict(existing) != frozen:
        raise ValueError(f"{psp}: another table of currency exponents is already registered")
    if existing is None:
        _REGISTERED[psp] = MappingProxyType(frozen)
    return _REGISTERED[psp]


def exponent(currency: str, psp: str | None = None) -> int:
    """The number of decimals of ``currency`` in ``psp``'s API (ISO 4217 when no override)."""
    code = currency.upper()
    if psp is not None:
        override = PSP_EXPONENT_OVERRIDES.get(psp, _NO_OVERRIDES).get(code)
        if override is not None:
            return override
    iso = _iso_exponent(code)
    if iso is None:
        raise UnknownCurrencyError(f"currency {currency!r} is not an ISO 4217 code with decimals")
    return iso


def to_major(minor: int, currency: str, psp: str | None = None) -> Decimal:
    """``1223, "usd"`` → ``Decimal("12.23")``; the result has exactly the currency's decimals."""
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise TypeError(f"minor-unit amount must be an int, not {type(minor).__name__}")
    return Decimal(minor).scaleb(-exponent(currency, psp))


def to_minor(amount: Decimal, currency: str, psp: str | None = None) -> int:
    """``Decimal("12.23"), "USD"`` → ``1223``; refuses amounts finer than the currency allows."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be a Decimal, not {type(amount).__name__}")
    scaled = amount.scaleb(exponent(currency, psp))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency.upper()} has more decimals than the currency allows")
    return int(scaled)


@cache
def _quantum(places: int) -> Decimal:
    return Decimal(1).scaleb(-places)


_UNIT: Final = Decimal(1)


def wire_amount(amount: Decimal, currency: str | None = None) -> Decimal:
    """``amount`` written with ``currency``'s ISO 4217 number of decimals, for the wire text.

    ``Decimal("8.0"), "GBP"`` → ``8.00``; ``Decimal("1200.0"), "JPY"`` → ``1200``;
    ``Decimal("3"), "KWD"`` → ``3.000``. The value never changes: an amount finer than the
    currency (Adyen's two-decimal ``CLP``) keeps its digits. Without a currency (or with a code
    that has no decimals defined) only an exponent form such as ``1E+3`` is written out in full.
    """
    places = None if currency is None else _iso_exponent(currency)
    if places is None:
        if amount.as_tuple().exponent > 0:  # type: ignore[operator]  # finite: checked on input
            return amount.quantize(_UNIT)
        return amount
    try:
        exact = amount.quantize(_quantum(places))
    except ArithmeticError:  # more digits than the context holds: leave it as it is
        return amount
    return exact if exact == amount else amount
