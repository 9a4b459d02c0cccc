"""The service's CLI commands, run through typer's CliRunner against a real SQLite file."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
import uvicorn
from fake_provider import FakeProvider, charge_event
from service_standin import free_port
from service_support import Service
from typer.testing import CliRunner

from recoverkit.service.commands import add_service_commands
from recoverkit.store import head_revision, make_engine, repo

PLUGIN = ["--plugin", "fake_provider:plugin"]


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    add_service_commands(app)
    return app


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("RETRY_STATUS", "RETRY_RESULTS", "END_OF_DUNNING"):
        monkeypatch.setenv(f"RECOVERKIT_{name}__API_KEY", "merchant-key")
    monkeypatch.setenv("RECOVERKIT_BUTTER_SIGNING_SECRETS", '["s"]')
    monkeypatch.setenv("RECOVERKIT_RECOVER_API_KEY", "k")
    monkeypatch.setenv("RECOVERKIT_LOAD_PLUGINS", "")
    monkeypatch.setenv("COLUMNS", "250")  # rich tables: no wrapping inside the checked text
    path = tmp_path / "recoverkit.toml"
    path.write_text(
        f'database_url = "sqlite:///{tmp_path / "cli.db"}"\n'
        'recover_base_url = "http://127.0.0.1:9/recover"\n'
    )
    return path


def run(cli: typer.Typer, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def test_db_upgrade_then_doctor_passes(cli: typer.Typer, config: Path) -> None:
    code, out = run(cli, "db", "upgrade", "-c", str(config))
    assert code == 0, out
    assert f"database at {head_revision()} (was empty)" in out
    code, out = run(cli, "doctor", "-c", str(config), *PLUGIN)
    assert code == 0, out
    assert "provider fake" in out
    assert "FAIL" not in out


def test_doctor_fails_on_missing_key_and_unmigrated_db(
    cli: typer.Typer, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RECOVERKIT_RECOVER_API_KEY")
    monkeypatch.delenv("RECOVERKIT_END_OF_DUNNING__API_KEY")
    code, out = run(cli, "doctor", "-c", str(config), *PLUGIN)
    assert code == 1
    assert "recoverkit db upgrade" in out
    assert "RECOVERKIT_RECOVER_API_KEY" in out
    assert "RECOVERKIT_END_OF_DUNNING__API_KEY" in out


def test_bad_settings_are_one_line_exit_2(cli: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('recover_api_key = "oops"\n')
    code, _ = run(cli, "doctor", "-c", str(bad))
    assert code == 2


def _outbox(config: Path) -> None:
    engine = make_engine(f"sqlite:///{config.parent / 'cli.db'}")
    now = datetime.now(UTC)
    with engine.begin() as conn:
        repo.enqueue_outbox(
            conn,
            [repo.OutboxMessage("fake", "payments", f"k{n}", "{}", f"inv_{n}") for n in range(3)],
            now,
        )
        conn.exec_driver_sql("UPDATE outbox SET state='dead', last_status=400 WHERE id=1")
        conn.exec_driver_sql("UPDATE outbox SET state='sent', created_at='2000-01-01' WHERE id=2")
    engine.dispose()


def test_outbox_list_retry_purge(cli: typer.Typer, config: Path) -> None:
    assert run(cli, "db", "upgrade", "-c", str(config))[0] == 0
    _outbox(config)
    code, out = run(cli, "outbox", "list", "-c", str(config), "--state", "dead")
    assert code == 0
    assert "inv_0" in out
    assert "inv_1" not in out
    assert run(cli, "outbox", "retry", "-c", str(config))[1].startswith("1 row(s) queued again")
    code, out = run(cli, "outbox", "purge", "-c", str(config), "--state", "sent")
    assert (code, out.strip()) == (0, "1 sent row(s) deleted")
    code, out = run(cli, "outbox", "list", "-c", str(config))
    assert out.count("pending") == 2


def test_backfill_is_resumable(cli: typer.Typer, config: Path) -> None:
    assert run(cli, "db", "upgrade", "-c", str(config))[0] == 0
    FakeProvider.history = [
        charge_event(f"h{n}", invoice=f"inv_{n}", created=1_770_000_000 + n) for n in range(25)
    ]
    FakeProvider.cursors_seen = []
    FakeProvider.fail_after = 12
    args = ["backfill", "fake", "--since", "2026-01-01", "--chunk", "5", "-c", str(config), *PLUGIN]
    code, _ = run(cli, *args)
    assert code == 2  # the PSP call failed mid-way; the position of the last stored chunk is saved
    code, out = run(cli, *args)
    assert code == 0, out
    assert "resuming after 10 event(s)" in out
    assert FakeProvider.cursors_seen == [None, "9"]
    engine = make_engine(f"sqlite:///{config.parent / 'cli.db'}")
    assert repo.counts(engine)["inbox"] == {"pending": 25}
    assert repo.get_backfill_cursor(engine, "fake") == (None, 0)
    engine.dispose()


@pytest.fixture
def server(service: Service) -> Iterator[int]:
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(service.app, port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not srv.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield port
    srv.should_exit = True
    thread.join(10)


def test_replay_resigns_and_posts_recorded_webhooks(
    cli: typer.Typer, config: Path, server: int, service: Service, tmp_path: Path
) -> None:
    recorded = tmp_path / "evt.json"
    recorded.write_text(
        json.dumps(
            {
                "provider": "fake",
                "headers": {"X-Fake-Signature": "t=1,v1=00"},
                "body": charge_event("evt_r"),
            }
        )
    )
    raw = tmp_path / "raw.json"
    raw.write_text(json.dumps(charge_event("evt_raw")))
    code, out = run(
        cli,
        "replay",
        str(recorded),
        str(raw),
        "--provider",
        "fake",
        "--url",
        f"http://127.0.0.1:{server}",
        "-c",
        str(config),
        *PLUGIN,
    )
    assert code == 0, out
    assert out.count("200") == 2
    assert repo.counts(service.engine)["inbox"] == {"pending": 2}
    code, out = run(
        cli,
        "replay",
        str(recorded),
        "--no-resign",
        "--url",
        f"http://127.0.0.1:{server}",
        "-c",
        str(config),
        *PLUGIN,
    )
    assert code == 1
    assert "401" in out
