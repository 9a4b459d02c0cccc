"""Issue 14 item 1: no invoice lost to the dunning window, and no fake local time.

Every built-in policy proposes the best permissible slot inside the window when its ideal slot
falls outside; a stop caused by the window is only allowed when no permissible slot remains.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sandbox_helpers import T0, decline

from recoverkit.rules import CardAttempt, NetworkRules, Verdict, may_retry
from recoverkit.sandbox.policies import (
    DeclineAwarePolicy,
    FixedSchedule,
    InvoiceAttempt,
    PolicyContext,
    Retry,
    RetryPolicy,
    Stop,
    guarded_next_attempt,
)
from recoverkit.sandbox.policies.adaptive import AdaptivePolicy
from recoverkit.sandbox.policies.slots import daily_slot

DAY = timedelta(days=1)
ISO_CODES = ["51", "05", "91", "96", "61", "54", "46", "59", "62", "14", "1A"]
MACS = [None, "02", "24", "25", "27", "30"]


def _context(
    declines: list[tuple[datetime, str]],
    *,
    network: str,
    mac: str | None,
    window_days: float,
    now_after_last: float,
    utc_offset: timedelta | None,
    country: str | None,
) -> PolicyContext:
    attempts = [
        InvoiceAttempt(at, False, decline(iso, network, mac), "pm_1") for at, iso in declines
    ]
    cards = [CardAttempt(a.at, network, False, amount=Decimal("20.00")) for a in attempts]
    return PolicyContext(
        invoice_id="inv_w",
        amount=Decimal("20.00"),
        currency="USD",
        now=attempts[-1].at + timedelta(hours=now_after_last),
        invoice_attempts=attempts,
        card_attempts=cards,
        dunning_window=timedelta(days=window_days),
        network=network,
        utc_offset=utc_offset,
        issuer_country=country,
    )


def _some_permissible_slot(ctx: PolicyContext, rules: NetworkRules) -> bool:
    """Independently of the policies' helpers: scan the window every 10 minutes."""
    at = ctx.now
    while at <= ctx.deadline:
        answer = may_retry(
            ctx.last_decline,
            ctx.card_attempts,
            now=at,
            rules=rules,
            payment_method_changed_since_decline=ctx.payment_method_changed_since_decline,
            new_payment_method_from_customer=ctx.new_payment_method_from_customer,
            amount=ctx.amount,
        )
        if answer.verdict is Verdict.RETRY:
            return True
        if answer.verdict is not Verdict.NOT_BEFORE:
            return False
        at += timedelta(minutes=10)
    return False


@settings(max_examples=200, deadline=None)
@given(
    isos=st.lists(st.sampled_from(ISO_CODES), min_size=1, max_size=4),
    network=st.sampled_from(["visa", "mastercard", "amex"]),
    mac=st.sampled_from(MACS),
    gaps=st.lists(st.floats(min_value=0.5, max_value=96), min_size=3, max_size=3),
    window_days=st.floats(min_value=1, max_value=30),
    now_after_last=st.floats(min_value=0, max_value=6),
    offset_hours=st.one_of(st.none(), st.integers(min_value=-11, max_value=12)),
    country=st.sampled_from([None, "US", "GB", "DE", "BR"]),
    policy_name=st.sampled_from(["fixed", "rules", "adaptive"]),
)
def test_no_stop_caused_by_the_window_while_a_permissible_slot_remains(
    isos: list[str],
    network: str,
    mac: str | None,
    gaps: list[float],
    window_days: float,
    now_after_last: float,
    offset_hours: int | None,
    country: str | None,
    policy_name: str,
) -> None:
    times = [T0]
    for gap in gaps[: len(isos) - 1]:
        times.append(times[-1] + timedelta(hours=gap))
    if times[-1] >= T0 + timedelta(days=window_days):
        return  # the last attempt itself would be outside the window
    ctx = _context(
        list(zip(times, isos, strict=True)),
        network=network,
        mac=mac if network == "mastercard" else None,
        window_days=window_days,
        now_after_last=now_after_last,
        utc_offset=None if offset_hours is None else timedelta(hours=offset_hours),
        country=country,
    )
    rules = NetworkRules()
    policies: dict[str, RetryPolicy] = {
        "fixed": FixedSchedule((1, 3, 5, 7, 40)),
        "rules": DeclineAwarePolicy(max_retries=6),
        "adaptive": AdaptivePolicy(max_retries=6),
    }
    policy = policies[policy_name]
    proposal = policy.next_attempt(ctx)
    guarded = guarded_next_attempt(policy, ctx, rules)
    if isinstance(proposal, Retry):
        assert proposal.at <= ctx.deadline or not _some_permissible_slot(ctx, rules)
    decision = guarded.decision
    if isinstance(decision, Stop) and "dunning window" in decision.reason:
        assert not _some_permissible_slot(ctx, rules), decision.reason


