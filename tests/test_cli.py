"""``recoverkit translate``, ``plugins`` and ``schema`` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from example_provider import TEST_SECRET, ExamplePlugin, ExampleProvider, event_body, sample_body
from typer.testing import CliRunner

import recoverkit.cli
import recoverkit.demo
from recoverkit import Plugins
from recoverkit.cli import app
from recoverkit.schema import WIRE_MESSAGES

runner = CliRunner()


@pytest.fixture(autouse=True)
def example_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI sees the example provider as if its distribution were installed."""

    def plugins() -> Plugins:
        return Plugins([ExamplePlugin()], load_entry_points=False)

    monkeypatch.setattr(recoverkit.cli, "Plugins", plugins)
    monkeypatch.setattr(recoverkit.demo, "Plugins", plugins)
    monkeypatch.delenv("RECOVERKIT_EXAMPLE_WEBHOOK_SECRETS", raising=False)


def _signed(tmp_path: Path, body: bytes, *, at: datetime | None = None) -> tuple[Path, str]:
    request = ExampleProvider.with_webhook_secret(TEST_SECRET).sign_test_webhook(body, timestamp=at)
    path = tmp_path / "webhook.json"
    path.write_bytes(body)
    return path, f"Example-Signature: {request.header('Example-Signature')}"


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def test_translate_prints_one_json_line_per_message(tmp_path: Path) -> None:
    path, header = _signed(tmp_path, sample_body("charge_failed"))
    code, out, _ = _run("translate", "example", str(path), "-H", header, "--secret", TEST_SECRET)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1
    message = json.loads(lines[0])
    assert message["endpoint"] == "payments"
    assert message["dedupe_key"] == "evt_ex_failed_1"
    assert message["body"]["transactions"][0]["amount"] == 19.99
    assert '"amount":19.99,' in lines[0]
    assert message["decline"]["category"] == "insufficient_funds"


def test_translate_reads_the_secret_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECOVERKIT_EXAMPLE_WEBHOOK_SECRETS", json.dumps([TEST_SECRET]))
    path, header = _signed(tmp_path, sample_body("card_updated"))
    code, out, _ = _run("translate", "example", str(path), "--header", header)
    assert code == 0
    assert json.loads(out)["endpoint"] == "payment_method_updates"


def test_translate_reports_ignored_events(tmp_path: Path) -> None:
    path, header = _signed(tmp_path, sample_body("customer_created"))
    code, out, _ = _run("translate", "example", str(path), "-H", header, "--secret", TEST_SECRET)
    assert code == 0
    assert json.loads(out) == {
        "ignored": "customer.created",
        "reason": "customer.created carries nothing for Recover",
    }


def test_tampered_body_exits_3(tmp_path: Path) -> None:
    path, header = _signed(tmp_path, sample_body("charge_failed"))
    path.write_bytes(path.read_bytes().replace(b"1999", b"1"))
    code, out, err = _run("translate", "example", str(path), "-H", header, "--secret", TEST_SECRET)
    assert code == 3
    assert out == ""
    assert "signature" in err
    assert len(err.strip().splitlines()) == 1


def test_wrong_secret_and_stale_signature_exit_3(tmp_path: Path) -> None:
    path, header = _signed(tmp_path, sample_body("charge_failed"))
    assert _run("translate", "example", str(path), "-H", header, "--secret", "nope")[0] == 3
    old = datetime.now(UTC) - timedelta(hours=2)
    path, header = _signed(tmp_path, sample_body("charge_failed"), at=old)
    code, _, err = _run("translate", "example", str(path), "-H", header, "--secret", TEST_SECRET)
    assert code == 3
    assert "old" in err


def test_missing_signature_header_exits_3(tmp_path: Path) -> None:
    path, _ = _signed(tmp_path, sample_body("charge_failed"))
    code, _, err = _run("translate", "example", str(path), "--secret", TEST_SECRET)
    assert code == 3
    assert "Example-Signature" in err


def test_malformed_body_exits_2_naming_the_problem(tmp_path: Path) -> None:
    path, header = _signed(tmp_path, b"{not json")
    code, _, err = _run("translate", "example", str(path), "-H", header, "--secret", TEST_SECRET)
    assert code == 2
    assert "not valid JSON" in err


def test_no_verify_still_validates_the_body(tmp_path: Path) -> None:
    path = tmp_path / "w.json"
    path.write_bytes(event_body(data={"id": "x"}, type="charge.failed"))
    code, _, err = _run("translate", "example", str(path), "--no-verify")
    assert code == 2
    assert "example:" in err


def test_unknown_provider_missing_file_and_bad_header_exit_2(tmp_path: Path) -> None:
    path, _ = _signed(tmp_path, sample_body("charge_failed"))
    code, _, err = _run("translate", "nosuch", str(path), "--no-verify")
    assert (code, "no provider 'nosuch'" in err) == (2, True)
    code, _, err = _run("translate", "example", str(tmp_path / "missing.json"), "--no-verify")
    assert (code, "cannot read" in err) == (2, True)
    code, _, err = _run("translate", "example", str(path), "-H", "NoColon", "--no-verify")
    assert (code, "Name: value" in err) == (2, True)
    code, _, err = _run("translate", "example", str(path), "--secret", "s", "--no-verify")
    assert (code, "exclude each other" in err) == (2, True)


def test_no_secret_configured_exits_2_saying_how_to_set_one(tmp_path: Path) -> None:
    path, header = _signed(tmp_path, sample_body("charge_failed"))
    code, _, err = _run("translate", "example", str(path), "-H", header)
    assert code == 2
    assert "RECOVERKIT_EXAMPLE_WEBHOOK_SECRETS" in err


def test_plugins_lists_providers_with_capabilities() -> None:
    code, out, _ = _run("plugins")
    assert code == 0
    assert "example" in out
    assert "reconcile" in out


def test_schema_writes_one_file_per_wire_message(tmp_path: Path) -> None:
    code, _, _ = _run("schema", "--out", str(tmp_path / "schemas"))
    assert code == 0
    files = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert files == sorted(f"{name}.schema.json" for name in WIRE_MESSAGES)
    payments = json.loads((tmp_path / "schemas" / "payments.schema.json").read_text())
    assert payments["additionalProperties"] is False
    assert "transactions" in payments["required"]


def test_demo_shows_the_samples_and_runs_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = _run("demo")
    assert code == 0, out
    assert "POST /payments" in out
    assert "insufficient_funds" in out
    assert "simulated issuer" in out
    assert "demo summary" in out
    assert "every invoice charged at most once, every webhook verified" in out


def test_real_script_never_prints_a_traceback(tmp_path: Path) -> None:
    body = tmp_path / "w.json"
    body.write_text("{}")
    result = subprocess.run(
        [sys.executable, "-m", "recoverkit", "translate", "no_such_psp", str(body)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no provider 'no_such_psp'" in result.stderr
    assert "Traceback" not in result.stderr


def test_translate_reads_provider_settings_from_the_config_file(tmp_path: Path) -> None:
    old = datetime.now(UTC) - timedelta(days=3)
    path, header = _signed(tmp_path, sample_body("charge_failed"), at=old)
    args = ["translate", "example", str(path), "-H", header, "--secret", TEST_SECRET]
    assert _run(*args)[0] == 3  # stale under the default 300 s tolerance
    config = tmp_path / "recoverkit.toml"
    config.write_text("[providers.example]\ntolerance_seconds = 604800\n", encoding="utf-8")
    code, out, _ = _run(*args, "--config", str(config))
    assert code == 0
    assert json.loads(out)["dedupe_key"] == "evt_ex_failed_1"
