"""Benchmark of the bridge service on loopback: real uvicorn servers, SQLite, one worker process.

Prints, in one run (about 40 s):

1. the ceiling: requests/s of a bare endpoint on the same stack (uvicorn + Starlette, 200 "ok");
2. signed-webhook ingest rate with durable commit (verify + parse + inbox INSERT + COMMIT);
3. p50/p99 ack latency at a fixed 300 requests/s (measured from each request's scheduled time,
   so queueing is counted);
4. outbox forwarding: one ``--worker-only`` process translating the stored events and sending
   them to a local Recover stand-in.

Then ratio lines against the targets (ingest ≥ 40 % of bare, p99 ≤ 50 ms, forwarding ≥ 500/s).
The load generator is a minimal asyncio HTTP/1.1 keep-alive client (httpx would be the bottleneck).

Run: ``.venv/bin/python bench/bench_service.py [--seconds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from recoverkit import hookimpl
from recoverkit.errors import SignatureError
from recoverkit.provider import (
    Provider,
    ProviderEvent,
    RecoverMessage,
    Translation,
    WebhookRequest,
)
from recoverkit.schema import PaymentEvent

SECRET = b"bench_secret"
HERE = Path(__file__).resolve().parent


# -- the provider under test (a minimal HMAC-signed JSON PSP) ------------------------------------


class BenchProvider(Provider):
    """``X-Bench-Signature: hex(HMAC_SHA256(secret, body))``; one event per body."""

    name: ClassVar[str] = "bench"

    def verify(self, request: WebhookRequest) -> None:
        expected = hmac.new(SECRET, request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.header("x-bench-signature") or ""):
            raise SignatureError("bench: bad signature")

    def parse(self, request: WebhookRequest) -> list[ProviderEvent]:
        data = request.json()
        return [
            ProviderEvent(
                provider=self.name,
                dedupe_key=data["id"],
                type="charge.failed",
                occurred_at=datetime.fromtimestamp(data["created"], UTC),
                data=data,
                object_id=data["id"],
            )
        ]

    def translate(self, event: ProviderEvent) -> Translation:
        when = event.occurred_at
        n = event.dedupe_key
        payment = PaymentEvent.model_validate(
            {
                "customer": {"id": "cus_1"},
                "subscription": {"id": "sub_1", "start_date": when},
                "invoice": {"id": f"inv_{n}", "created_at": when},
                "transactions": [
                    {
                        "id": f"ch_{n}",
                        "psp_transaction_id": f"ch_{n}",
                        "psp": "stripe",
                        "acquirer_country": "US",
                        "amount": Decimal("12.23"),
                        "currency": "USD",
                        "funding_source": "CREDIT",
                        "payment_method_id": "pm_1",
                        "psp_transaction_created_at": when,
                        "scheme": "visa",
                        "success": False,
                        "outcome": {"raw_response_message": "insufficient_funds"},
                    }
                ],
            }
        )
        return Translation(event, (RecoverMessage(payment, f"attempt:{n}"),))


class _Plugin:
    @hookimpl
    def register_providers(self, register: Callable[[type[Provider]], None]) -> None:
        register(BenchProvider)


plugin = _Plugin()


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
    """Child process: the bare endpoint, or the Recover stand-in."""
    import uvicorn

    if kind == "bare":
        app = _simple_app("/webhooks/{provider}", b"ok")
    else:
        app = _simple_app(
            "/recover/{endpoint}",
            b'{"message":"Request submitted for processing","request_id":"r"}',
        )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- load generator ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def signed_request(port: int, n: int) -> bytes:
    body = json.dumps({"id": f"e{n}-{os.getpid()}", "created": int(time.time())}).encode()
    sig = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    head = (
        f"POST /webhooks/bench HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nX-Bench-Signature: {sig}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


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


async def closed_loop(
    port: int, seconds: float, make: Callable[[int], bytes], conns: int
) -> tuple[int, int]:
    """As many requests as ``conns`` connections can push in ``seconds``: (ok, errors)."""
    counter = iter(range(10**9))
    ok = errors = 0
    deadline = time.perf_counter() + seconds

    async def run() -> None:
        nonlocal ok, errors
        conn = await Conn.open(port)
        while time.perf_counter() < deadline:
            if await conn.request(make(next(counter))) == 200:
                ok += 1
            else:
                errors += 1
        conn.close()

    await asyncio.gather(*[run() for _ in range(conns)])
    return ok, errors


async def open_loop(
    port: int, rate: float, seconds: float, make: Callable[[int], bytes]
) -> list[float]:
    """Requests at a fixed rate; latency from each request's scheduled time (ms)."""
    pool: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(32):
        pool.put_nowait(await Conn.open(port))
    latencies: list[float] = []
    start = time.perf_counter()
    total = int(rate * seconds)

    async def one(i: int) -> None:
        scheduled = start + i / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        conn = await pool.get()
        status = await conn.request(make(i))
        latencies.append((time.perf_counter() - scheduled) * 1000)
        pool.put_nowait(conn)
        assert status == 200, status

    await asyncio.gather(*[one(i) for i in range(total)])
    while not pool.empty():
        pool.get_nowait().close()
    return sorted(latencies)


