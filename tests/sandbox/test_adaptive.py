"""Issue 14 item 4: the adaptive policy — pure decisions, online learning, bounded exploration,
state that round-trips, proposals inside the guard, and a cold start that behaves like rules."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sandbox_helpers import T0, context, decline

from recoverkit.rules import NetworkRules
from recoverkit.sandbox.policies import (
    DeclineAwarePolicy,
    PolicyContext,
    Retry,
    Stop,
    guarded_next_attempt,
)
from recoverkit.sandbox.policies.adaptive import ARMS, AdaptivePolicy
from recoverkit.sandbox.policies.base import TrainingExample
from recoverkit.sandbox.simulator import World, run_policy, summarize
from recoverkit.sandbox.simulator.families import family_config

DAY = timedelta(days=1)


def _ctx(invoice: str, iso: str = "05", network: str = "visa") -> PolicyContext:
    base = context([(T0, decline(iso, network))], utc_offset=timedelta(hours=-5))
    return PolicyContext(
        invoice_id=invoice,
        amount=Decimal("20.00"),
        currency="USD",
        now=base.now,
        invoice_attempts=base.invoice_attempts,
        card_attempts=base.card_attempts,
        network=network,
        utc_offset=base.utc_offset,
    )


def test_cold_start_exploits_the_rules_prior() -> None:
    policy = AdaptivePolicy(exploration=0.0)
    rules = DeclineAwarePolicy()
    for iso in ("51", "05", "91", "61"):
        ctx = _ctx(f"inv_{iso}", iso)
        proposal = policy.next_attempt(ctx)
        expected = rules.next_attempt(ctx)
        assert isinstance(proposal, Retry)
        assert isinstance(expected, Retry)
        assert proposal.at == expected.at
        assert "adaptive: rules (exploit" in proposal.reason


def test_deciding_is_pure_and_learning_goes_through_observe() -> None:
    policy = AdaptivePolicy(exploration=0.0)
    ctx = _ctx("inv_a")
    first = policy.next_attempt(ctx)
    assert policy.next_attempt(ctx) == first
    assert policy.observations == 0  # deciding learned nothing
    # Evidence that retrying 14 days later works and the rules' slot does not.
    rules_at = DeclineAwarePolicy().next_attempt(ctx)
    assert isinstance(rules_at, Retry)
    late = policy.candidates(ctx)[ARMS.index("day_14")]
    assert late is not None
    outcomes = [TrainingExample(_ctx(f"inv_{k}"), late, True) for k in range(300)]
    outcomes += [TrainingExample(_ctx(f"inv_{k}"), rules_at.at, False) for k in range(300)]
    assert policy.observe(outcomes) == 600
    assert policy.observations == 600
    moved = policy.next_attempt(ctx)
    assert isinstance(moved, Retry)
    assert moved.at == late
    assert "day_14" in moved.reason


def test_exploration_is_bounded_by_its_share() -> None:
    policy = AdaptivePolicy(exploration=0.1)
    reasons = [policy.next_attempt(_ctx(f"inv_{k}")) for k in range(2_000)]
    explored = sum(isinstance(p, Retry) and "explore" in p.reason for p in reasons)
    assert 0.07 * 2_000 <= explored <= 0.13 * 2_000
    none = AdaptivePolicy(exploration=0.0)
    assert not any(
        "explore," in p.reason for p in (none.next_attempt(_ctx(f"inv_{k}")) for k in range(200))
    )


def test_state_round_trips_and_refuses_foreign_state() -> None:
    policy = AdaptivePolicy()
    policy.wins[3, 2] = 7
    policy.losses[5, 1] = 11
    other = AdaptivePolicy()
    other.load_state(policy.state_json())
    assert np.array_equal(other.wins, policy.wins)
    assert np.array_equal(other.losses, policy.losses)
    with pytest.raises(ValueError, match="adaptive"):
        other.load_state('{"format": "something else"}')
    bad = policy.state_json().replace('"retry_buckets": 4', '"retry_buckets": 3')
    with pytest.raises(ValueError, match="other arms"):
        other.load_state(bad)


def test_hard_declines_are_stopped_by_the_guard_not_proposed_past_it() -> None:
    ctx = _ctx("inv_lost", "41")
    guarded = guarded_next_attempt(AdaptivePolicy(), ctx)
    assert isinstance(guarded.decision, Stop)


ISO = ["51", "05", "91", "61", "54", "59", "14"]


@settings(max_examples=120, deadline=None)
@given(
    iso=st.sampled_from(ISO),
    network=st.sampled_from(["visa", "mastercard", "amex"]),
    mac=st.sampled_from([None, "02", "24", "27", "30"]),
    gaps=st.lists(st.floats(min_value=0.2, max_value=60), min_size=0, max_size=12),
    invoice=st.integers(min_value=0, max_value=10_000),
    budget=st.integers(min_value=1, max_value=20),
)
def test_adaptive_proposals_are_already_permissible(
    iso: str, network: str, mac: str | None, gaps: list[float], invoice: int, budget: int
) -> None:
    d = decline(iso, network, mac if network == "mastercard" else None)
    times = [T0]
    for gap in gaps:
        times.append(times[-1] + timedelta(hours=gap))
    base = context([(t, d) for t in times], now=times[-1] + timedelta(minutes=5))
    ctx = PolicyContext(
        invoice_id=f"inv_{invoice}",
        amount=base.amount,
        currency="USD",
        now=base.now,
        invoice_attempts=base.invoice_attempts,
        card_attempts=base.card_attempts,
        network=network,
    )
    rules = NetworkRules(visa_reattempts_per_30_days=budget)
    policy = AdaptivePolicy(rules=rules, max_retries=20)
    proposal = policy.next_attempt(ctx)
    guarded = guarded_next_attempt(policy, ctx, rules)
    if isinstance(proposal, Retry) and proposal.reason.startswith("adaptive"):
        assert guarded.decision == proposal  # the guard had nothing to move
        assert ctx.now <= proposal.at <= ctx.deadline


def test_adaptive_learns_while_the_simulator_runs_without_violations() -> None:
    world = World(family_config(1000, invoices=600, seed=3))
    policy = AdaptivePolicy()
    summary = summarize(run_policy(world, policy))
    assert summary.violations == 0
    assert policy.observations > 0
    assert policy.observations <= summary.retries
