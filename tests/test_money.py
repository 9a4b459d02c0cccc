"""Minor ⇄ major unit conversion with ISO 4217 exponents and per-PSP overrides."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoverkit.schema.money import (
    PSP_EXPONENT_OVERRIDES,
    UnknownCurrencyError,
    exponent,
    to_major,
    to_minor,
)


@pytest.mark.parametrize(
    ("minor", "currency", "psp", "major"),
    [
        (1223, "usd", None, Decimal("12.23")),
        (500, "JPY", None, Decimal("500")),
        (1234, "KWD", None, Decimal("1.234")),
        (1000, "isk", None, Decimal("1000")),
        (100000, "ISK", "stripe", Decimal("1000.00")),
        (1500, "MGA", "stripe", Decimal("1500")),
        (1500, "MGA", None, Decimal("15.00")),
        (150000, "CLP", "adyen", Decimal("1500.00")),
        (1500, "CLP", "stripe", Decimal("1500")),
        (1500, "CVE", "adyen", Decimal("1500")),
        (1500, "CVE", None, Decimal("15.00")),
        (1999, "EUR", "braintree", Decimal("19.99")),
    ],
)
def test_minor_units_become_major_units(
    minor: int, currency: str, psp: str | None, major: Decimal
) -> None:
    assert to_major(minor, currency, psp) == major
    assert str(to_major(minor, currency, psp)) == str(major)


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(UnknownCurrencyError, match="XYZ"):
        exponent("XYZ")
    with pytest.raises(UnknownCurrencyError):
        exponent("XAU")  # gold has no decimals defined


def test_float_amounts_are_refused() -> None:
    with pytest.raises(TypeError):
        to_major(12.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_minor(12.5, "USD")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_major(True, "USD")


def test_amount_finer_than_the_currency_is_refused() -> None:
    with pytest.raises(ValueError, match="more decimals"):
        to_minor(Decimal("1.5"), "JPY")


def test_every_override_is_a_real_currency_with_a_sane_exponent() -> None:
    for psp, table in PSP_EXPONENT_OVERRIDES.items():
        for code, digits in table.items():
            assert digits in (0, 2, 3), (psp, code)
            assert exponent(code) in (0, 2, 3), (psp, code)


@given(
    minor=st.integers(min_value=0, max_value=10**15),
    currency=st.sampled_from(["USD", "JPY", "KWD", "ISK", "CLP", "MGA", "EUR"]),
    psp=st.sampled_from([None, "stripe", "adyen"]),
)
def test_round_trip_is_exact(minor: int, currency: str, psp: str | None) -> None:
    assert to_minor(to_major(minor, currency, psp), currency, psp) == minor
