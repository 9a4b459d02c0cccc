"""The learned policy: its model fits, beats a constant predictor on held-out data, persists."""

from __future__ import annotations

from pathlib import Path

import pytest

from recoverkit.sandbox.policies import LearnedPolicy, Retry, Stop, SuccessModel
from recoverkit.sandbox.policies.learned import ModelMetrics
from recoverkit.sandbox.simulator import World, WorldConfig, run_policy, summarize

Trained = tuple[SuccessModel, ModelMetrics]


def test_model_beats_a_constant_predictor_on_held_out_invoices(trained: Trained) -> None:
    _, metrics = trained
    assert metrics.test_rows > 500
    assert metrics.log_loss < metrics.constant_log_loss * 0.9
    assert metrics.auc > 0.7
    assert metrics.calibration_error < 0.05
    assert 0 < metrics.test_approval_rate < 1


def test_model_round_trips_through_a_file(trained: Trained, tmp_path: Path) -> None:
    model, _ = trained
    path = tmp_path / "model.pkl"
    model.save(path)
    loaded = SuccessModel.load(path)
    world = World(WorldConfig(invoices=300, seed=99))
    first = run_policy(world, LearnedPolicy(model)).logs
    second = run_policy(world, LearnedPolicy(loaded)).logs
    assert [len(log.attempts) for log in first] == [len(log.attempts) for log in second]


def test_loading_something_else_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "other.pkl"
    import pickle

    path.write_bytes(pickle.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a recoverkit success model"):
        SuccessModel.load(path)


def test_learned_policy_proposes_future_times_within_the_window_and_no_violations(
    trained: Trained,
) -> None:
    model, _ = trained
    run = run_policy(World(WorldConfig(invoices=800, seed=4)), LearnedPolicy(model))
    assert summarize(run).violations == 0
    for log in run.logs:
        times = [a.at for a in log.attempts]
        assert times == sorted(times)
        assert times[-1] <= log.first_failure_at + log.dunning_window
        assert log.retries <= 4


def test_learned_policy_stops_on_a_lost_card(trained: Trained) -> None:
    from sandbox_helpers import T0, context, decline

    model, _ = trained
    assert isinstance(LearnedPolicy(model).next_attempt(context([(T0, decline("41"))])), Stop)
    proposal = LearnedPolicy(model).next_attempt(context([(T0, decline("91"))]))
    assert isinstance(proposal, Retry)
    assert proposal.at > T0
