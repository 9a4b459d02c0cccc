"""Chaos soak of the bridge (issue 12 item 9): kill -9s, Recover outages and 5xx, PSP redelivery.

Not a unit test and not a speed ratio: it runs real server processes on loopback, signed webhooks
through them while a chaos loop ``kill -9``s a random process and restarts it, the Recover
stand-in goes down twice and answers 500 at random, and every webhook not acknowledged is
delivered again (as a PSP would). At the end it waits for the backlog to drain and prints:

    acknowledged, forwarded, lost (acked but never forwarded), duplicates forwarded (and how many
    of them carried an Idempotency-Key seen before), dead letters, p99 ack latency, requests to
    Recover by status, and the time to drain after the last fault.

Topologies: ``--db sqlite`` (one process: receiver + worker) and ``--db postgresql`` (two
receivers ``--no-worker`` and two ``--worker-only`` processes on a fresh, uniquely named database
dropped afterwards). Webhooks come from the service tests' fake PSP (``tests/service``): the soak
exercises the bridge's inbox/outbox/lease/breaker machinery, not the plugins' translation.

Sizes: the default is quick (2,000 webhooks spread over 40 s, kills every 3-6 s, two 5 s outages:
about a minute); ``--full`` is the issue's soak (100,000 webhooks over 30 minutes, kills every
10-30 s, two 30 s outages). Faults stop after that duration and the backlog drains. It stops by
itself; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests" / "service"
sys.path.insert(0, str(TESTS))

from fake_provider import charge_event, signed  # noqa: E402
from service_standin import RecoverStandIn, free_port  # noqa: E402
from sqlalchemy import func, select  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import JSONResponse  # noqa: E402

from recoverkit.store import make_engine, outbox, upgrade  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


class ChaoticRecover(RecoverStandIn):
    """The stand-in, answering 500 to a share of calls at random."""

    def __init__(self, error_rate: float) -> None:
        super().__init__()
        self.error_rate = error_rate
        self.rng = random.Random(7)

    async def _accept(self, request: Request) -> JSONResponse:
        if self.status == 200 and self.rng.random() < self.error_rate:
            await request.body()
            with self._lock:
                self.calls[500] += 1
            return JSONResponse({"message": "random failure"}, status_code=500)
        return await super()._accept(request)


class Fleet:
    """The server processes: start, kill -9, restart."""

    def __init__(self, db_url: str, recover_url: str, pg: bool, logs: Path) -> None:
        self.db_url, self.recover_url, self.logs = db_url, recover_url, logs
        if pg:
            self.roles = ["receiver", "receiver", "worker", "worker"]
        else:
            self.roles = ["both"]
        self.ports = [free_port() if role != "worker" else 0 for role in self.roles]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * len(self.roles)
        self.lock = threading.Lock()
        self.kills = 0

    def _env(self) -> dict[str, str]:
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("RECOVERKIT_")},
            "PYTHONPATH": str(TESTS),
            "RECOVERKIT_LOAD_PLUGINS": "",
            "RECOVERKIT_DATABASE_URL": self.db_url,
            "RECOVERKIT_RECOVER_BASE_URL": self.recover_url,
            "RECOVERKIT_RECOVER_API_KEY": "soak-key",
            "RECOVERKIT_WORKER_POLL_INTERVAL": "0.1",
            "RECOVERKIT_OUTBOX_BACKOFF_BASE": "0.5",
            "RECOVERKIT_OUTBOX_BACKOFF_CAP": "5",
            "RECOVERKIT_LOG_LEVEL": "WARNING",
        }

    def start(self, i: int) -> None:
        role, port = self.roles[i], self.ports[i]
        cmd = [sys.executable, "-m", "recoverkit.service", "--plugin", "fake_provider:plugin"]
        if role == "worker":
            cmd.append("--worker-only")
        else:
            cmd += ["--port", str(port)] + (["--no-worker"] if role == "receiver" else [])
        with (self.logs / f"{role}-{i}.log").open("ab") as out:
            proc = subprocess.Popen(cmd, env=self._env(), stdout=out, stderr=subprocess.STDOUT)
        with self.lock:
            self.procs[i] = proc
        if role == "worker":
            return
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        raise SystemExit(f"process {i} ({role}) did not start; see {self.logs}")

    def kill_and_restart(self, i: int) -> None:
        with self.lock:
            proc = self.procs[i]
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            self.kills += 1
        self.start(i)

    def receiver_ports(self) -> list[int]:
        return [p for role, p in zip(self.roles, self.ports, strict=True) if role != "worker"]

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def soak(args: argparse.Namespace, db_url: str, logs: Path) -> dict[str, Any]:
    engine = make_engine(db_url)
    upgrade(engine)
    recover = ChaoticRecover(args.error_rate)
    acked: dict[str, float] = {}
    latencies: list[float] = []
    todo: queue.Queue[int] = queue.Queue()
    for n in range(args.webhooks):
        todo.put(n)
    done = threading.Event()
    last_fault = [time.monotonic()]
    with recover:
        fleet = Fleet(db_url, recover.base_url, args.db == "postgresql", logs)
        for i in range(len(fleet.roles)):
            fleet.start(i)
        started = time.monotonic()

        rate = args.webhooks / args.duration  # spread over the faults, not all in one burst

        def sender() -> None:
            rng = random.Random()
            with httpx.Client(timeout=10) as client:
                while True:
                    try:
                        n = todo.get(timeout=0.2)
                    except queue.Empty:
                        if len(acked) >= args.webhooks:
                            return
                        continue
                    wait = started + n / rate - time.monotonic()
                    if wait > 0:
                        time.sleep(wait)
                    raw, headers = signed(charge_event(f"evt_{n}", invoice=f"inv_{n}"))
                    port = rng.choice(fleet.receiver_ports())
                    t0 = time.monotonic()
                    try:
                        r = client.post(
                            f"http://127.0.0.1:{port}/webhooks/fake", content=raw, headers=headers
                        )
                        ok = r.status_code == 200
                    except httpx.TransportError:
                        ok = False
                    if ok:
                        latencies.append(time.monotonic() - t0)
                        acked.setdefault(f"inv_{n}", time.monotonic())
                    else:
                        todo.put(n)  # not acknowledged: the PSP delivers it again
                        time.sleep(0.05)

        def chaos() -> None:
            rng = random.Random(11)
            while not done.wait(rng.uniform(*args.kill_every)):
                if time.monotonic() - started > args.duration:
                    return  # the faults stop; the backlog drains
                fleet.kill_and_restart(rng.randrange(len(fleet.roles)))
                last_fault[0] = time.monotonic()

        def outages() -> None:
            for at in args.outage_at:
                if done.wait(max(0.0, started + at - time.monotonic())):
                    return
                recover.status = 503
                time.sleep(args.outage)
                recover.status = 200
                last_fault[0] = time.monotonic()

        senders = [threading.Thread(target=sender) for _ in range(args.senders)]
        helpers = [threading.Thread(target=chaos), threading.Thread(target=outages)]
        for t in senders + helpers:
            t.start()
        for t in senders:
            t.join()
        for t in helpers:  # the faults stop after --duration
            t.join()
        done.set()
        print(f"all {len(acked)} webhooks acknowledged after {time.monotonic() - started:.1f} s")
        deadline = time.monotonic() + args.drain_timeout
        while set(acked) - set(recover.invoices) and time.monotonic() < deadline:
            time.sleep(0.1)
        drained = time.monotonic() - last_fault[0]
        fleet.stop()
        kills = fleet.kills
    with engine.connect() as conn:
        dead = conn.execute(
            select(func.count()).select_from(outbox).where(outbox.c.state == "dead")
        ).scalar()
    engine.dispose()
    lost = set(acked) - set(recover.invoices)
    return {
        "acknowledged": len(acked),
        "forwarded": len(recover.invoices),
        "lost": len(lost),
        "duplicates": sum(n - 1 for n in recover.invoices.values()),
        "repeated_keys": sum(n - 1 for n in recover.idempotency_keys.values()),
        "dead_letters": int(dead or 0),
        "p99_ack_ms": 1000 * statistics.quantiles(latencies, n=100)[98] if latencies else 0.0,
        "calls": dict(sorted(recover.calls.items())),
        "kills": kills,
        "drain_after_last_fault_s": drained if not lost else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--full", action="store_true", help="the issue's size (hours)")
    parser.add_argument("--webhooks", type=int, default=None)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--error-rate", type=float, default=0.05)
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    args = parser.parse_args()
    if args.full:
        args.webhooks = args.webhooks or 100_000
        args.kill_every, args.outage, args.outage_at = (10.0, 30.0), 30.0, (60.0, 300.0)
        args.duration = 1800.0
    else:
        args.webhooks = args.webhooks or 2_000
        args.kill_every, args.outage, args.outage_at = (3.0, 6.0), 5.0, (8.0, 24.0)
        args.duration = 40.0
    with tempfile.TemporaryDirectory(prefix="recoverkit-soak-") as folder:
        logs = Path(folder)
        if args.db == "sqlite":
            result = soak(args, f"sqlite:///{logs / 'soak.db'}", logs)
        else:
            import psycopg

            name = f"rk_soak_{uuid.uuid4().hex[:12]}"
            with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                admin.execute(f'CREATE DATABASE "{name}"')
            try:
                result = soak(args, f"postgresql://postgres@127.0.0.1:5432/{name}", logs)
            finally:
                with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
                    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(f"soak on {args.db}: {args.webhooks} webhooks, {result['kills']} kill -9s, 2 outages")
    for key, value in result.items():
        print(f"  {key}: {value:.1f}" if isinstance(value, float) else f"  {key}: {value}")
    ok = result["lost"] == 0
    print("verdict: " + ("0 lost" if ok else f"{result['lost']} LOST"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
