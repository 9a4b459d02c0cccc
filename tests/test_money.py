"""Minor ⇄ major unit conversion with ISO 4217 exponents and per-PSP overrides."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import ClassVar

import pytest

# The shipped plugins declare their PSPs' exponents; importing them registers the tables.
import recoverkit_adyen
import recoverkit_stripe
from hypothesis import given
from hypothesis import strategies as st

from recoverkit.provider import Provider
from recoverkit.schema import money
from recoverkit.schema.money import (
    PSP_EXPONENT_OVERRIDES,
    UnknownCurrencyError,
    exponent,
    register_exponents,
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


def test_the_plugins_declare_their_psps_exponents() -> None:
    assert PSP_EXPONENT_OVERRIDES["stripe"] is recoverkit_stripe.StripeProvider.currency_exponents
    assert PSP_EXPONENT_OVERRIDES["adyen"] == recoverkit_adyen.AdyenProvider.currency_exponents
    assert dict(PSP_EXPONENT_OVERRIDES["adyen"]) == {"CLP": 2, "CVE": 0, "ISK": 2}


@pytest.fixture
def registry() -> Iterator[None]:
    """Tables a test registers are gone after it (the registry is process-wide)."""
    before = dict(money._REGISTERED)
    yield
    money._REGISTERED.clear()
    money._REGISTERED.update(before)


@pytest.mark.usefixtures("registry")
def test_a_provider_class_attribute_registers_its_exponents() -> None:
    class TinyPay(Provider):
        name = "tinypay-money-test"
        currency_exponents: ClassVar[Mapping[str, int]] = {"JPY": 2, "KWD": 2}

    assert exponent("jpy", psp="tinypay-money-test") == 2
    assert to_major(1234, "KWD", psp="tinypay-money-test") == Decimal("12.34")
    assert exponent("JPY") == 0  # ISO, and every other PSP, unchanged
    assert exponent("JPY", psp="stripe") == 0
    assert TinyPay.currency_exponents == {"JPY": 2, "KWD": 2}
    with pytest.raises(TypeError):  # frozen once registered
        TinyPay.currency_exponents["JPY"] = 0  # type: ignore[index]


def test_a_subclass_inherits_its_parents_table_without_registering_again() -> None:
    class Child(recoverkit_stripe.StripeProvider):
        pass

    assert Child.currency_exponents is PSP_EXPONENT_OVERRIDES["stripe"]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"XYZ": 2}, "ISO 4217"),
        ({"usd": 2}, "upper-case"),
        ({"USD": 7}, "0 to 4"),
        ({"USD": True}, "0 to 4"),
    ],
)
@pytest.mark.usefixtures("registry")
def test_a_bad_exponent_table_is_refused(table: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        register_exponents("badpay-money-test", table)
    assert "badpay-money-test" not in PSP_EXPONENT_OVERRIDES


@pytest.mark.usefixtures("registry")
def test_two_tables_for_one_psp_are_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_exponents("stripe", {"ISK": 0})
    assert register_exponents("stripe", dict(PSP_EXPONENT_OVERRIDES["stripe"]))["ISK"] == 2
