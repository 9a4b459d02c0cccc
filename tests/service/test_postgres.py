"""PostgreSQL: the same store and service unchanged; two workers never process the same row."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fake_provider import charge_event, signed
from service_support import API_KEY, FakeRecover, build_service, call, make_settings

from recoverkit.client import RecoverClient
from recoverkit.service import Worker
from recoverkit.service.runtime import ProviderRegistry
from recoverkit.store import is_current, make_engine, outbox, repo, upgrade


def test_migrations_and_pipeline_work_on_postgres(pg_url: str, tmp_path: Path) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    assert is_current(engine)
    svc = build_service(make_settings(tmp_path, database_url=pg_url), engine, FakeRecover())
    raw, headers = signed(charge_event("evt_1"))
    for _ in range(2):
        assert (
            call(svc.app, "POST", "/webhooks/fake", content=raw, headers=headers).status_code == 200
        )
    deliver_late, late_headers = signed(
        charge_event("evt_0", charge="ch_old", created=1_000_000_000)
    )
    call(svc.app, "POST", "/webhooks/fake", content=deliver_late, headers=late_headers)
    svc.drain()
    assert len(svc.recover.accepted) == 2
    assert repo.get_ledger(engine, "inv_1").psp_transaction_id == "ch_evt_1"  # type: ignore[union-attr]
    svc.worker.close()
    engine.dispose()


def test_two_workers_never_claim_the_same_row(pg_url: str) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        repo.enqueue_outbox(
            conn,
            [repo.OutboxMessage("fake", "payments", f"k{n}", "{}") for n in range(600)],
            now,
        )
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def claim_all(worker: str) -> None:
        start.wait()
        while rows := repo.claim(engine, outbox, worker, now=now, lease=3600, limit=7):
            claimed[worker] += [r.id for r in rows]

    threads = [threading.Thread(target=claim_all, args=(w,)) for w in claimed]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    a, b = set(claimed["a"]), set(claimed["b"])
    assert not a & b
    assert len(a) + len(b) == len(claimed["a"]) + len(claimed["b"]) == 600
    print(f"worker a claimed {len(a)} rows, worker b {len(b)}")
    engine.dispose()


def test_a_claim_skips_rows_another_transaction_has_locked(pg_url: str) -> None:
    # Deterministic proof of SKIP LOCKED: A's claim is still uncommitted when B claims.
    engine = make_engine(pg_url)
    upgrade(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        repo.enqueue_outbox(
            conn, [repo.OutboxMessage("f", "payments", f"k{n}", "{}") for n in range(10)], now
        )
    stmt_a = repo.claim_statement(outbox, "a", now=now, lease=60, limit=4)
    with engine.connect() as conn_a, conn_a.begin():
        ids_a = {r.id for r in conn_a.execute(stmt_a)}
        ids_b = {r.id for r in repo.claim(engine, outbox, "b", now=now, lease=60, limit=4)}
        assert len(ids_a) == len(ids_b) == 4
        assert not ids_a & ids_b
    # Once A commits, its rows stay leased to A: a third worker gets only the remaining two.
    rest = {r.id for r in repo.claim(engine, outbox, "c", now=now, lease=60, limit=10)}
    assert len(rest) == 2
    assert not rest & (ids_a | ids_b)
    engine.dispose()


def test_two_workers_forward_each_message_exactly_once(pg_url: str, tmp_path: Path) -> None:
    engine = make_engine(pg_url)
    upgrade(engine)
    settings = make_settings(tmp_path, database_url=pg_url, worker_batch_size=10)
    seen: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        with lock:
            seen[request.content.decode()] += 1
        time.sleep(0.001)
        return httpx.Response(200, json={"message": "ok", "request_id": "r"})

    now = datetime.now(UTC)
    with engine.begin() as conn:
        repo.enqueue_outbox(
            conn,
            [repo.OutboxMessage("fake", "payments", f"k{n}", f'{{"n":{n}}}') for n in range(300)],
            now,
        )
    from recoverkit import Plugins

    plugins = Plugins(load_entry_points=False)
    workers = [
        Worker(
            settings=settings,
            plugins=plugins,
            engine=engine,
            providers=ProviderRegistry(settings, plugins),
            client=RecoverClient(api_key=API_KEY, transport=httpx.MockTransport(handler)),
            worker_id=name,
        )
        for name in ("w1", "w2")
    ]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run, args=(stop,)) for w in workers]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while sum(seen.values()) < 300 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # would any row be sent a second time?
    stop.set()
    for t in threads:
        t.join(30)
    for w in workers:
        w.close()
    assert len(seen) == 300
    assert set(seen.values()) == {1}
    senders = Counter(r.claimed_by for r in repo.list_outbox(engine, limit=1000))
    assert senders == Counter({None: 300})  # every claim was released after its result
    engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_claim_leases_are_exclusive_on_sqlite_too(backend: str, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        repo.enqueue_outbox(
            conn, [repo.OutboxMessage("f", "payments", f"k{n}", "{}") for n in range(50)], now
        )
    first = repo.claim(engine, outbox, "a", now=now, lease=60, limit=30)
    second = repo.claim(engine, outbox, "b", now=now, lease=60, limit=30)
    assert len(first) == 30
    assert len(second) == 20
    assert not {r.id for r in first} & {r.id for r in second}
    later = datetime.fromtimestamp(now.timestamp() + 61, UTC)  # leases expired: reclaimable
    assert len(repo.claim(engine, outbox, "c", now=later, lease=60, limit=100)) == 50


def test_migrations_match_the_table_definitions_on_postgres(pg_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from recoverkit.store import metadata

    engine = make_engine(pg_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    engine.dispose()
