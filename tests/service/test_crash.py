"""kill -9 of a real server process in the middle of a burst: every acknowledged webhook is
forwarded to Recover after a restart (SQLite and PostgreSQL), and the rows the dead process had
claimed come back within one short lease (``worker_lease_seconds``, renewed by a heartbeat while
the process lived), not after a long fixed timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fake_provider import charge_event, signed
from service_standin import RecoverStandIn, free_port
from sqlalchemy import Engine, func, select

from recoverkit.config import Settings
from recoverkit.store import inbox, make_engine, outbox, upgrade

HERE = Path(__file__).parent


def start_server(db_url: str, recover_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RECOVERKIT_")},
        "PYTHONPATH": str(HERE),
        "RECOVERKIT_LOAD_PLUGINS": "",
        "RECOVERKIT_DATABASE_URL": db_url,
        "RECOVERKIT_RECOVER_BASE_URL": recover_url,
        "RECOVERKIT_RECOVER_API_KEY": "k",
        "RECOVERKIT_WORKER_POLL_INTERVAL": "0.1",
        "RECOVERKIT_OUTBOX_BACKOFF_BASE": "0.1",
        "RECOVERKIT_OUTBOX_BACKOFF_CAP": "0.5",
    }
    cmd = [sys.executable, "-m", "recoverkit.service", "--port", str(port)]
    cmd += ["--plugin", "fake_provider:plugin"]
    with log.open("ab") as out:  # the child keeps its own descriptor
        process = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, f"server exited: {log.read_text()[-2000:]}"
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.1)


def burst(port: int, total: int, acked: list[str], stop: threading.Event) -> None:
    """Post ``total`` distinct webhooks from 4 threads; record the invoices that got a 2xx."""
    lock = threading.Lock()
    counter = iter(range(total))

    def sender() -> None:
        with httpx.Client(timeout=10) as client:
            for n in counter:
                if stop.is_set():
                    return
                raw, headers = signed(charge_event(f"evt_{n}", invoice=f"inv_{n}"))
                try:
                    r = client.post(
                        f"http://127.0.0.1:{port}/webhooks/fake", content=raw, headers=headers
                    )
                except httpx.TransportError:
                    continue  # the server died: not acknowledged, the PSP would redeliver
                if r.status_code == 200:
                    with lock:
                        acked.append(f"inv_{n}")

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)


def latest_lease(engine: Engine) -> datetime | None:
    """The latest ``claimed_until`` among rows still claimed (the dead process's leases)."""
    with engine.connect() as conn:
        ends = [conn.execute(select(func.max(t.c.claimed_until))).scalar() for t in (inbox, outbox)]
    found = [e for e in ends if e is not None]
    return max(found) if found else None


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'crash.db'}"


@pytest.mark.parametrize("db", ["sqlite", "postgresql"])
def test_kill_9_mid_burst_loses_no_acknowledged_webhook(
    db: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "pg_url")
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    log = tmp_path / "server.log"
    with RecoverStandIn(delay=0.2) as recover:  # slower than the burst: rows are in flight
        port = free_port()
        server = start_server(url, recover.base_url, port, log)
        acked: list[str] = []
        stop = threading.Event()
        sender = threading.Thread(target=burst, args=(port, 600, acked, stop))
        sender.start()
        deadline = time.monotonic() + 60
        while len(acked) < 120:  # kill once a good part of the burst is in
            assert time.monotonic() < deadline, f"burst too slow: {len(acked)} acked"
            time.sleep(0.005)
        server.send_signal(signal.SIGKILL)
        server.wait(30)
        killed_at = datetime.now(UTC)
        stop.set()
        sender.join(60)
        acked_at_kill = set(acked)
        assert 120 <= len(acked_at_kill) < 600, "the kill should land mid-burst"
        # The dead process's claims end within one default lease of the kill: a heartbeat kept
        # them short while it lived. (The old fixed lease was 120 s.)
        lease = Settings.model_fields["worker_lease_seconds"].default
        engine = make_engine(url)
        held_until = latest_lease(engine)
        engine.dispose()
        assert held_until is not None, "the kill should land while rows are claimed"
        assert held_until <= killed_at + timedelta(seconds=lease), (held_until, killed_at)
        server = start_server(url, recover.base_url, port, log)
        restarted = time.monotonic()
        try:
            deadline = time.monotonic() + 90
            while not acked_at_kill <= set(recover.invoices):
                assert time.monotonic() < deadline, (
                    f"{len(acked_at_kill - set(recover.invoices))} acknowledged webhooks "
                    "never reached Recover"
                )
                time.sleep(0.1)
            drained = time.monotonic() - restarted
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    # Resends after a crash are allowed (at-least-once); report how many there were.
    resent = sum(n - 1 for n in recover.invoices.values())
    print(
        f"{db}: {len(acked_at_kill)} acknowledged before kill -9, all forwarded {drained:.1f} s "
        f"after the restart (lease {lease} s, claims held until "
        f"{(held_until - killed_at).total_seconds():.1f} s after the kill); {resent} resent"
    )
