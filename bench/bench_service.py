"""Benchmark of the bridge service on loopback with the real Stripe plugin and default settings.

Real uvicorn servers in child processes; the load generator is a minimal asyncio HTTP/1.1
keep-alive client (httpx would be the bottleneck). Every webhook is a distinct, signed
``invoice.payment_failed`` (the ~3.5 KB event of ``bench/data``, one invoice, charge and
PaymentIntent per webhook), verified by the Stripe SDK and translated by ``recoverkit_stripe``.
The facts a webhook lacks (the invoice's payments, the PaymentIntent, the charge, the
subscription) are answered from memory by a stand-in for Stripe's API that fills the plugin's
own fact cache, so the plugin runs its cached-enrichment path and no request leaves the machine.
Only the bench's provider subclass differs from the shipped one: it swaps that cache.

Per database (SQLite file, and PostgreSQL unless ``--no-postgres``), in interleaved rounds:

1. ingest / bare at 16 and 64 connections: signed webhooks acknowledged per second by the
   receiver (verify + parse + inbox INSERT + COMMIT) over a bare endpoint on the same stack
   (uvicorn + Starlette, 200 "ok"); target >= 0.40 at both;
2. p99 ack latency at a fixed 300 requests/s (from each request's scheduled time, so queueing
   is counted); target <= 50 ms;
3. forwarding end to end: webhooks in -> translated -> sent to a loopback Recover stub -> marked
   sent, by one ``python -m recoverkit.service`` with default settings (receiver and worker);
   target >= 2,000 messages/s.

Then growth on SQLite (``--growth-events``, default 100,000, fed at 16 connections end to end):
the forwarding rate of the last 10 % of the events against the first 10 %; target within 10 %
(ratio >= 0.90). ``scaling`` (PostgreSQL, not run by default): ingest with 1, 2 and 4 receiver
processes at 64 connections, for reference. ``--parts`` picks what runs (default
``ingest,forwarding,growth``).

    .venv/bin/python bench/bench_service.py [--rounds 3] [--seconds 3] [--no-postgres]
        [--parts ingest,forwarding,growth,scaling] [--growth-events 100000]
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from _harness import Ratio, arguments, ratio
from recoverkit_stripe import StripeProvider
from recoverkit_stripe.facts import LruCache

from recoverkit import hookimpl
from recoverkit.provider import Provider

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EVENT = HERE / "data" / "stripe_invoice.payment_failed.json"
OBJECTS = ROOT / "plugins" / "recoverkit-stripe" / "tests" / "fixtures" / "objects.json"
SECRET = "whsec_bench_only"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

# Each webhook n names its own objects: the demo ids with their suffix replaced.
_IDS = {"RKdemo01": "B", "RKfail01": "F", "RKok01": "K"}
_N = "#N#"


# -- the provider under test: the real Stripe plugin, its fact cache filled from memory -----------


def _templates() -> dict[tuple[str, str], str]:
    """JSON text of each demo object, by (kind, generic id), with ``#N#`` where n goes."""
    objects = json.loads(OBJECTS.read_text())
    out = {}
    for kind, items in objects.items():
        for item in items:
            text = json.dumps(item)
            generic = item["id"]
            for demo, letter in _IDS.items():
                text = text.replace(demo, letter + _N)
                generic = generic.replace(demo, letter + _N)
            out[kind, generic] = text
    return out


class StripeApiFromMemory(LruCache):
    """The plugin's own LRU fact cache, which on a miss builds the object Stripe's API would
    return for webhook n from the demo objects (no network; costs about what parsing the API's
    answer would)."""

    _pattern = re.compile(r"^(.*_)([BFK])(\d+)$")

    def __init__(self, maxsize: int) -> None:
        super().__init__(maxsize)
        self._templates = _templates()

    def get(self, key: tuple[str, ...]) -> tuple[Any, float] | None:
        found = super().get(key)
        if found is not None:
            return found
        kind, object_id = key
        match = self._pattern.match(object_id)
        if match is None:
            return None
        prefix, letter, n = match.groups()
        text = self._templates.get((kind, f"{prefix}{letter}{_N}"))
        if text is None:
            return None
        value = json.loads(text.replace(_N, n))
        self.put(key, value, float("inf"))
        return value, float("inf")