# -- orchestration -------------------------------------------------------------------------------


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("server did not start")


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # server logs go to a file, the report to stdout
        return subprocess.Popen([sys.executable, *args], env=env, stdout=out, stderr=out)


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--saturate",
        type=int,
        default=64,
        help="connections for the capacity measurement (enough to saturate both servers)",
    )
    parser.add_argument("--serve", choices=["bare", "recover"])
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    if args.serve:
        serve_simple(args.serve, args.port)
        return
    tmp = Path(tempfile.mkdtemp(prefix="rk-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERKIT_")}
    recover_port, bare_port, rk_port = free_port(), free_port(), free_port()
    env.update(
        PYTHONPATH=str(HERE),
        RECOVERKIT_LOAD_PLUGINS="",
        RECOVERKIT_DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
        RECOVERKIT_RECOVER_BASE_URL=f"http://127.0.0.1:{recover_port}/recover",
        RECOVERKIT_RECOVER_API_KEY="bench",
        RECOVERKIT_WORKER_POLL_INTERVAL="0.05",
        RECOVERKIT_WORKER_BATCH_SIZE="200",
        RECOVERKIT_RECOVER_CONCURRENCY="16",
    )
    from recoverkit.store import make_engine, repo, upgrade

    engine = make_engine(env["RECOVERKIT_DATABASE_URL"])
    upgrade(engine)
    me = str(Path(__file__).resolve())
    log = tmp / "servers.log"
    print(f"server logs: {log}")
    procs = [
        spawn([me, "--serve", "bare", "--port", str(bare_port)], env, log),
        spawn([me, "--serve", "recover", "--port", str(recover_port)], env, log),
        spawn(
            [
                "-m",
                "recoverkit.service",
                "--no-worker",
                "--port",
                str(rk_port),
                "--plugin",
                "bench_service:plugin",
            ],
            env,
            log,
        ),
    ]
    try:
        for port, proc in zip((bare_port, recover_port, rk_port), procs, strict=True):
            wait_port(port, proc)
        s = args.seconds
        # Capacity is measured where both servers are saturated. With few connections the
        # ingest rate is bounded by latency instead: every request waits for its group's fsync,
        # so it rises with concurrency while the bare endpoint (pure CPU) does not.
        rates: dict[tuple[str, int], float] = {}
        for c in sorted({args.connections, args.saturate}):
            bare_ok, _ = asyncio.run(
                closed_loop(bare_port, s, lambda n: signed_request(bare_port, n), c)
            )
            rates["bare", c] = bare_ok / s
            print(f"bare endpoint (uvicorn+starlette):   {bare_ok / s:8.0f} req/s  ({c} conns)")
            offset = 10**8 * c
            ingest_ok, ingest_err = asyncio.run(
                closed_loop(rk_port, s, lambda n, o=offset: signed_request(rk_port, n + o), c)
            )
            rates["ingest", c] = ingest_ok / s
            print(
                f"signed ingest, durable commit:       {ingest_ok / s:8.0f} req/s  ({c} conns, "
                f"{ingest_err} errors)"
            )
        bare, ingest = rates["bare", args.saturate], rates["ingest", args.saturate]
        offset = 10**7
        lat = asyncio.run(open_loop(rk_port, 300, s, lambda n: signed_request(rk_port, n + offset)))
        p50, p99 = percentile(lat, 0.50), percentile(lat, 0.99)
        print(
            f"ack latency at 300 req/s:            p50 {p50:6.1f} ms   p99 {p99:6.1f} ms"
            f"  ({len(lat)} requests)"
        )
        stored = repo.counts(engine)["inbox"].get("pending", 0)
        worker = spawn(
            ["-m", "recoverkit.service", "--worker-only", "--plugin", "bench_service:plugin"],
            env,
            log,
        )
        procs.append(worker)
        started = time.perf_counter()
        deadline = started + 90
        sent = 0
        while time.perf_counter() < deadline:
            sent = repo.counts(engine)["outbox"].get("sent", 0)
            if sent >= stored:
                break
            time.sleep(0.05)
        took = time.perf_counter() - started
        forward = sent / took
        print(
            f"worker: translate + forward:         {forward:8.0f} events/s"
            f" ({sent}/{stored} in {took:.1f} s, incl. start-up)"
        )
        print()
        low = args.connections
        print(
            f"ratio ingest/bare   = {ingest / bare:5.2f}   (target >= 0.40; {args.saturate} "
            f"connections, both saturated; at {low}: "
            f"{rates['ingest', low] / rates['bare', low]:.2f}, latency-bound)"
        )
        print(f"p99 ack at 300 rps  = {p99:5.1f} ms (target <= 50 ms)")
        print(f"forwarding          = {forward:5.0f}/s (target >= 500/s)")
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        engine.dispose()


if __name__ == "__main__":
    main()
