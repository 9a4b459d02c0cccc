"""Fixtures for the service tests: a migrated SQLite store, the fake PSP service, PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

sys.path.insert(0, str(Path(__file__).parent))

from service_support import PG_ADMIN_URL, FakeRecover, Service, build_service, make_settings

from recoverkit.store import make_engine, upgrade


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = make_engine(f"sqlite:///{tmp_path / 'rk.db'}")
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def service(tmp_path: Path, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    monkeypatch.setenv("RECOVERKIT_RETRY_STATUS__API_KEY", "merchant-key")
    monkeypatch.setenv("RECOVERKIT_RETRY_RESULTS__API_KEY", "merchant-key")
    monkeypatch.setenv("RECOVERKIT_END_OF_DUNNING__USERNAME", "butter")
    monkeypatch.setenv("RECOVERKIT_END_OF_DUNNING__PASSWORD", "s3cret")
    monkeypatch.setenv("RECOVERKIT_BUTTER_SIGNING_SECRETS", '["example_signing_secret"]')
    settings = make_settings(tmp_path)
    svc = build_service(settings, engine, FakeRecover())
    yield svc
    svc.worker.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database with a unique name, dropped afterwards."""
    import uuid

    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server reachable at 127.0.0.1:5432: {exc}")
    name = f"rk_test_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
