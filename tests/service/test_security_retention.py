"""Issue 11 items 2 and 3: retention of raw payloads and old rows, and erasure of a customer."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import typer
from fake_provider import charge_event, signed
from service_support import Service, call
from sqlalchemy import select
from typer.testing import CliRunner

from recoverkit.service import retention
from recoverkit.service.commands import add_service_commands
from recoverkit.store import make_engine, repo, upgrade
from recoverkit.store.tables import butter_webhooks, inbox, ledger, outbox

DAY = timedelta(days=1)


def _post(svc: Service, event: dict[str, object]) -> None:
    raw, headers = signed(event)
    response = call(svc.app, "POST", "/webhooks/fake", content=raw, headers=headers)
    assert response.status_code == 200, response.text


def _inbox(svc: Service) -> list[tuple[str, str | None, datetime | None, str]]:
    with svc.engine.connect() as conn:
        rows = conn.execute(
            select(inbox.c.data, inbox.c.digest, inbox.c.payload_purged_at, inbox.c.state)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def _rows(svc: Service, table: object) -> int:
    with svc.engine.connect() as conn:
        return len(conn.execute(select(table)).all())  # type: ignore[call-overload]


def test_raw_payload_is_dropped_after_the_window_and_dedupe_still_works(service: Service) -> None:
    _post(service, charge_event("evt_1", note="Jane Doe, jane@example.com"))
    service.drain()
    [(data, digest, purged, state)] = _inbox(service)
    assert "jane@example.com" in data
    assert digest
    assert purged is None
    assert state == "done"
    now = datetime.now(UTC)
    settings = service.settings
    # Inside the window nothing happens; a dry run past it only counts.
    assert retention.purge(service.engine, settings, now)["inbox payloads dropped"] == 0
    later = now + timedelta(seconds=settings.inbox_payload_retention) + DAY
    counts = retention.purge(service.engine, settings, later, dry_run=True)
    assert counts["inbox payloads dropped"] == 1
    assert _inbox(service)[0][0] == data
    counts = retention.purge(service.engine, settings, later)
    assert counts["inbox payloads dropped"] == 1
    [(data_after, digest_after, purged_after, _)] = _inbox(service)
    assert data_after == retention.PURGED
    assert digest_after == digest  # the audit trail keeps the digest
    assert purged_after is not None
    # A redelivery of the same event is still a duplicate: nothing new stored or sent.
    sent = len(service.recover.accepted)
    _post(service, charge_event("evt_1", note="Jane Doe, jane@example.com"))
    service.drain()
    assert len(_inbox(service)) == 1
    assert len(service.recover.accepted) == sent


def test_pending_payloads_are_kept_until_translated(service: Service) -> None:
    _post(service, charge_event("evt_1"))  # not drained: still pending
    far = datetime.now(UTC) + 365 * DAY
    assert retention.purge(service.engine, service.settings, far)["inbox payloads dropped"] == 0


def test_a_failed_rows_payload_and_error_text_go_too(service: Service) -> None:
    _post(service, charge_event("evt_1", fail_translate=True, note="jane@example.com"))
    for _ in range(service.settings.inbox_max_attempts):
        with service.engine.begin() as conn:  # make the next attempt due at once
            conn.execute(inbox.update().values(next_attempt_at=datetime.now(UTC)))
        service.worker.translate_pending()
    with service.engine.connect() as conn:
        assert conn.execute(select(inbox.c.state, inbox.c.last_error)).one()[0] == "failed"
    far = datetime.now(UTC) + 365 * DAY
    assert retention.purge(service.engine, service.settings, far)["inbox payloads dropped"] == 1
    with service.engine.connect() as conn:
        data, error = conn.execute(select(inbox.c.data, inbox.c.last_error)).one()
    assert (data, error) == (retention.PURGED, None)


def test_outbox_ledger_and_butter_rows_go_after_their_windows(service: Service) -> None:
    _post(service, charge_event("evt_1"))
    service.drain()
    now = datetime.now(UTC)
    repo.claim_butter_webhook(service.engine, "d-1", "retry_results", "inv_1", now)
    repo.complete_butter_webhook(service.engine, "d-1")
    s = service.settings
    assert (_rows(service, outbox), _rows(service, ledger), _rows(service, butter_webhooks)) == (
        1,
        1,
        1,
    )
    counts = retention.purge(service.engine, s, now + timedelta(seconds=s.outbox_retention) + DAY)
    assert counts["outbox rows deleted"] == 1
    assert counts["butter webhook rows deleted"] == 1
    assert counts["ledger rows deleted"] == 0
    counts = retention.purge(service.engine, s, now + timedelta(seconds=s.ledger_retention) + DAY)
    assert counts["ledger rows deleted"] == 1
    assert (_rows(service, outbox), _rows(service, ledger), _rows(service, butter_webhooks)) == (
        0,
        0,
        0,
    )


def test_schedule_purges_once_per_interval(service: Service) -> None:
    schedule = retention.RetentionSchedule(service.engine, service.settings)
    now = datetime.now(UTC)
    assert schedule.tick(now) is not None
    assert schedule.tick(now + timedelta(seconds=1)) is None
    interval = service.settings.retention_interval
    assert schedule.tick(now + timedelta(seconds=interval + 1)) is not None
    off = retention.RetentionSchedule(
        service.engine, service.settings.model_copy(update={"retention_interval": 0})
    )
    assert off.tick(now) is None


def test_forget_anonymises_the_ledger_drops_payloads_and_outbox(service: Service) -> None:
    _post(service, charge_event("evt_1", invoice="inv_1"))
    service.drain()
    service.recover.mode = "refused"  # the second message cannot be sent yet
    _post(service, charge_event("evt_2", invoice="inv_2", charge="ch_2"))
    service.drain()
    with service.engine.connect() as conn:
        states = dict(conn.execute(select(outbox.c.invoice_id, outbox.c.state)).all())
    assert states == {"inv_1": "sent", "inv_2": "pending"}
    counts = retention.forget(service.engine, "cus_1", datetime.now(UTC))
    assert counts == {
        "ledger rows anonymised": 2,
        "inbox payloads dropped": 2,
        "inbox payloads kept until translated": 0,
        "outbox rows deleted": 1,
        "outbox rows kept until sent": 1,
    }
    with service.engine.connect() as conn:
        entries = conn.execute(select(ledger.c.customer_id, ledger.c.psp_customer_id)).all()
        assert set(entries) == {(None, None)}
        assert all(d == retention.PURGED for d in conn.execute(select(inbox.c.data)).scalars())
    # The pending message still goes to Recover, then the next purge deletes it.
    service.recover.mode = "ok"
    for _ in range(500):  # until its (millisecond) backoff has passed and it is sent
        service.worker.forward_pending()
        if _states(service) == ["sent"]:
            break
        time.sleep(0.01)
    assert _states(service) == ["sent"]
    counts = retention.purge(service.engine, service.settings, datetime.now(UTC))
    assert counts["outbox rows deleted"] == 1
    assert _rows(service, outbox) == 0


def _states(svc: Service) -> list[str]:
    with svc.engine.connect() as conn:
        return list(conn.execute(select(outbox.c.state)).scalars())


def test_forget_with_a_provider_filter_leaves_other_providers(service: Service) -> None:
    _post(service, charge_event("evt_1"))
    service.drain()
    counts = retention.forget(service.engine, "cus_1", datetime.now(UTC), provider="stripe")
    assert set(counts.values()) == {0}
    counts = retention.forget(service.engine, "cus_1", datetime.now(UTC), provider="fake")
    assert counts["ledger rows anonymised"] == 1


def test_forget_treats_like_wildcards_literally(service: Service) -> None:
    _post(service, charge_event("evt_1"))
    service.drain()
    counts = retention.forget(service.engine, "cus_%", datetime.now(UTC))
    assert set(counts.values()) == {0}


# -- the commands ------------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[typer.Typer, Path]:
    monkeypatch.setenv("RECOVERKIT_LOAD_PLUGINS", "")
    monkeypatch.setenv("COLUMNS", "200")
    db = tmp_path / "cli.db"
    config = tmp_path / "recoverkit.toml"
    config.write_text(f'database_url = "sqlite:///{db}"\n')
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    now = datetime.now(UTC) - 30 * DAY
    with engine.begin() as conn:
        conn.execute(
            inbox.insert(),
            {
                "provider": "fake",
                "dedupe_key": "evt_old",
                "event_type": "charge.failed",
                "occurred_at": now,
                "received_at": now,
                "data": json.dumps({"customer": "cus_9", "email": "x@example.com"}),
                "state": "done",
                "attempts": 1,
                "next_attempt_at": now,
            },
        )
    engine.dispose()
    app = typer.Typer()
    add_service_commands(app)
    return app, config


def test_purge_command_prints_counts_and_dry_run_changes_nothing(
    cli: tuple[typer.Typer, Path],
) -> None:
    app, config = cli
    result = CliRunner().invoke(app, ["purge", "--dry-run", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "1  inbox payloads dropped (would be)" in result.output
    result = CliRunner().invoke(app, ["purge", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "1  inbox payloads dropped" in result.output
    result = CliRunner().invoke(app, ["purge", "-c", str(config)])
    assert "0  inbox payloads dropped" in result.output


def test_forget_command_prints_what_it_did(cli: tuple[typer.Typer, Path]) -> None:
    app, config = cli
    result = CliRunner().invoke(app, ["forget", "--customer", "cus_9", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "1  inbox payloads dropped" in result.output
    assert "0  ledger rows anonymised" in result.output
    result = CliRunner().invoke(app, ["forget", "--customer", " ", "-c", str(config)])
    assert result.exit_code == 2
    assert "--customer" in result.output


def test_purge_forget_and_replay_keys_work_on_postgres(pg_url: str, tmp_path: Path) -> None:
    from service_support import FakeRecover, build_service, make_settings

    engine = make_engine(pg_url)
    upgrade(engine)
    svc = build_service(make_settings(tmp_path, database_url=pg_url), engine, FakeRecover())
    _post(svc, charge_event("evt_1", note="jane@example.com"))
    svc.drain()
    now = datetime.now(UTC)
    # The message key is unique: a second delivery id for the same message is a replay.
    assert repo.claim_butter_webhook(engine, "d-1", "k", "inv_1", now, message_key="m") == "new"
    repo.complete_butter_webhook(engine, "d-1", "m")
    assert repo.claim_butter_webhook(engine, "d-2", "k", "inv_1", now, message_key="m") == "done"
    later = now + timedelta(seconds=svc.settings.outbox_retention) + DAY
    counts = retention.purge(engine, svc.settings, later)
    assert counts["inbox payloads dropped"] == 1
    assert counts["butter webhook rows deleted"] == 1
    assert retention.forget(engine, "cus_1", now)["ledger rows anonymised"] == 1
    svc.worker.close()
    engine.dispose()


def test_migration_0002_downgrades_and_upgrades_again(tmp_path: Path) -> None:
    from alembic import command

    from recoverkit.store.migrate import _config, current_revision, head_revision

    engine = make_engine(f"sqlite:///{tmp_path / 'mig.db'}")
    upgrade(engine)
    command.downgrade(_config(engine), "0001")
    assert current_revision(engine) == "0001"
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()
