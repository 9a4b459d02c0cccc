"""``recoverkit simulate`` and ``recoverkit sandbox train`` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from recoverkit.sandbox.commands import add_simulation_commands, sandbox_app
from recoverkit.sandbox.policies import SuccessModel

runner = CliRunner()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """A stand-in for recoverkit.cli.app."""

    add_simulation_commands(app)
    return app


def test_simulate_small_population_prints_the_table_and_writes_the_png(
    app: typer.Typer, tmp_path: Path
) -> None:
    chart = tmp_path / "recovery.png"
    result = runner.invoke(
        app,
        ["simulate", "--invoices", "600", "--seeds", "2", "--train-invoices", "1500",
         "--chart", str(chart)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for text in ("fixed", "rules", "learned", "rule violations", "AUC", "revenue vs fixed"):
        assert text in result.output
    assert chart.read_bytes().startswith(PNG_MAGIC)


def test_simulate_with_a_saved_model_skips_training(app: typer.Typer, tmp_path: Path) -> None:
    model = tmp_path / "model.pkl"
    trained = runner.invoke(app, ["sandbox", "train", "--invoices", "1500", "--out", str(model)])
    assert trained.exit_code == 0, trained.output
    assert "log-loss of a constant predictor" in trained.output
    assert isinstance(SuccessModel.load(model), SuccessModel)
    result = runner.invoke(
        app,
        ["simulate", "--invoices", "300", "-p", "learned", "--model", str(model),
         "--chart", str(tmp_path / "c.png")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "training the learned model" not in result.output


def test_simulate_rejects_an_unknown_policy(app: typer.Typer, tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "-p", "yolo", "--chart", str(tmp_path / "c.png")])
    assert result.exit_code == 2
    assert "unknown policy 'yolo'" in result.output


def test_sandbox_sub_app_is_shared_and_named_sandbox() -> None:
    assert sandbox_app.info.name == "sandbox"
    names = [c.name or (c.callback.__name__ if c.callback else "") for c in
             sandbox_app.registered_commands]  # fmt: skip
    assert "train" in names


def test_simulate_families_reports_lift_per_family_mean_and_worst(app: typer.Typer) -> None:
    result = runner.invoke(
        app,
        ["simulate", "--families", "2", "--invoices", "300", "-p", "rules", "-p", "adaptive"],
    )
    assert result.exit_code == 0, result.output
    for text in ("Held-out world families", "rules vs fixed", "adaptive holdout", "mean", "worst"):
        assert text in result.output


def test_simulate_families_refuses_a_bad_holdout(app: typer.Typer) -> None:
    result = runner.invoke(app, ["simulate", "--families", "1", "--holdout", "1.5"])
    assert result.exit_code == 2
    assert "--holdout" in result.output
