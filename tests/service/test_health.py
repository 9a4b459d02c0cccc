"""/healthz, /readyz (database reachable, migrations current), /metrics; migrations."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from fake_provider import charge_event, signed
from service_support import FakeRecover, Service, build_service, call, make_settings

from recoverkit.store import current_revision, head_revision, make_engine, upgrade


def test_healthz(service: Service) -> None:
    assert call(service.app, "GET", "/healthz").json() == {"status": "ok"}


def test_readyz_ok_when_migrated(service: Service) -> None:
    response = call(service.app, "GET", "/readyz")
    assert response.status_code == 200
    assert head_revision() in response.json()["detail"]


def test_readyz_503_when_not_migrated(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    svc = build_service(make_settings(tmp_path), engine, FakeRecover())
    response = call(svc.app, "GET", "/readyz")
    assert response.status_code == 503
    assert "recoverkit db upgrade" in response.json()["detail"]
    svc.worker.close()


def test_upgrade_is_idempotent_and_creates_every_table(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    assert current_revision(engine) is None
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    names = set(sa.inspect(engine).get_table_names())
    assert {"inbox", "outbox", "ledger", "butter_webhooks", "backfill_cursors"} <= names
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_metrics_count_webhooks_rejections_and_queue_depth(service: Service) -> None:
    raw, headers = signed(charge_event("evt_1"))
    call(service.app, "POST", "/webhooks/fake", content=raw, headers=headers)
    call(service.app, "POST", "/webhooks/fake", content=raw, headers={})
    text = call(service.app, "GET", "/metrics").text
    assert 'recoverkit_webhooks_received_total{provider="fake"} 1.0' in text
    assert 'recoverkit_webhooks_rejected_total{provider="fake",reason="signature"} 1.0' in text
    assert 'recoverkit_queue_rows{queue="inbox",state="pending"} 1.0' in text
    service.drain()
    text = call(service.app, "GET", "/metrics").text
    assert 'recoverkit_forwarded_total{endpoint="payments"} 1.0' in text
    assert 'recoverkit_queue_rows{queue="outbox",state="sent"} 1.0' in text


def test_migrations_match_the_table_definitions(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from recoverkit.store import metadata

    engine = make_engine(f"sqlite:///{tmp_path / 'diff.db'}")
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
