"""The learned policy can be fitted on the sandbox's own stored retries."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from sandbox_fakes import ScriptedIssuer, failed_payment, insufficient_funds
from starlette.testclient import TestClient
from typer.testing import CliRunner

from recoverkit.cli import app
from recoverkit.sandbox.clock import SimulatedClock
from recoverkit.sandbox.server.app import Sandbox
from recoverkit.sandbox.server.training import examples_from_sandbox

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
