"""The learned policy can be fitted on the sandbox's own stored retries."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sandbox_fakes import (
    SIGNING_SECRET,
    START,
    RecordingMerchant,
    ScriptedIssuer,
    ScriptedProvider,
    failed_payment,
    insufficient_funds,
)
from sqlalchemy import select
from starlette.testclient import TestClient
from typer.testing import CliRunner

from recoverkit.cli import app
from recoverkit.sandbox.clock import SimulatedClock
from recoverkit.sandbox.history import examples_from_bridge
from recoverkit.sandbox.policies.adaptive import AdaptivePolicy
from recoverkit.sandbox.policies.fixed import FixedSchedule
from recoverkit.sandbox.policies.holdout import HoldoutPolicy, in_holdout
from recoverkit.sandbox.server import store
from recoverkit.sandbox.server.app import Sandbox
from recoverkit.sandbox.server.settings import SandboxSettings
from recoverkit.sandbox.server.training import examples_from_sandbox, uplift_from_sandbox
from recoverkit.store.engine import make_engine
from recoverkit.store.migrate import upgrade
from recoverkit.store.repo import OutboxMessage, enqueue_outbox

KEY = {"x-api-key": "sandbox_key"}


def _history(sandbox: Sandbox, clock: SimulatedClock, issuer: ScriptedIssuer, n: int) -> None:
    rng = random.Random(7)
    issuer.script = [rng.random() < 0.3 or insufficient_funds() for _ in range(n * 5)]
    client = TestClient(sandbox.app)
    for i in range(n):
        body = failed_payment(f"inv_{i}", payment_method_id=f"pm_{i}")
        body["customer"]["id"] = f"cus_{i}"
        assert client.post("/recover/payments", json=body, headers=KEY).is_success
    for _ in range(40):
        sandbox.run_until_idle()
        clock.advance(timedelta(hours=6))


def test_every_finished_retry_becomes_an_example_as_of_its_time(
    make_sandbox: Callable[..., Sandbox], clock: SimulatedClock, issuer: ScriptedIssuer
) -> None:
    sandbox = make_sandbox()
    _history(sandbox, clock, issuer, 30)
    examples = examples_from_sandbox(sandbox.book)
    assert len(examples) == len(issuer.calls)
    assert {e.approved for e in examples} == {True, False}
    for example in examples:
        context = example.context
        assert context.now == example.at
        # Only what was known before the retry: earlier attempts, never this one or later.
        assert all(a.at <= example.at for a in context.invoice_attempts)
        assert all(a.at < example.at for a in context.card_attempts)
    by_invoice: dict[str, list[int]] = {}
    for example in examples:
        by_invoice.setdefault(example.context.invoice_id, []).append(
            len(example.context.invoice_attempts)
        )
    assert all(sizes == list(range(1, len(sizes) + 1)) for sizes in by_invoice.values())


def test_sandbox_train_fits_on_the_stored_history(
    make_sandbox: Callable[..., Sandbox],
    clock: SimulatedClock,
    issuer: ScriptedIssuer,
    tmp_path: Path,
) -> None:
    sandbox = make_sandbox()
    _history(sandbox, clock, issuer, 60)
    model = tmp_path / "model.pkl"
    url = sandbox.settings.database_url
    result = CliRunner().invoke(
        app, ["sandbox", "train", "--database-url", url, "--out", str(model)]
    )
    assert result.exit_code == 0, result.output
    assert model.exists()
    assert "AUC" in result.output


def test_sandbox_train_refuses_a_history_too_small(
    make_sandbox: Callable[..., Sandbox], tmp_path: Path
) -> None:
    sandbox = make_sandbox()
    url = sandbox.settings.database_url
    result = CliRunner().invoke(
        app, ["sandbox", "train", "--database-url", url, "--out", str(tmp_path / "m.pkl")]
    )
    assert result.exit_code != 0
    assert "too few" in result.output


# --- issue 14: the adaptive policy learns as the sandbox runs; the holdout measures uplift -------


def _adaptive_sandbox(
    tmp_path: Path, clock: SimulatedClock, issuer: ScriptedIssuer, merchant: RecordingMerchant
) -> Sandbox:
    settings = SandboxSettings(
        database_url=f"sqlite:///{tmp_path / 'adaptive.db'}", signing_secret=SIGNING_SECRET
    )
    provider = ScriptedProvider(issuer)
    return Sandbox.create(
        settings,
        policy=HoldoutPolicy(AdaptivePolicy(), FixedSchedule(), share=0.3),
        providers=lambda name: provider,
        clock=clock,
        merchant_transport=httpx.MockTransport(merchant.handler),
    )


def test_adaptive_learns_every_finished_retry_once_and_persists_its_state(
    tmp_path: Path, clock: SimulatedClock, issuer: ScriptedIssuer, merchant: RecordingMerchant
) -> None:
    sandbox = _adaptive_sandbox(tmp_path, clock, issuer, merchant)
    try:
        assert sandbox.learner is not None
        _history(sandbox, clock, issuer, 30)
        learned = sandbox.learner.policy
        assert isinstance(learned, AdaptivePolicy)
        finished = len(examples_from_sandbox(sandbox.book))
        assert finished == len(issuer.calls) > 0
        # Every finished retry was offered once; the ones matching an arm were counted.
        assert 0 < learned.observations <= finished
        assert sandbox.learn() == 0  # nothing new: nothing learned twice
        with sandbox.book.engine.connect() as conn:
            row = conn.execute(select(store.policy_state)).one()
        assert row.name == "adaptive"
        assert row.observations == learned.observations
    finally:
        sandbox.stop()
    # A restarted sandbox resumes from the stored posterior, not from scratch.
    again = _adaptive_sandbox(tmp_path, clock, issuer, merchant)
    try:
        assert again.learner is not None
        assert again.learner.policy.observations == learned.observations
    finally:
        again.stop()


def test_holdout_invoices_get_the_baseline_and_the_uplift_is_reported(
    tmp_path: Path, clock: SimulatedClock, issuer: ScriptedIssuer, merchant: RecordingMerchant
) -> None:
    sandbox = _adaptive_sandbox(tmp_path, clock, issuer, merchant)
    try:
        _history(sandbox, clock, issuer, 40)
        for _ in range(130):  # run every invoice to the end of its window
            sandbox.run_until_idle()
            clock.advance(timedelta(hours=6))
        with sandbox.book.engine.connect() as conn:
            rows = conn.execute(select(store.invoices)).all()
        held = [r for r in rows if in_holdout(r.invoice_id, 0.3)]
        assert 0 < len(held) < len(rows)
        for row in held:  # the baseline's reasons, tagged
            if row.state == "dunning" and row.end_reason:
                assert row.end_reason.startswith("holdout (fixed)")
        results = uplift_from_sandbox(sandbox.book, share=0.3)
        assert [r.currency for r in results] == ["USD"]
        uplift = results[0].uplift
        assert uplift.treated_invoices + uplift.holdout_invoices == sum(
            r.state in {"recovered", "ended"} for r in rows
        )
        url = sandbox.settings.database_url
        result = CliRunner().invoke(
            app, ["sandbox", "uplift", "--database-url", url, "--holdout-share", "0.3"]
        )
        assert result.exit_code == 0, result.output
        assert "uplift" in result.output
    finally:
        sandbox.stop()


def test_holdout_split_is_stable_and_validated() -> None:
    ids = [f"inv_{k}" for k in range(4_000)]
    share = sum(in_holdout(i, 0.1) for i in ids) / len(ids)
    assert 0.08 < share < 0.12
    assert [in_holdout(i, 0.1) for i in ids] == [in_holdout(i, 0.1) for i in ids]
    with pytest.raises(ValueError, match="share"):
        in_holdout("inv", 1.0)


# --- issue 14 item 6: `recoverkit train --from-store` on the bridge's stored history -------------


def _bridge_store(tmp_path: Path, invoices: int) -> str:
    """A migrated bridge database whose outbox holds Payments events: a failure, then PSP
    retries an hour to days apart (e.g. Smart Retries), some approved."""
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    engine = make_engine(url)
    upgrade(engine)
    rng = random.Random(3)
    messages = []
    for i in range(invoices):
        at = START + timedelta(hours=i)
        transactions = []
        for k in range(4):
            ok = k > 0 and rng.random() < 0.35
            body = failed_payment(
                f"inv_{i}",
                id=f"ts_{i}_{k}",
                psp_transaction_id=f"ch_{i}_{k}",
                payment_method_id=f"pm_{i}",
                psp_transaction_created_at=at.isoformat(),
                success=ok,
                outcome={"raw_response_message": "51" if not ok else "00"}
                | ({"response_type": "soft_decline"} if not ok else {}),
            )
            body["customer"]["id"] = f"cus_{i}"
            transactions += body["transactions"]
            # Each attempt reaches the bridge as its own Payments event with the history so far.
            body["transactions"] = list(transactions)
            messages.append(
                OutboxMessage("stripe", "payments", f"evt_{i}_{k}", json.dumps(body), f"inv_{i}")
            )
            if ok:
                break
            at += timedelta(hours=rng.choice([1, 20, 50, 90]))
    messages.append(OutboxMessage("stripe", "payments", "junk", "{not json", None))
    with engine.begin() as conn:
        enqueue_outbox(conn, messages, START)
    engine.dispose()
    return url


def test_bridge_history_gives_one_example_per_retry_without_the_future(tmp_path: Path) -> None:
    url = _bridge_store(tmp_path, 30)
    history = examples_from_bridge(make_engine(url))
    assert history.invoices_in_dunning == 30
    assert history.skipped_messages == 1
    retries_per_invoice: dict[str, int] = {}
    for example in history.examples:
        context = example.context
        retries_per_invoice[context.invoice_id] = retries_per_invoice.get(context.invoice_id, 0) + 1
        assert context.now == example.at
        assert all(a.at < example.at for a in context.invoice_attempts)
        assert all(a.at < example.at for a in context.card_attempts)
        assert not context.invoice_attempts[-1].approved  # nothing after a success
        assert context.last_decline.category.value == "insufficient_funds"
        assert context.network == "visa"
    # Each invoice: the retries after its first failure, up to and including the first success.
    assert sum(retries_per_invoice.values()) == len(history.examples)
    assert {e.approved for e in history.examples} == {True, False}


def test_train_from_store_fits_and_refuses_a_thin_history(tmp_path: Path) -> None:
    url = _bridge_store(tmp_path, 60)
    model = tmp_path / "model.pkl"
    result = CliRunner().invoke(app, ["train", "--from-store", url, "--out", str(model)])
    assert result.exit_code == 0, result.output
    assert model.exists()
    assert "AUC" in result.output
    thin = tmp_path / "thin"
    thin.mkdir()
    small = _bridge_store(thin, 5)
    result = CliRunner().invoke(app, ["train", "--from-store", small, "--out", str(model)])
    assert result.exit_code == 2
    assert "too few" in result.output