class BenchStripeProvider(StripeProvider):
    """The shipped :class:`StripeProvider`; only its fact cache is the in-memory stand-in."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache = StripeApiFromMemory(self.config.cache_size)


class _Plugin:
    @hookimpl
    def register_providers(self, register: Callable[[type[Provider]], None]) -> None:
        register(BenchStripeProvider)


plugin = _Plugin()


# -- the webhooks --------------------------------------------------------------------------------

_EVENT_TEXT = EVENT.read_text().strip()
for _demo, _letter in _IDS.items():
    _EVENT_TEXT = _EVENT_TEXT.replace(_demo, _letter + _N)
_EVENT_TEXT = _EVENT_TEXT.replace("evt_RKbasil_ipf", "evt_bench_" + _N)


def signed_request(port: int, n: int, *, path: str = "/webhooks/stripe") -> bytes:
    """Webhook n as raw HTTP/1.1: its own event, invoice, charge; signed as Stripe signs."""
    body = _EVENT_TEXT.replace(_N, str(n)).encode()
    stamp = str(int(time.time()))
    sig = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json; charset=utf-8\r\n"
        f"Stripe-Signature: t={stamp},v1={sig}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# -- servers -------------------------------------------------------------------------------------


def _simple_app(handler_path: str, body: bytes) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: Request) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route(handler_path, endpoint, methods=["POST"])])


def serve_simple(kind: str, port: int) -> None:
    """Child process: the bare endpoint, or the Recover stub."""
    import uvicorn

    if kind == "bare":
        app = _simple_app("/webhooks/{provider}", b"ok")
    else:
        app = _simple_app(
            "/recover/{endpoint}",
            b'{"message":"Request submitted for processing","request_id":"r"}',
        )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("server did not start")


class Servers:
    """Child processes, all stopped on exit."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log, self.procs = env, log, list[subprocess.Popen[bytes]]()

    def spawn(self, args: list[str], port: int | None = None) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, *args], env=self.env, stdout=out, stderr=out, cwd=HERE
            )
        self.procs.append(proc)
        if port is not None:
            wait_port(port, proc)
        return proc

    def simple(self, kind: str) -> int:
        port = free_port()
        self.spawn([str(HERE / "bench_service.py"), "--serve", kind, "--port", str(port)], port)
        return port

    def service(self, *flags: str) -> int:
        port = free_port()
        args = ["-m", "recoverkit.service", *flags, "--plugin", "bench_service:plugin"]
        self.spawn([*args, "--port", str(port)], port)
        return port

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        self.procs.remove(proc)

    def close(self) -> None:
        for proc in list(self.procs):
            self.stop(proc)


# -- load generator ------------------------------------------------------------------------------


class Conn:
    """One keep-alive HTTP/1.1 connection; ``request`` returns the status code."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


class Numbers:
    """Distinct webhook numbers across the whole run (a repeat would be a duplicate)."""

    def __init__(self) -> None:
        self._next = 0

    def take(self) -> int:
        self._next += 1
        return self._next


async def closed_loop(
    ports: list[int], seconds: float | None, conns: int, numbers: Numbers, count: int = 0
) -> tuple[int, int, float]:
    """``conns`` connections (spread over ``ports``) sending back to back, for ``seconds`` or
    until ``count`` webhooks are sent: (ok, errors, elapsed)."""
    ok = errors = 0
    start = time.perf_counter()
    deadline = start + seconds if seconds else float("inf")

    async def run(port: int) -> None:
        nonlocal ok, errors
        conn = await Conn.open(port)
        while time.perf_counter() < deadline and (not count or ok + errors < count):
            if await conn.request(signed_request(port, numbers.take())) == 200:
                ok += 1
            else:
                errors += 1
        conn.close()

    await asyncio.gather(*[run(ports[i % len(ports)]) for i in range(conns)])
    return ok, errors, time.perf_counter() - start


async def open_loop(port: int, rate: float, seconds: float, numbers: Numbers) -> list[float]:
    """Requests at a fixed rate; latency from each request's scheduled time (ms)."""
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(32):
        pool.put_nowait(await Conn.open(port))
    latencies: list[float] = []
    start = time.perf_counter() + 0.1
    total = int(rate * seconds)

    async def one(i: int) -> None:
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        conn = await pool.get()
        status = await conn.request(signed_request(port, numbers.take()))
        latencies.append((time.perf_counter() - scheduled) * 1000)
        pool.put_nowait(conn)
        if status != 200:
            raise RuntimeError(f"ack latency run: HTTP {status}")

    await asyncio.gather(*[one(i) for i in range(total)])
    while not pool.empty():
        pool.get_nowait().close()
    return sorted(latencies)


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


# -- databases -----------------------------------------------------------------------------------


