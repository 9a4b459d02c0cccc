"""Card-network retry rules: never, after a payment-method change, after a delay, within budgets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recoverkit.declines import Advice, DeclineCategory, NormalizedDecline, ResponseType
from recoverkit.rules import CardAttempt, NetworkRules, Verdict, may_retry

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def decline(
    category: DeclineCategory = DeclineCategory.GENERIC_SOFT, **fields: object
) -> NormalizedDecline:
    fields.setdefault("network", "visa")
    return NormalizedDecline(
        category=category, response_type=ResponseType.SOFT, raw_code="x", **fields
    )


def declines(count: int, *, network: str = "visa", every: timedelta = HOUR, **fields: object):
    """``count`` declined network attempts, the latest ``every`` before NOW, ``every`` apart."""
    return [
        CardAttempt(at=NOW - every * (count - i), network=network, approved=False, **fields)
        for i in range(count)
    ]


# --- never -------------------------------------------------------------------------------------


def test_mastercard_mac_03_is_never_retried():
    result = may_retry(
        decline(network="mastercard", mastercard_advice_code="03"), declines(1), now=NOW
    )
    assert result.verdict is Verdict.NEVER
    assert result.not_before is None
    assert result.reason == "Mastercard MAC 03: do not try again"


def test_mastercard_mac_21_cancellation_is_never_retried():
    result = may_retry(decline(network="mastercard", mastercard_advice_code="21"), [], now=NOW)
    assert result.verdict is Verdict.NEVER
    assert "MAC 21" in result.reason


def test_visa_category_1_is_never_retried_even_when_the_category_looks_soft():
    result = may_retry(decline(iso_response_code="04"), declines(1), now=NOW)
    assert result.verdict is Verdict.NEVER
    assert result.reason.startswith("Visa category 1 (ISO 04)")


def test_visa_category_given_by_the_plugin_is_honoured():
    assert may_retry(decline(visa_category=1), [], now=NOW).verdict is Verdict.NEVER


@pytest.mark.parametrize("network", ["amex", "discover", "mastercard", None])
def test_category_1_codes_apply_by_meaning_to_other_networks(network):
    result = may_retry(decline(network=network, iso_response_code="41"), [], now=NOW)
    assert result.verdict is Verdict.NEVER
    assert "applied by meaning" in result.reason


@pytest.mark.parametrize(
    "category",
    [
        DeclineCategory.LOST_STOLEN,
        DeclineCategory.REVOKED_BY_CARDHOLDER,
        DeclineCategory.FRAUD_SUSPECTED,
        DeclineCategory.REQUEST_INVALID,
    ],
)
def test_lost_stolen_revoked_fraud_and_invalid_requests_are_never_retried(category):
    result = may_retry(decline(category), [], now=NOW, payment_method_changed_since_decline=True)
    assert result.verdict is Verdict.NEVER


def test_issuer_advice_do_not_try_again_is_never_retried():
    result = may_retry(decline(advice=Advice.DO_NOT_TRY_AGAIN), [], now=NOW)
    assert result.verdict is Verdict.NEVER


@pytest.mark.parametrize(
    "category",
    [
        DeclineCategory.INSUFFICIENT_FUNDS,
        DeclineCategory.GENERIC_SOFT,
        DeclineCategory.ISSUER_UNAVAILABLE,
        DeclineCategory.CARD_DATA_INVALID,
        DeclineCategory.BLOCKED_BY_PSP,
    ],
)
def test_do_not_try_again_binds_the_credential_until_the_customer_gives_another(category):
    # Whatever the code's category, the advice is about the credential: a refreshed card
    # (account updater) is the same credential; a different payment method lifts it.
    advised = decline(category, network="mastercard", advice=Advice.DO_NOT_TRY_AGAIN)
    assert advised.response_type is ResponseType.HARD
    assert may_retry(advised, declines(1), now=NOW).verdict is Verdict.NEVER
    refreshed = may_retry(advised, declines(1), now=NOW, payment_method_changed_since_decline=True)
    assert refreshed.verdict is Verdict.NEVER
    assert "do_not_try_again" in refreshed.reason
    new_card = may_retry(advised, [], now=NOW, new_payment_method_from_customer=True)
    assert new_card.verdict is Verdict.RETRY


# --- after a payment-method change -------------------------------------------------------------


@pytest.mark.parametrize(
    "category",
    [
        DeclineCategory.CARD_DATA_INVALID,
        DeclineCategory.ACCOUNT_INVALID,
        DeclineCategory.NOT_PERMITTED,
        DeclineCategory.AUTHENTICATION_REQUIRED,
    ],
)
def test_card_problems_wait_for_a_payment_method_change(category):
    before = may_retry(decline(category, network="mastercard"), declines(1), now=NOW)
    assert before.verdict is Verdict.AFTER_PAYMENT_METHOD_CHANGE
    after = may_retry(
        decline(category, network="mastercard"),
        declines(1),
        now=NOW,
        payment_method_changed_since_decline=True,
    )
    assert after.verdict is Verdict.RETRY


def test_authentication_required_is_never_retried_off_session():
    result = may_retry(decline(DeclineCategory.AUTHENTICATION_REQUIRED), [], now=NOW)
    assert result.verdict is Verdict.AFTER_PAYMENT_METHOD_CHANGE
    assert "on-session" in result.reason


@pytest.mark.parametrize(
    "category",
    [
        DeclineCategory.LOST_STOLEN,
        DeclineCategory.REVOKED_BY_CARDHOLDER,
        DeclineCategory.FRAUD_SUSPECTED,
    ],
)
def test_a_different_card_from_the_customer_lifts_never_but_not_the_budget(category):
    never = decline(category, network="visa", iso_response_code="43")
    assert may_retry(never, declines(1), now=NOW).verdict is Verdict.NEVER
    refreshed = may_retry(never, declines(1), now=NOW, payment_method_changed_since_decline=True)
    assert refreshed.verdict is Verdict.NEVER
    new_card = may_retry(never, [], now=NOW, new_payment_method_from_customer=True)
    assert new_card.verdict is Verdict.RETRY
    # The new card's own history still counts against the network budget.
    busy = may_retry(never, declines(16), now=NOW, new_payment_method_from_customer=True)
    assert busy.verdict is Verdict.NOT_BEFORE


def test_mastercard_mac_01_waits_for_the_updated_card():
    mac_01 = decline(DeclineCategory.INSUFFICIENT_FUNDS, network="mc", mastercard_advice_code="01")
    result = may_retry(mac_01, declines(1), now=NOW)
    assert result.verdict is Verdict.AFTER_PAYMENT_METHOD_CHANGE
    assert result.reason.startswith("Mastercard MAC 01")
    changed = may_retry(mac_01, declines(1), now=NOW, payment_method_changed_since_decline=True)
    assert changed.verdict is Verdict.RETRY


def test_visa_category_3_expired_card_waits_for_revalidated_data():
    result = may_retry(decline(iso_response_code="54"), [], now=NOW)
    assert result.verdict is Verdict.AFTER_PAYMENT_METHOD_CHANGE
    assert result.reason.startswith("Visa category 3")


def test_advice_confirm_card_data_waits_for_a_payment_method_change():
    result = may_retry(decline(advice=Advice.CONFIRM_CARD_DATA), [], now=NOW)
    assert result.verdict is Verdict.AFTER_PAYMENT_METHOD_CHANGE


# --- delays ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mac", "hours"),
    [("24", 1), ("25", 24), ("26", 48), ("27", 96), ("28", 144), ("29", 192), ("30", 240)],
)
def test_mastercard_retry_after_mac_waits_from_the_decline(mac, hours):
    history = declines(1, network="mastercard", every=timedelta(minutes=30))
    declined_at = history[-1].at
    mac_decline = decline(
        DeclineCategory.INSUFFICIENT_FUNDS, network="mastercard", mastercard_advice_code=mac
    )
    result = may_retry(mac_decline, history, now=NOW)
    assert result.verdict is Verdict.NOT_BEFORE
    assert result.not_before == declined_at + timedelta(hours=hours)
    assert result.reason.startswith(f"Mastercard MAC {mac}: retry after")
    at_the_time = may_retry(mac_decline, history, now=declined_at + timedelta(hours=hours))
    assert at_the_time.verdict is Verdict.RETRY


def test_retry_after_mac_without_history_counts_from_now():
    result = may_retry(decline(network="mastercard", mastercard_advice_code="25"), [], now=NOW)
    assert result.not_before == NOW + 24 * HOUR


def test_mastercard_mac_02_backs_off_72_hours_by_default():
    history = declines(1, network="mastercard")
    result = may_retry(decline(network="mastercard", mastercard_advice_code="02"), history, now=NOW)
    assert result.verdict is Verdict.NOT_BEFORE
    assert result.not_before == history[-1].at + 72 * HOUR


def test_psp_block_backs_off_three_days_from_the_block():
    blocked_at = NOW - DAY
    history = [CardAttempt(at=blocked_at, network="visa", approved=False, sent_to_network=False)]
    result = may_retry(
        decline(DeclineCategory.BLOCKED_BY_PSP, sent_to_network=False), history, now=NOW
    )
    assert result.verdict is Verdict.NOT_BEFORE
    assert result.not_before == blocked_at + 3 * DAY
    assert result.reason == "blocked by the PSP before the network: back off 3 days"


def test_psp_blocks_do_not_use_the_network_budget():
    history = declines(40, sent_to_network=False) + declines(1)
    assert may_retry(decline(), history, now=NOW).verdict is Verdict.RETRY


# --- budgets -----------------------------------------------------------------------------------


def test_visa_fifteenth_reattempt_in_30_days_is_allowed():
    history = declines(15, every=DAY)  # the original attempt and 14 reattempts
    result = may_retry(decline(), history, now=NOW)
    assert result.verdict is Verdict.RETRY


def test_visa_sixteenth_reattempt_in_30_days_waits_for_window():
    history = declines(16, every=DAY)  # the original attempt and 15 reattempts
    result = may_retry(decline(), history, now=NOW)
    assert result.verdict is Verdict.NOT_BEFORE
    assert result.not_before == history[0].at + 30 * DAY
    assert result.reason == "Visa: at most 15 reattempts per 30 days"


def test_visa_waits_until_enough_old_attempts_leave_the_window():
    history = declines(18, every=HOUR)
    result = may_retry(decline(), history, now=NOW)
    assert result.not_before == history[2].at + 30 * DAY
    assert may_retry(decline(), history, now=result.not_before).verdict is Verdict.RETRY


def test_visa_budget_of_20_allows_exactly_20_reattempts_when_configured():
    rules = NetworkRules(visa_reattempts_per_30_days=20)
    assert may_retry(decline(), declines(20), now=NOW, rules=rules).verdict is Verdict.RETRY
    over = may_retry(decline(), declines(21), now=NOW, rules=rules)
    assert over.verdict is Verdict.NOT_BEFORE


@pytest.mark.parametrize(
    "settings",
    [
        {"visa_reattempts_per_30_days": 21},
        {"visa_reattempts_per_30_days": 0},
        {"mastercard_declines_per_24h": 11},
        {"mastercard_declines_per_30_days": 36},
        {"psp_block_backoff": -DAY},
    ],
)
def test_network_rules_reject_budgets_above_the_network_limits(settings):
    with pytest.raises(ValueError, match="NetworkRules"):
        NetworkRules(**settings)


def test_declines_older_than_30_days_and_approvals_do_not_count():
    old = declines(20, every=DAY, network="visa")
    old = [CardAttempt(at=a.at - 31 * DAY, network="visa", approved=False) for a in old]
    approvals = [CardAttempt(at=NOW - i * HOUR, network="visa", approved=True) for i in range(20)]
    assert may_retry(decline(), old + approvals + declines(1), now=NOW).verdict is Verdict.RETRY


def test_mastercard_tenth_decline_in_24_hours_is_allowed_the_eleventh_is_not():
    mc = decline(network="mastercard")
    assert may_retry(mc, declines(9, network="mastercard"), now=NOW).verdict is Verdict.RETRY
    history = declines(10, network="mastercard")
    result = may_retry(mc, history, now=NOW)
    assert result.verdict is Verdict.NOT_BEFORE
    assert result.not_before == history[0].at + DAY
    assert result.reason == "Mastercard: at most 10 declines per 24 hours"


def test_mastercard_35_declines_in_30_days_wait_for_the_window():
    mc = decline(network="mastercard")
    spread = timedelta(hours=20)  # never more than 2 in any 24 hours
    assert may_retry(mc, declines(34, network="mastercard", every=spread), now=NOW).verdict is (
        Verdict.RETRY
    )
    history = declines(35, network="mastercard", every=spread)
    result = may_retry(mc, history, now=NOW)
    assert result.verdict is Verdict.NOT_BEFORE
    assert result.not_before == history[0].at + 30 * DAY
    assert result.reason == "Mastercard: at most 35 declines per 30 days"


def test_mastercard_30_day_budget_counts_only_the_same_amount():
    history = declines(35, network="mastercard", every=timedelta(hours=20), amount=Decimal("9.99"))
    mc = decline(network="mastercard")
    same = may_retry(mc, history, now=NOW, amount=Decimal("9.990"))
    assert same.verdict is Verdict.NOT_BEFORE
    other = may_retry(mc, history, now=NOW, amount=Decimal("19.99"))
    assert other.verdict is Verdict.RETRY


def test_the_latest_of_several_waits_wins():
    history = declines(10, network="mastercard", every=timedelta(minutes=1))
    mac_30 = decline(network="mastercard", mastercard_advice_code="30")
    result = may_retry(mac_30, history, now=NOW)
    assert result.not_before == history[-1].at + 240 * HOUR
    assert "MAC 30" in result.reason


@pytest.mark.parametrize("network", ["amex", "discover", None])
def test_other_networks_get_the_visa_like_cap(network):
    result = may_retry(decline(network=network), declines(16, network="x"), now=NOW)
    assert result.verdict is Verdict.NOT_BEFORE
    assert "Visa-like cap" in result.reason


def test_network_is_taken_from_the_history_when_the_decline_lacks_it():
    history = declines(10, network="Mastercard")
    result = may_retry(decline(network=None), history, now=NOW)
    assert result.reason == "Mastercard: at most 10 declines per 24 hours"


def test_a_naive_now_is_rejected():
    with pytest.raises(ValueError, match="timezone-aware"):
        may_retry(decline(), [], now=datetime(2026, 11, 30, 12, 0))


# --- properties --------------------------------------------------------------------------------

attempts = st.lists(
    st.builds(
        CardAttempt,
        at=st.integers(min_value=0, max_value=60 * 24 * 60).map(
            lambda m: NOW - m * timedelta(minutes=1)
        ),
        network=st.sampled_from(["visa", "mastercard", "amex", None]),
        approved=st.booleans(),
        sent_to_network=st.booleans(),
        amount=st.sampled_from([None, Decimal("9.99"), Decimal("20.00")]),
    ),
    max_size=60,
)
networks = st.sampled_from(["visa", "amex", "discover", None])
categories = st.sampled_from(list(DeclineCategory))
never_declines = st.one_of(
    st.builds(
        decline,
        categories,
        network=st.sampled_from(["mastercard", "visa", None]),
        mastercard_advice_code=st.sampled_from(["03", "21"]),
    ),
    st.builds(
        decline,
        categories,
        network=networks,
        iso_response_code=st.sampled_from(["04", "07", "12", "14", "15", "41", "43", "46", "57"]),
    ),
    st.builds(decline, categories, network=networks, visa_category=st.just(1)),
)


@given(never_declines, attempts, st.booleans())
def test_category_1_and_mac_03_21_are_never_retried_whatever_the_history(
    never_decline, history, changed
):
    result = may_retry(
        never_decline, history, now=NOW, payment_method_changed_since_decline=changed
    )
    assert result.verdict is Verdict.NEVER


@given(
    st.sampled_from(["visa", "mastercard", "amex"]),
    st.sampled_from([None, "02", "24", "27", "30"]),
    st.booleans(),
    attempts,
)
def test_retrying_at_not_before_is_allowed_when_nothing_else_happened(network, mac, sent, history):
    soft = decline(network=network, mastercard_advice_code=mac, sent_to_network=sent)
    # The decline being judged is the latest attempt in the history.
    history = [*history, CardAttempt(at=NOW, network=network, approved=False, sent_to_network=sent)]
    first = may_retry(soft, history, now=NOW)
    assert first.verdict in {Verdict.RETRY, Verdict.NOT_BEFORE}
    if first.verdict is Verdict.NOT_BEFORE:
        assert first.not_before is not None
        assert first.not_before > NOW
        assert may_retry(soft, history, now=first.not_before).verdict is Verdict.RETRY
