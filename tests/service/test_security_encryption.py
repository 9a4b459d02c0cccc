"""Issue 11 item 4: optional encryption at rest of stored payloads, and key rotation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from cryptography.fernet import Fernet
from fake_provider import charge_event, signed
from service_support import Service, call
from sqlalchemy import select
from typer.testing import CliRunner

from recoverkit.errors import ConfigurationError
from recoverkit.service import retention
from recoverkit.service.commands import add_service_commands
from recoverkit.store import crypto, make_engine, repo, upgrade
from recoverkit.store.tables import inbox

OLD = Fernet.generate_key().decode()
NEW = Fernet.generate_key().decode()


@pytest.fixture(autouse=True)
def keys() -> Iterator[None]:
    crypto.configure([OLD])
    yield
    crypto.configure([])  # process-wide: never leak into other tests


def _post(svc: Service, event: dict[str, object]) -> None:
    raw, headers = signed(event)
    assert call(svc.app, "POST", "/webhooks/fake", content=raw, headers=headers).status_code == 200


def _stored(svc: Service) -> list[str]:
    with svc.engine.connect() as conn:
        return list(conn.execute(select(inbox.c.data).order_by(inbox.c.id)).scalars())


def test_payloads_are_encrypted_and_the_pipeline_still_works(
    service: Service, tmp_path: Path
) -> None:
    _post(service, charge_event("evt_1", note="jane@example.com"))
    [stored] = _stored(service)
    assert stored.startswith(crypto.PREFIX)
    assert "jane@example.com" not in stored
    service.drain()
    assert len(service.recover.accepted) == 1
    service.engine.dispose()
    assert b"jane@example.com" not in b"".join(p.read_bytes() for p in tmp_path.glob("rk.db*"))


def test_forget_finds_the_customer_in_encrypted_payloads(service: Service) -> None:
    _post(service, charge_event("evt_1"))
    service.drain()
    counts = retention.forget(service.engine, "cus_1", datetime.now(UTC))
    assert counts["inbox payloads dropped"] == 1
    assert (
        retention.forget(service.engine, "cus_2", datetime.now(UTC))["ledger rows anonymised"] == 0
    )


def test_rotation_re_encrypts_with_the_new_key_and_plain_rows_too(service: Service) -> None:
    crypto.configure([])
    _post(service, charge_event("evt_plain"))  # written before encryption was switched on
    crypto.configure([OLD])
    _post(service, charge_event("evt_old"))
    plain, old = _stored(service)
    assert not plain.startswith(crypto.PREFIX)
    assert old.startswith(crypto.PREFIX)
    crypto.configure([NEW, OLD])
    assert retention.rotate_keys(service.engine, batch=1) == 2
    crypto.configure([NEW])  # the old key is gone: everything still reads
    with service.engine.connect() as conn:
        rows = conn.execute(select(inbox)).all()
    assert {repo.event_from_row(r).dedupe_key for r in rows} == {"evt_plain", "evt_old"}
    assert all(d.startswith(crypto.PREFIX) for d in _stored(service))


def test_wrong_or_missing_keys_are_configuration_errors(service: Service) -> None:
    _post(service, charge_event("evt_1"))
    [stored] = _stored(service)
    crypto.configure([NEW])
    with pytest.raises(ConfigurationError, match="cannot be decrypted"):
        crypto.decrypt(stored)
    crypto.configure([])
    with pytest.raises(ConfigurationError, match="no payload_encryption_keys"):
        crypto.decrypt(stored)
    with pytest.raises(ConfigurationError, match="Fernet key"):
        crypto.configure(["not-a-key"])


def test_rotate_keys_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERKIT_LOAD_PLUGINS", "")
    db = tmp_path / "cli.db"
    config = tmp_path / "recoverkit.toml"
    config.write_text(f'database_url = "sqlite:///{db}"\n')
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    crypto.configure([])
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            inbox.insert(),
            {
                "provider": "fake",
                "dedupe_key": "evt_1",
                "event_type": "charge.failed",
                "occurred_at": now,
                "received_at": now,
                "data": json.dumps({"customer": "cus_1"}),
                "state": "done",
                "attempts": 1,
                "next_attempt_at": now,
            },
        )
    app = typer.Typer()
    add_service_commands(app)
    result = CliRunner().invoke(app, ["rotate-keys", "-c", str(config)])
    assert result.exit_code == 2
    assert "payload_encryption_keys" in result.output
    result = CliRunner().invoke(app, ["rotate-keys", "--new-key"])
    assert result.exit_code == 0
    Fernet(result.output.strip().encode())  # a usable key
    monkeypatch.setenv("RECOVERKIT_PAYLOAD_ENCRYPTION_KEYS", json.dumps([NEW]))
    result = CliRunner().invoke(app, ["rotate-keys", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert "1 payload(s) re-encrypted" in result.output
    with engine.connect() as conn:
        assert conn.execute(select(inbox.c.data)).scalar_one().startswith(crypto.PREFIX)