@contextmanager
def database(kind: str, tmp: Path, name: str) -> Iterator[str]:
    """A fresh, migrated database URL, dropped afterwards."""
    from recoverkit.store import make_engine, upgrade

    if kind == "sqlite":
        url = f"sqlite:///{tmp / (name + '.db')}"
    else:
        import psycopg

        db = f"rk_bench_{os.getpid()}_{name}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
            conn.execute(f'CREATE DATABASE "{db}"')
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        if kind == "postgresql":
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn, suppress(Exception):
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def sent_count(url: str) -> int:
    from sqlalchemy import func, select

    from recoverkit.store import make_engine
    from recoverkit.store.tables import outbox

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.state == "sent")
                ).scalar_one()
            )
    finally:
        engine.dispose()


# -- the measures --------------------------------------------------------------------------------


def base_env(recover_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERKIT_")}
    env.update(
        PYTHONPATH=os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]),
        RECOVERKIT_LOAD_PLUGINS="",
        RECOVERKIT_RECOVER_BASE_URL=f"http://127.0.0.1:{recover_port}/recover",
        RECOVERKIT_RECOVER_API_KEY="bench",
        RECOVERKIT_STRIPE_WEBHOOK_SECRETS=SECRET,
        RECOVERKIT_STRIPE_API_KEY="sk_test_bench_unused",
    )
    return env


def ingest_and_latency(
    servers: Servers, bare: int, url: str, args: Any, numbers: Numbers, label: str
) -> list[Ratio]:
    servers.env["RECOVERKIT_DATABASE_URL"] = url
    rk = servers.service("--no-worker")
    rates: dict[tuple[str, int], list[float]] = {}
    p99s: list[float] = []
    for index in range(args.rounds):
        for conns in (16, 64):
            order = [("bare", bare), ("ingest", rk)]
            for name, port in order if index % 2 == 0 else order[::-1]:
                ok, errors, took = asyncio.run(closed_loop([port], args.seconds, conns, numbers))
                if errors:
                    raise RuntimeError(f"{name}: {errors} requests failed")
                rates.setdefault((name, conns), []).append(ok / took)
        lat = asyncio.run(open_loop(rk, 300, args.seconds, numbers))
        p99s.append(percentile(lat, 0.99))
    for (name, conns), values in sorted(rates.items()):
        print(
            f"  {label} {name:<6} {conns:>2} conns: median {sorted(values)[len(values) // 2]:7.0f}"
            f" req/s  (min {min(values):.0f}, max {max(values):.0f})"
        )
    return [
        ratio(
            f"ingest/bare {label} 16 conns",
            rates["ingest", 16],
            rates["bare", 16],
            target=0.40,
            unit="",
        ),
        ratio(
            f"ingest/bare {label} 64 conns",
            rates["ingest", 64],
            rates["bare", 64],
            target=0.40,
            unit="",
        ),
        ratio(f"p99 ack ms at 300 rps {label}", p99s, target=50, unit="", higher_is_better=False),
    ]


def forwarding(
    servers: Servers, tmp: Path, db: str, args: Any, numbers: Numbers, label: str
) -> Ratio:
    """End to end through one default service: N webhooks in, until all N are marked sent."""
    rates = []
    for index in range(args.rounds):
        with database(db, tmp, f"fwd{index}") as url:
            servers.env["RECOVERKIT_DATABASE_URL"] = url
            rk = servers.service()
            proc = servers.procs[-1]
            start = time.perf_counter()
            ok, errors, _ = asyncio.run(
                closed_loop([rk], None, 16, numbers, count=args.forward_events)
            )
            if errors:
                raise RuntimeError(f"forwarding: {errors} webhooks refused")
            deadline = start + 600
            while (sent := sent_count(url)) < ok and time.perf_counter() < deadline:
                time.sleep(0.1)
            took = time.perf_counter() - start
            servers.stop(proc)
            if sent < ok:
                raise RuntimeError(f"forwarding: only {sent} of {ok} sent in {took:.0f} s")
            rates.append(ok / took)
            print(f"  {label} forwarding round {index + 1}: {ok} in {took:.1f} s")
    return ratio(f"forwarding msg/s {label}", rates, target=2000, unit="")


