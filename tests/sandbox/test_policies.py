"""The built-in policies and the network-rules guard every proposal passes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sandbox_helpers import T0, context, decline

from recoverkit.declines import DeclineCategory
from recoverkit.rules import CardAttempt, NetworkRules, Verdict, may_retry
from recoverkit.sandbox.policies import (
    DeclineAwarePolicy,
    FixedSchedule,
    PaymentMethodUpdate,
    PolicyContext,
    Proposal,
    Retry,
    Stop,
    guarded_next_attempt,
)
from recoverkit.sandbox.policies.calendar import last_business_day, next_payday_morning

DAY = timedelta(days=1)


class Always:
    """A policy that proposes one fixed time, whatever the decline."""

    name = "always"

    def __init__(self, at: datetime) -> None:
        self.at = at

    def next_attempt(self, context: PolicyContext) -> Proposal:
        return Retry(self.at, "always")


# --- fixed ---------------------------------------------------------------------------------------


def test_fixed_retries_on_days_1_3_5_7_after_the_first_failure() -> None:
    policy = FixedSchedule()
    d = decline("05")
    history = [(T0, d)]
    times = []
    for _ in range(4):
        proposal = policy.next_attempt(context(history))
        assert isinstance(proposal, Retry)
        times.append(proposal.at)
        history.append((proposal.at, d))
    assert times == [T0 + n * DAY for n in (1, 3, 5, 7)]
    assert isinstance(policy.next_attempt(context(history)), Stop)


def test_fixed_after_a_late_replan_takes_the_next_scheduled_day_only() -> None:
    d = decline("05")
    assert FixedSchedule().next_attempt(context([(T0, d)], now=T0 + 4 * DAY)) == Retry(
        T0 + 5 * DAY, "fixed schedule: day 5"
    )
    assert isinstance(FixedSchedule().next_attempt(context([(T0, d)], now=T0 + 8 * DAY)), Stop)


def test_fixed_rejects_a_bad_schedule() -> None:
    with pytest.raises(ValueError, match="increasing"):
        FixedSchedule((3, 1))


# --- rules ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("iso", ["41", "43", "59", "54", "1A"])
def test_hard_declines_are_stopped_by_the_rules_not_by_the_policy(iso: str) -> None:
    ctx = context([(T0, decline(iso))])
    assert isinstance(DeclineAwarePolicy().next_attempt(ctx), Retry)  # "never" is not its call
    guarded = guarded_next_attempt(DeclineAwarePolicy(), ctx)
    assert isinstance(guarded.decision, Stop)
    assert guarded.decision.awaiting_payment_method
    assert guarded.rules_decision is not None
    assert guarded.rules_decision.verdict in {Verdict.NEVER, Verdict.AFTER_PAYMENT_METHOD_CHANGE}


def test_rules_gives_up_by_choice_only_as_a_setting_and_says_so() -> None:
    ctx = context([(T0, decline("05"))])
    assert isinstance(DeclineAwarePolicy().next_attempt(ctx), Retry)
    policy = DeclineAwarePolicy(give_up_on=[DeclineCategory.GENERIC_SOFT])
    proposal = policy.next_attempt(ctx)
    assert isinstance(proposal, Stop)
    assert "by choice (setting give_up_on)" in proposal.reason


def test_rules_retries_soon_after_a_card_update() -> None:
    update = PaymentMethodUpdate(T0 + 2 * DAY, "pm_new", "account_updater")
    ctx = context([(T0, decline("54"))], now=update.at, updates=[update])
    proposal = DeclineAwarePolicy().next_attempt(ctx)
    assert proposal == Retry(update.at + timedelta(minutes=15), "rules: payment method updated")
    guarded = guarded_next_attempt(DeclineAwarePolicy(), ctx)
    assert guarded.decision == proposal  # the rules allow it: the card changed


@pytest.mark.parametrize(("mac", "hours"), [("24", 1), ("25", 24), ("27", 96), ("30", 240)])
def test_rules_follows_mastercard_mac_24_to_30_delays(mac: str, hours: int) -> None:
    ctx = context([(T0, decline("51", "mastercard", mac))])
    proposal = DeclineAwarePolicy().next_attempt(ctx)
    assert isinstance(proposal, Retry)
    assert proposal.at == T0 + timedelta(hours=hours)
    assert guarded_next_attempt(DeclineAwarePolicy(), ctx).decision == proposal


def test_rules_times_insufficient_funds_to_the_next_payday_morning_local_time() -> None:
    # 2026-03-03 10:00 UTC; the customer is at UTC-6. The next payday is Sunday 15 March,
    # at 07:00 local = 13:00 UTC.
    ctx = context([(T0, decline("51"))], utc_offset=timedelta(hours=-6))
    proposal = DeclineAwarePolicy().next_attempt(ctx)
    assert proposal == Retry(
        datetime(2026, 3, 15, 13, tzinfo=UTC), "rules: insufficient funds, next payday morning"
    )


def test_paydays_are_the_1st_the_15th_and_the_last_business_day() -> None:
    assert last_business_day(2026, 5) == datetime(2026, 5, 29).date()  # 31st is a Sunday
    after_15th = datetime(2026, 5, 15, 9)
    assert next_payday_morning(after_15th) == datetime(2026, 5, 29, 7)
    assert next_payday_morning(datetime(2026, 5, 29, 8)) == datetime(2026, 6, 1, 7)


def test_rules_retries_technical_declines_within_hours() -> None:
    proposal = DeclineAwarePolicy().next_attempt(context([(T0, decline("91"))]))
    assert proposal == Retry(T0 + timedelta(hours=2), "rules: technical decline, short delay")


def test_rules_stops_after_its_retry_budget() -> None:
    d = decline("05")
    ctx = context([(T0 + n * DAY, d) for n in range(5)])
    assert isinstance(DeclineAwarePolicy(max_retries=4).next_attempt(ctx), Stop)


# --- the guard -----------------------------------------------------------------------------------


def test_guard_stops_a_retry_of_a_lost_card() -> None:
    ctx = context([(T0, decline("41"))])
    guarded = guarded_next_attempt(Always(T0 + DAY), ctx)
    assert isinstance(guarded.decision, Stop)
    assert guarded.adjusted
    assert guarded.rules_decision is not None
    assert guarded.rules_decision.verdict is Verdict.NEVER


def test_guard_moves_a_too_early_retry_to_the_mac_delay() -> None:
    ctx = context([(T0, decline("51", "mastercard", "27"))])
    guarded = guarded_next_attempt(FixedSchedule(), ctx)
    assert guarded.decision == Retry(T0 + 4 * DAY, "fixed schedule: day 1")
    assert guarded.adjusted


def test_guard_stops_when_the_rules_push_past_the_dunning_window() -> None:
    ctx = context([(T0 + 27 * DAY, decline("51", "mastercard", "30"))], now=T0 + 27 * DAY)
    ctx = PolicyContext(
        invoice_id=ctx.invoice_id,
        amount=ctx.amount,
        currency=ctx.currency,
        now=ctx.now,
        invoice_attempts=[*context([(T0, decline("05"))]).invoice_attempts, *ctx.invoice_attempts],
        card_attempts=ctx.card_attempts,
        network="mastercard",
    )
    guarded = guarded_next_attempt(Always(T0 + 28 * DAY), ctx)
    assert isinstance(guarded.decision, Stop)
    assert "dunning window" in guarded.decision.reason


ISO_CODES = ["51", "05", "91", "61", "54", "46", "1A", "41", "57", "59", "14", "12"]
MACS = [None, "01", "02", "03", "21", "24", "25", "26", "27", "28", "29", "30"]


@settings(max_examples=150, deadline=None)
@given(
    iso=st.sampled_from(ISO_CODES),
    network=st.sampled_from(["visa", "mastercard", "amex", "discover"]),
    mac=st.sampled_from(MACS),
    gaps=st.lists(st.floats(min_value=0.01, max_value=72), min_size=0, max_size=40),
    proposal_hours=st.floats(min_value=-48, max_value=24 * 40),
    updated=st.booleans(),
    visa_budget=st.integers(min_value=1, max_value=20),
)
def test_guard_never_lets_a_rule_violating_proposal_through(
    iso: str,
    network: str,
    mac: str | None,
    gaps: list[float],
    proposal_hours: float,
    updated: bool,
    visa_budget: int,
) -> None:
    d = decline(iso, network, mac if network == "mastercard" else None)
    times = [T0]
    for gap in gaps:
        times.append(times[-1] + timedelta(hours=gap))
    last = times[-1]
    updates = [PaymentMethodUpdate(last + timedelta(minutes=5), "pm_new")] if updated else []
    now = last + timedelta(minutes=10)
    ctx = context([(t, d) for t in times], now=now, updates=updates)
    rules = NetworkRules(visa_reattempts_per_30_days=visa_budget)
    proposed_at = now + timedelta(hours=proposal_hours)
    guarded = guarded_next_attempt(Always(proposed_at), ctx, rules)
    decision = guarded.decision
    if isinstance(decision, Retry):
        assert now <= decision.at <= ctx.deadline
        assert decision.at >= proposed_at
        answer = may_retry(
            ctx.last_decline,
            ctx.card_attempts,
            now=decision.at,
            rules=rules,
            payment_method_changed_since_decline=updated,
            new_payment_method_from_customer=ctx.new_payment_method_from_customer,
            amount=ctx.amount,
        )
        assert answer.verdict is Verdict.RETRY, answer.reason
    else:
        at = max(proposed_at, now)
        answer = may_retry(
            ctx.last_decline,
            ctx.card_attempts,
            now=at,
            rules=rules,
            payment_method_changed_since_decline=updated,
            new_payment_method_from_customer=ctx.new_payment_method_from_customer,
            amount=ctx.amount,
        )
        # A stop is either the rules' own verdict or the window running out.
        assert answer.verdict is not Verdict.RETRY or at > ctx.deadline


def test_guard_counts_card_attempts_across_invoices_for_the_budget() -> None:
    d = decline("05", "mastercard")
    ctx = context([(T0, d)])
    # Nine other declines on the same card in the last 24 hours (another invoice's retries).
    others = [CardAttempt(T0 - timedelta(hours=h), "mastercard", False) for h in range(1, 10)]
    ctx = PolicyContext(
        invoice_id=ctx.invoice_id,
        amount=Decimal("20.00"),
        currency="USD",
        now=T0,
        invoice_attempts=ctx.invoice_attempts,
        card_attempts=[*others, *ctx.card_attempts],
        network="mastercard",
    )
    guarded = guarded_next_attempt(Always(T0 + timedelta(minutes=30)), ctx)
    assert isinstance(guarded.decision, Retry)
    assert guarded.decision.at == T0 - timedelta(hours=9) + DAY  # the oldest leaves the window
