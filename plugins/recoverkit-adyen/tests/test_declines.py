"""Adyen refusal data → the core decline taxonomy."""

from __future__ import annotations

import logging

import pytest
from recoverkit_adyen.codes import (
    decline_table,
    iso_code_from_raw,
    network_name,
    normalize_refusal,
)

from recoverkit.declines import Advice, DeclineCategory, ResponseType


def test_decline_table_is_valid_and_every_row_has_a_source() -> None:
    table = decline_table()
    table.validate()
    assert all(row.source.startswith("https://") for row in table.rows)
    codes = {row.code for row in table.rows}
    assert {"2", "6", "12", "46"} <= codes
    assert not {"13", "30"} & codes  # Adyen has no such codes


@pytest.mark.parametrize(
    ("reason", "category", "response_type"),
    [
        ("Not enough balance", DeclineCategory.INSUFFICIENT_FUNDS, ResponseType.SOFT),
        ("Expired Card", DeclineCategory.CARD_DATA_INVALID, ResponseType.HARD),
        ("Blocked Card", DeclineCategory.LOST_STOLEN, ResponseType.HARD),
        ("Revocation Of Auth", DeclineCategory.REVOKED_BY_CARDHOLDER, ResponseType.HARD),
        ("Issuer Unavailable", DeclineCategory.ISSUER_UNAVAILABLE, ResponseType.SOFT),
        ("Withdrawal count exceeded", DeclineCategory.LIMIT_EXCEEDED, ResponseType.SOFT),
        ("Authentication required", DeclineCategory.AUTHENTICATION_REQUIRED, ResponseType.HARD),
        ("FRAUD-CANCELLED", DeclineCategory.FRAUD_SUSPECTED, ResponseType.HARD),
    ],
)
def test_webhook_reason_text_maps_case_insensitively(
    reason: str, category: DeclineCategory, response_type: ResponseType
) -> None:
    for text in (reason, reason.upper(), f" {reason.lower()} "):
        decline = normalize_refusal(reason=text)
        assert (decline.category, decline.response_type) == (category, response_type)
        assert decline.recognized


def test_numeric_refusal_code_maps_like_its_text() -> None:
    by_code = normalize_refusal(code="12", reason="Not enough balance")
    assert by_code.category is DeclineCategory.INSUFFICIENT_FUNDS
    assert by_code.raw_code == "12"
    assert normalize_refusal(code="6").category is DeclineCategory.CARD_DATA_INVALID


def test_generic_refusal_is_refined_by_the_raw_acquirer_code() -> None:
    decline = normalize_refusal(reason="Refused", raw="51 : Insufficient funds", network="visa")
    assert decline.category is DeclineCategory.INSUFFICIENT_FUNDS
    assert decline.iso_response_code == "51"
    assert decline.visa_category == 2
    assert decline.raw_code == "Refused"


def test_specific_refusal_is_not_overridden_by_the_raw_code() -> None:
    decline = normalize_refusal(reason="Expired Card", raw="05 : Do not honor")
    assert decline.category is DeclineCategory.CARD_DATA_INVALID
    assert decline.iso_response_code == "05"


def test_inferred_refusal_reason_refines_not_supported() -> None:
    decline = normalize_refusal(code="10", inferred="Closed Account")
    assert decline.category is DeclineCategory.ACCOUNT_INVALID
    assert decline.advice is Advice.DO_NOT_TRY_AGAIN


def test_mastercard_advice_code_03_makes_any_decline_final() -> None:
    decline = normalize_refusal(
        reason="Not enough balance",
        merchant_advice_code="03 : Do not try again",
        network="mastercard",
    )
    assert decline.category is DeclineCategory.INSUFFICIENT_FUNDS
    assert decline.response_type is ResponseType.HARD
    assert decline.advice is Advice.DO_NOT_TRY_AGAIN
    assert decline.mastercard_advice_code == "03"


def test_mastercard_advice_code_01_waits_for_new_card_data() -> None:
    decline = normalize_refusal(
        reason="Refused", merchant_advice_code="01 : New account information available"
    )
    assert decline.response_type is ResponseType.HARD
    assert decline.advice is Advice.CONFIRM_CARD_DATA


def test_adyen_retry_block_was_never_sent_to_the_network() -> None:
    decline = normalize_refusal(code="46")
    assert decline.category is DeclineCategory.BLOCKED_BY_PSP
    assert decline.sent_to_network is False


def test_unknown_reason_falls_to_generic_soft_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="recoverkit.declines"):
        decline = normalize_refusal(reason="Something Adyen adds next year")
    assert decline.category is DeclineCategory.GENERIC_SOFT
    assert decline.response_type is ResponseType.SOFT
    assert decline.recognized is False
    assert "Something Adyen adds next year" in caplog.text


def test_capture_failure_falls_back_to_its_event_row() -> None:
    decline = normalize_refusal(reason="Capture Failed", fallback="event:CAPTURE_FAILED")
    assert decline.recognized
    assert decline.category is DeclineCategory.GENERIC_SOFT


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("05 : Do not honor", "05"),
        ("51: Insufficient funds", "51"),
        ("1A : Additional customer authentication required", "1A"),
        ("DECLINED Expiry Incorrect", None),
        ("AUTHORISED", None),
        (None, None),
    ],
)
def test_iso_code_is_read_from_the_raw_acquirer_response(raw: str | None, iso: str | None) -> None:
    assert iso_code_from_raw(raw) == iso


@pytest.mark.parametrize(
    ("method", "network"),
    [
        ("mc", "mastercard"),
        ("visa", "visa"),
        ("amex", "amex"),
        ("maestro", "mastercard"),
        (None, None),
    ],
)
def test_payment_method_names_the_network(method: str | None, network: str | None) -> None:
    assert network_name(method) == network


@pytest.mark.parametrize(
    ("refusal", "mac", "response_type", "advice"),
    [
        # Referral (ISO 01) is Visa category 4: reattempts are allowed within the scheme caps.
        ({"reason": "Referral"}, None, ResponseType.SOFT, None),
        ({"code": "3"}, None, ResponseType.SOFT, None),
        ({"reason": "referral", "raw": "01: Refer to card issuer"}, None, ResponseType.SOFT, None),
        ({"reason": "Refused", "raw": "01 : Refer to card issuer"}, None, ResponseType.SOFT, None),
        # ... unless the issuer's Mastercard advice says otherwise: the advice wins.
        ({"reason": "Referral"}, "03 : Do not try", ResponseType.HARD, Advice.DO_NOT_TRY_AGAIN),
        ({"reason": "Referral"}, "21", ResponseType.HARD, Advice.DO_NOT_TRY_AGAIN),
    ],
)
def test_referral_is_soft_unless_the_advice_forbids_retries(
    refusal: dict[str, str], mac: str | None, response_type: ResponseType, advice: Advice | None
) -> None:
    decline = normalize_refusal(**refusal, merchant_advice_code=mac, network="mastercard")
    assert decline.category is DeclineCategory.GENERIC_SOFT
    assert decline.iso_response_code in (None, "01")
    assert decline.response_type is response_type
    assert decline.advice is advice
    assert decline.recognized


def test_referral_row_note_agrees_with_its_mapping_and_names_its_source() -> None:
    row = decline_table().lookup("3")
    assert row is not None
    assert (row.category, row.response_type, row.iso_response_code) == (
        DeclineCategory.GENERIC_SOFT,
        ResponseType.SOFT,
        "01",
    )
    assert row.extra["note"].startswith("soft:")
    assert "no retry" not in row.extra["note"].split(";")[0]
    assert "visa" in row.source  # the Visa category rules decided it, not Adyen's code list
