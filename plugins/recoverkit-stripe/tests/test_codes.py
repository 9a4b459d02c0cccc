"""The decline table covers every Stripe code in research/stripe-and-networks.md §4."""

from __future__ import annotations

import pytest
from recoverkit_stripe.codes import decline_from_charge, decline_from_error, decline_table

from recoverkit.declines import Advice, DeclineCategory, ResponseType

# research §4.1 (decline_code), §4.1 notes (authentication_not_handled), PITFALLS (failure codes
# that are not card_declined), §4.3 / §9 (outcome reasons and types).
DECLINE_CODES = [
    "authentication_required",
    "approve_with_id",
    "call_issuer",
    "card_not_supported",
    "card_velocity_exceeded",
    "currency_not_supported",
    "do_not_honor",
    "do_not_try_again",
    "duplicate_transaction",
    "expired_card",
    "fraudulent",
    "generic_decline",
    "incorrect_number",
    "invalid_number",
    "incorrect_cvc",
    "invalid_cvc",
    "incorrect_zip",
    "incorrect_pin",
    "invalid_pin",
    "offline_pin_required",
    "online_or_offline_pin_required",
    "pin_try_exceeded",
    "insufficient_funds",
    "invalid_account",
    "invalid_amount",
    "invalid_expiry_month",
    "invalid_expiry_year",
    "issuer_not_available",
    "lost_card",
    "merchant_blacklist",
    "new_account_information_available",
    "no_action_taken",
    "not_permitted",
    "pickup_card",
    "processing_error",
    "reenter_transaction",
    "restricted_card",
    "revocation_of_all_authorizations",
    "revocation_of_authorization",
    "security_violation",
    "service_not_allowed",
    "stolen_card",
    "stop_payment_order",
    "testmode_decline",
    "transaction_not_allowed",
    "try_again_later",
    "withdrawal_count_limit_exceeded",
    "authentication_not_handled",
]
FAILURE_CODES = [
    "card_declined",
    "expired_card",
    "incorrect_cvc",
    "processing_error",
    "incorrect_number",
]
OUTCOME_VALUES = [
    "highest_risk_level",
    "elevated_risk_level",
    "rule",
    "previously_declined_do_not_retry",
    "low_probability_of_authorization",
    "blocked",
    "invalid",
]


def test_table_is_valid_and_every_row_has_a_stripe_source() -> None:
    table = decline_table()
    table.validate()
    assert table.version == "2026-11-30"
    for row in table.rows:
        assert row.source.startswith("https://"), row.code


@pytest.mark.parametrize("code", DECLINE_CODES + FAILURE_CODES + OUTCOME_VALUES)
def test_every_researched_code_has_a_row(code: str) -> None:
    assert decline_table().lookup(code) is not None, code


@pytest.mark.parametrize(
    ("code", "category", "response_type"),
    [
        ("insufficient_funds", DeclineCategory.INSUFFICIENT_FUNDS, ResponseType.SOFT),
        ("lost_card", DeclineCategory.LOST_STOLEN, ResponseType.HARD),
        ("stolen_card", DeclineCategory.LOST_STOLEN, ResponseType.HARD),
        ("revocation_of_authorization", DeclineCategory.REVOKED_BY_CARDHOLDER, ResponseType.HARD),
        ("do_not_honor", DeclineCategory.GENERIC_SOFT, ResponseType.SOFT),
        ("processing_error", DeclineCategory.ISSUER_UNAVAILABLE, ResponseType.SOFT),
        ("authentication_required", DeclineCategory.AUTHENTICATION_REQUIRED, ResponseType.SOFT),
        ("fraudulent", DeclineCategory.FRAUD_SUSPECTED, ResponseType.HARD),
        ("previously_declined_do_not_retry", DeclineCategory.BLOCKED_BY_PSP, ResponseType.SOFT),
    ],
)
def test_categories_follow_the_research(
    code: str, category: DeclineCategory, response_type: ResponseType
) -> None:
    row = decline_table().lookup(code)
    assert row is not None
    assert (row.category, row.response_type) == (category, response_type)


def test_advice_code_from_stripe_wins_over_the_table() -> None:
    charge = {
        "id": "ch_1",
        "status": "failed",
        "failure_code": "card_declined",
        "outcome": {
            "type": "issuer_declined",
            "network_status": "declined_by_network",
            "reason": "generic_decline",
            "advice_code": "do_not_try_again",
        },
    }
    decline = decline_from_charge(charge)
    assert decline is not None
    assert decline.advice is Advice.DO_NOT_TRY_AGAIN


def test_network_advice_code_is_a_mac_only_on_mastercard() -> None:
    base = {
        "id": "ch_1",
        "status": "failed",
        "failure_code": "card_declined",
        "outcome": {
            "type": "issuer_declined",
            "reason": "do_not_honor",
            "network_advice_code": "03",
        },
    }
    visa = {**base, "payment_method_details": {"card": {"network": "visa"}}}
    mastercard = {**base, "payment_method_details": {"card": {"network": "mastercard"}}}
    assert decline_from_charge(visa).mastercard_advice_code is None  # type: ignore[union-attr]
    decline = decline_from_charge(mastercard)
    assert decline is not None
    assert decline.mastercard_advice_code == "03"
    assert decline.response_type is ResponseType.HARD


def test_successful_charge_has_no_decline() -> None:
    assert decline_from_charge({"id": "ch_1", "status": "succeeded", "outcome": {}}) is None


def test_error_object_decline_prefers_decline_code_over_code() -> None:
    decline = decline_from_error(
        {
            "code": "card_declined",
            "decline_code": "stolen_card",
            "message": "Your card was declined.",
        }
    )
    assert decline.raw_code == "stolen_card"
    assert decline.category is DeclineCategory.LOST_STOLEN


def test_unknown_advice_code_is_dropped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    decline = decline_from_error({"code": "card_declined", "advice_code": "call_the_moon"})
    assert decline.advice is None
    assert "call_the_moon" in caplog.text