def test_rules_moves_a_payday_after_the_window_to_the_last_morning_inside_it() -> None:
    # Failure on Tuesday 3 March 10:00 UTC at UTC-6; the next payday morning is Sunday 15 March,
    # but the window is 7 days: the last 07:00 local inside it is Tuesday 10 March, 13:00 UTC.
    ctx = _context(
        [(T0, "51")],
        network="visa",
        mac=None,
        window_days=7,
        now_after_last=0,
        utc_offset=timedelta(hours=-6),
        country="US",
    )
    proposal = DeclineAwarePolicy().next_attempt(ctx)
    assert isinstance(proposal, Retry)
    assert proposal.at == datetime(2026, 3, 9, 13, tzinfo=UTC)
    assert "inside" in proposal.reason
    assert guarded_next_attempt(DeclineAwarePolicy(), ctx).decision == proposal


def test_unknown_time_zone_is_not_treated_as_utc() -> None:
    failure = datetime(2026, 3, 3, 18, 30, tzinfo=UTC)
    unknown = _context(
        [(failure, "05")],
        network="visa",
        mac=None,
        window_days=30,
        now_after_last=0,
        utc_offset=None,
        country="US",  # four offsets: still unknown
    )
    assert not unknown.time_zone_known
    # Daily slots fall at the first failure's time of day, not at 07:00 UTC.
    assert daily_slot(unknown, failure, 7) == failure + DAY
    proposal = DeclineAwarePolicy().next_attempt(unknown)
    assert isinstance(proposal, Retry)
    assert (proposal.at.hour, proposal.at.minute) == (18, 30)


@pytest.mark.parametrize(
    ("country", "when", "hours"),
    [
        ("GB", datetime(2026, 1, 10, tzinfo=UTC), 0),
        ("GB", datetime(2026, 7, 10, tzinfo=UTC), 1),
        ("DE", datetime(2026, 7, 10, tzinfo=UTC), 2),
        ("US", datetime(2026, 7, 10, tzinfo=UTC), None),
        ("BR", datetime(2026, 7, 10, tzinfo=UTC), None),
        ("ZZ", datetime(2026, 7, 10, tzinfo=UTC), None),
    ],
)
def test_a_single_zone_issuer_country_gives_the_local_time(
    country: str, when: datetime, hours: int | None
) -> None:
    ctx = _context(
        [(when, "05")],
        network="visa",
        mac=None,
        window_days=30,
        now_after_last=0,
        utc_offset=None,
        country=country,
    )
    expected = None if hours is None else timedelta(hours=hours)
    assert ctx.local_offset(when) == expected
    assert ctx.time_zone_known is (hours is not None)


def test_a_known_offset_wins_over_the_country() -> None:
    ctx = _context(
        [(T0, "05")],
        network="visa",
        mac=None,
        window_days=30,
        now_after_last=0,
        utc_offset=timedelta(hours=-5),
        country="GB",
    )
    assert ctx.local_offset(T0) == timedelta(hours=-5)
    assert daily_slot(ctx, T0, 7) == datetime(2026, 3, 3, 12, tzinfo=UTC)  # 07:00 at UTC-5