def growth(servers: Servers, tmp: Path, args: Any, numbers: Numbers) -> Ratio:
    """End-to-end rate of the last tenth of ``--growth-events`` over the first tenth."""
    total, chunk = args.growth_events, args.growth_events // 10
    with database("sqlite", tmp, "growth") as url:
        servers.env["RECOVERKIT_DATABASE_URL"] = url
        rk = servers.service()
        marks: list[float] = []
        start = time.perf_counter()

        async def feed() -> None:
            loop = asyncio.get_running_loop()
            sender = asyncio.ensure_future(closed_loop([rk], None, 16, numbers, count=total))
            next_mark = chunk
            while len(marks) < 10:
                sent = await loop.run_in_executor(None, sent_count, url)
                while sent >= next_mark and len(marks) < 10:
                    marks.append(time.perf_counter() - start)
                    next_mark += chunk
                if sender.done() and sender.exception():
                    raise sender.exception()  # type: ignore[misc]
                await asyncio.sleep(0.25)
            await sender

        asyncio.run(feed())
    firsts, lasts = marks[0], marks[-1] - marks[-2]
    print(f"  growth: first {chunk} in {firsts:.1f} s, last {chunk} in {lasts:.1f} s")
    return ratio(f"growth last/first {chunk} of {total}", [firsts / lasts], target=0.90, unit="")


def scaling(servers: Servers, tmp: Path, args: Any, numbers: Numbers) -> list[Ratio]:
    """Ingest at 64 connections spread over 1, 2 and 4 receiver processes on one PostgreSQL."""
    with database("postgresql", tmp, "scale") as url:
        servers.env["RECOVERKIT_DATABASE_URL"] = url
        ports = [servers.service("--no-worker") for _ in range(4)]
        rates: dict[int, list[float]] = {1: [], 2: [], 4: []}
        for index in range(args.rounds):
            order = [1, 2, 4]
            shift = index % 3
            for receivers in order[shift:] + order[:shift]:
                ok, errors, took = asyncio.run(
                    closed_loop(ports[:receivers], args.seconds, 64, numbers)
                )
                if errors:
                    raise RuntimeError(f"scaling: {errors} requests failed")
                rates[receivers].append(ok / took)
        for proc in servers.procs[-4:]:
            servers.stop(proc)
    for receivers, values in rates.items():
        print(
            f"  scaling: {receivers} receiver(s) on PostgreSQL: median "
            f"{sorted(values)[len(values) // 2]:7.0f} req/s (min {min(values):.0f}, "
            f"max {max(values):.0f})"
        )
    return [
        ratio("scaling pg 2/1 receivers", rates[2], rates[1], target=None, unit="x"),
        ratio("scaling pg 4/1 receivers", rates[4], rates[1], target=None, unit="x"),
    ]


def main() -> None:
    if "--serve" in sys.argv:
        serve_simple(sys.argv[sys.argv.index("--serve") + 1], int(sys.argv[-1]))
        return

    def extra(parser: Any) -> None:
        parser.add_argument("--no-postgres", action="store_true")
        parser.add_argument(
            "--parts",
            default="ingest,forwarding,growth",
            help="comma-separated: ingest, forwarding, growth, scaling",
        )
        parser.add_argument("--forward-events", type=int, default=5000)
        parser.add_argument("--growth-events", type=int, default=100_000)

    args = arguments(__doc__.splitlines()[0], rounds=3, seconds=3.0, extra=extra)
    tmp = Path(tempfile.mkdtemp(prefix="rk-bench-"))
    log = tmp / "servers.log"
    print(f"server logs: {log}; wall time; {args.rounds} rounds of {args.seconds:g} s")
    numbers = Numbers()
    servers = Servers({}, log)
    lines: list[Ratio] = []
    try:
        servers.env = base_env(0)
        recover = servers.simple("recover")
        servers.env = base_env(recover)
        bare = servers.simple("bare")
        parts = {part.strip() for part in args.parts.split(",")}
        unknown = parts - {"ingest", "forwarding", "growth", "scaling"}
        if unknown:
            raise SystemExit(f"--parts: unknown {', '.join(sorted(unknown))}")
        dbs = ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
        for db in dbs:
            label = "sqlite" if db == "sqlite" else "pg"
            if "ingest" in parts:
                with database(db, tmp, "ingest") as url:
                    lines += ingest_and_latency(servers, bare, url, args, numbers, label)
                    servers.stop(servers.procs[-1])
            if "forwarding" in parts:
                lines.append(forwarding(servers, tmp, db, args, numbers, label))
        if "scaling" in parts and not args.no_postgres:
            lines += scaling(servers, tmp, args, numbers)
        if "growth" in parts:
            lines.append(growth(servers, tmp, args, numbers))
    finally:
        servers.close()
    for line in lines:
        print(line.line())


if __name__ == "__main__":
    main()
