"""Issue 14 items 3 and 5: world families, the holdout uplift statistic, and the engine never
showing a learning policy an outcome from its own future."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

import numpy as np
import pytest

from recoverkit.sandbox.policies import DeclineAwarePolicy, FixedSchedule, Proposal
from recoverkit.sandbox.policies.base import PolicyContext, TrainingExample
from recoverkit.sandbox.simulator import World, WorldConfig, run_policy, summarize
from recoverkit.sandbox.simulator.families import (
    TRAINING_FAMILY_OFFSET,
    family_config,
    run_families,
    training_families,
)
from recoverkit.sandbox.simulator.uplift import (
    assign_holdout,
    holdout_uplift,
    to_cents,
)


def test_families_are_deterministic_different_and_wide() -> None:
    assert family_config(3) == family_config(3)
    configs = [family_config(f, invoices=100) for f in range(12)]
    assert len({c.dunning_window_days for c in configs}) > 1
    assert len({c.pay_schedule_shares for c in configs}) == 12
    unknown = [c.unknown_time_zone for c in configs]
    assert min(unknown) < 0.3 < max(unknown)
    for c in configs:
        assert abs(sum(c.decline_shares) - 1) < 1e-9
        assert abs(sum(c.generic_shape_shares) - 1) < 1e-9
    assert training_families(2) == [TRAINING_FAMILY_OFFSET, TRAINING_FAMILY_OFFSET + 1]
    with pytest.raises(ValueError, match="family"):
        family_config(-1)


def test_a_family_world_hides_some_time_zones_and_spreads_the_us() -> None:
    config = family_config(0, invoices=3_000)
    world = World(config)
    hidden = 1 - world.time_zone_known.mean()
    assert abs(hidden - config.unknown_time_zone) < 0.05
    us = world.utc_offset_hours[world.country == 0]
    assert set(np.unique(us).tolist()) <= {-5.0, -6.0, -7.0, -8.0}
    assert len(np.unique(us)) > 1
    run = run_policy(world, DeclineAwarePolicy())
    assert any(log.utc_offset is None for log in run.logs)
    assert summarize(run).violations == 0


def test_the_default_world_is_unchanged_by_the_family_knobs() -> None:
    world = World(WorldConfig(invoices=500, seed=1))
    assert world.time_zone_known.all()
    assert not world.generic_shape.any()


class Recorder:
    """A learning policy that checks it never sees an outcome from after its decision time."""

    name = "recorder"

    def __init__(self) -> None:
        self.latest_outcome: datetime | None = None
        self.decisions = 0
        self.outcomes = 0

    def next_attempts(self, contexts: Sequence[PolicyContext]) -> list[Proposal]:
        fixed = FixedSchedule()
        for context in contexts:
            if self.latest_outcome is not None:
                assert self.latest_outcome <= context.now, "an outcome from the future"
            self.decisions += 1
        return [fixed.next_attempt(c) for c in contexts]

    def next_attempt(self, context: PolicyContext) -> Proposal:
        return self.next_attempts([context])[0]

    def observe(self, outcomes: Sequence[TrainingExample]) -> None:
        for outcome in outcomes:
            assert outcome.context.now <= outcome.at
            assert len(outcome.context.invoice_attempts) == outcome.context.retries_made + 1
            if self.latest_outcome is None or outcome.at > self.latest_outcome:
                self.latest_outcome = outcome.at
        self.outcomes += len(outcomes)


def test_a_learning_policy_only_sees_outcomes_from_its_past() -> None:
    world = World(WorldConfig(invoices=800, seed=5))
    recorder = Recorder()
    run = run_policy(world, recorder)
    assert recorder.outcomes == sum(log.retries for log in run.logs)
    # Same decisions as the policy it wraps: learning changes nothing about the world.
    fixed = run_policy(world, FixedSchedule())
    assert [len(log.attempts) for log in run.logs] == [len(log.attempts) for log in fixed.logs]


def test_holdout_uplift_finds_a_real_uplift_and_not_a_fake_one() -> None:
    rng = np.random.default_rng(0)
    risk = np.full(20_000, 1_000, dtype=np.int64)
    treated = np.where(rng.random(20_000) < 0.6, 1_000, 0).astype(np.int64)
    held = np.where(rng.random(2_000) < 0.5, 1_000, 0).astype(np.int64)
    result = holdout_uplift(treated, risk, held, risk[:2_000], reps=500)
    assert result.uplift is not None
    assert result.low is not None
    assert result.high is not None
    assert result.low < 0.2 < result.high  # the truth is 0.6 / 0.5 - 1
    assert result.low > 0.05
    same = np.where(rng.random(2_000) < 0.6, 1_000, 0).astype(np.int64)
    null = holdout_uplift(treated, risk, same, risk[:2_000], reps=500)
    assert null.low is not None
    assert null.high is not None
    assert null.low < 0 < null.high
    assert result.treated_recovered == Decimal(int(treated.sum())).scaleb(-2)


def test_holdout_assignment_is_seeded_and_near_its_share() -> None:
    ids = [f"inv_{k}" for k in range(5_000)]
    held = assign_holdout(ids, 0.1, seed=1)
    assert np.array_equal(held, assign_holdout(ids, 0.1, seed=1))
    assert 0.08 < held.mean() < 0.12
    with pytest.raises(ValueError, match="share"):
        assign_holdout(ids, 0)


def test_cents_are_exact() -> None:
    assert to_cents([Decimal("19.99"), Decimal("0.01")]).tolist() == [1999, 1]
    with pytest.raises(ValueError, match="sub-cent"):
        to_cents([Decimal("0.001")])


def test_run_families_reports_lift_and_uplift_per_family() -> None:
    results = run_families(
        {"fixed": FixedSchedule, "rules": DeclineAwarePolicy},
        [0, 1],
        invoices=400,
        seeds=[0],
    )
    assert [r.family for r in results] == [0, 1]
    for r in results:
        assert r.uplifts["fixed"] is None
        uplift = r.uplifts["rules"]
        assert uplift is not None
        assert uplift.treated_invoices + uplift.holdout_invoices == 400
        assert r.summaries["rules"].violations == 0
        assert r.lift("fixed") == 0
        assert r.attempts_per_invoice("rules") > 0
