"""A Recover stand-in on a real loopback port (uvicorn in a thread), for subprocess tests."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import Counter

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RecoverStandIn:
    """Accepts ``POST /recover/payments`` and counts invoice ids."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay  # seconds before each answer (keeps requests in flight)
        self.status = 200  # set to 503 (say) to play an outage; calls are counted either way
        self.refuse: set[str] = set()  # invoice ids answered 400 (a dead letter)
        self.calls: Counter[int] = Counter()  # HTTP calls by the status answered
        self.idempotency_keys: Counter[str] = Counter()
        self.invoices: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.port = free_port()
        app = Starlette(routes=[Route("/recover/{endpoint}", self._accept, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    async def _accept(self, request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        if self.delay:
            await asyncio.sleep(self.delay)
        invoice = body.get("invoice", {}).get("id") if isinstance(body, dict) else None
        status = 400 if invoice in self.refuse else self.status
        with self._lock:
            self.calls[status] += 1
            if status != 200:
                return JSONResponse({"message": f"stand-in answers {status}"}, status_code=status)
            key = request.headers.get("idempotency-key")
            if key is not None:
                self.idempotency_keys[key] += 1
            self.invoices[body["invoice"]["id"]] += 1
            n = sum(self.invoices.values())
        return JSONResponse({"message": "Request submitted for processing", "request_id": f"r{n}"})

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/recover"

    def __enter__(self) -> RecoverStandIn:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            assert time.monotonic() < deadline, "stand-in did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
