"""The simulated world, the engine and the after-the-fact rules audit."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

import recoverkit.sandbox.simulator.engine as engine
from recoverkit.sandbox.policies import DeclineAwarePolicy, FixedSchedule, guard_proposal
from recoverkit.sandbox.policies.base import GuardedDecision, PolicyContext, Proposal
from recoverkit.sandbox.simulator import (
    Outcome,
    World,
    WorldConfig,
    find_violations,
    run_policy,
    simulate,
    summarize,
)
from recoverkit.sandbox.simulator.world import DECLINE_TYPES, NETWORK_SHARES

SMALL = WorldConfig(invoices=1_500, seed=7)


def _fingerprint(config: WorldConfig) -> list[tuple[str, int, str | None]]:
    run = run_policy(World(config), DeclineAwarePolicy())
    return [(log.invoice_id, log.retries, str(log.outcome)) for log in run.logs]


def test_same_seed_same_results_other_seed_other_results() -> None:
    assert _fingerprint(SMALL) == _fingerprint(SMALL)
    other = WorldConfig(invoices=SMALL.invoices, seed=SMALL.seed + 1)
    assert _fingerprint(other) != _fingerprint(SMALL)


def test_population_follows_the_configured_shares() -> None:
    world = World(WorldConfig(invoices=20_000, seed=3))
    networks = np.bincount(world.network, minlength=4) / world.size
    assert np.allclose(networks, NETWORK_SHARES, atol=0.02)
    soft = sum(d.share for d in DECLINE_TYPES if d.iso in {"51", "05", "91", "96", "61"})
    first = Counter(world.first_decline(i).response_type.value for i in range(2_000))
    assert first["soft_decline"] / 2_000 == pytest.approx(soft / 0.99, abs=0.04)


def test_a_lost_card_never_approves_and_an_expired_card_only_after_an_update() -> None:
    world = World(WorldConfig(invoices=5_000, seed=11))
    at = world.first_failure + 24.0
    lost = np.flatnonzero(world.decline_type == 8)  # "41"
    expired = np.flatnonzero(world.decline_type == 5)  # "54"
    assert DECLINE_TYPES[8].iso == "41"
    assert DECLINE_TYPES[5].iso == "54"
    old_card = np.zeros(len(lost), dtype=bool)
    assert not world.approval_probability(lost, at[lost], old_card).any()
    p_old = world.approval_probability(expired, at[expired], np.zeros(len(expired), dtype=bool))
    p_new = world.approval_probability(expired, at[expired], np.ones(len(expired), dtype=bool))
    assert not p_old.any()
    assert (p_new > 0.5).all()


def test_every_policy_run_has_zero_violations_and_sane_totals() -> None:
    results = simulate([FixedSchedule(), DeclineAwarePolicy()], SMALL, [7, 8])
    for summaries in results.values():
        for s in summaries:
            assert s.violations == 0
            assert 0 < s.recovered_invoices < s.invoices
            assert s.recovered_revenue < s.revenue_at_risk
            assert s.cumulative_by_day[-1] == pytest.approx(
                float(s.recovered_revenue / s.revenue_at_risk)
            )


def test_recovered_invoices_end_with_an_approval_and_nothing_after_it() -> None:
    run = run_policy(World(SMALL), FixedSchedule())
    for log in run.logs:
        approvals = [a.approved for a in log.attempts]
        assert approvals.count(True) == (log.outcome is Outcome.RECOVERED)
        if log.outcome is Outcome.RECOVERED:
            assert approvals[-1]


class Hammer:
    """A rule-breaking policy: retry every hour, whatever the decline."""

    name = "hammer"

    def next_attempt(self, context: PolicyContext) -> Proposal:
        from datetime import timedelta

        from recoverkit.sandbox.policies import Retry

        return Retry(context.now + timedelta(hours=1), "hammer")


def test_the_audit_catches_attempts_that_bypassed_the_guard(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_guard(proposed: Proposal, context: PolicyContext, rules: object) -> GuardedDecision:
        return GuardedDecision(proposed, proposed)

    config = WorldConfig(invoices=150, seed=5)
    monkeypatch.setattr(engine, "guard_proposal", no_guard)
    unguarded = run_policy(World(config), Hammer())
    violations = find_violations(unguarded.logs)
    assert violations
    assert summarize(unguarded).violations == len(violations)
    assert any("never" in v.reason for v in violations)
    monkeypatch.setattr(engine, "guard_proposal", guard_proposal)
    assert find_violations(run_policy(World(config), Hammer()).logs) == []
