"""Helpers shared by the service tests: the Recover double, the Service bundle, a request helper.

A uniquely named module on purpose: several test folders put themselves on ``sys.path``, so a
plain ``from conftest import …`` could import another folder's conftest.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fake_provider import FakeProvider, MerchantHooks, plugin
from sqlalchemy import Engine
from starlette.applications import Starlette

from recoverkit import Plugins
from recoverkit.client import RecoverClient
from recoverkit.config import Settings, load_settings
from recoverkit.service import Worker, create_app
from recoverkit.service.runtime import ProviderRegistry

API_KEY = "rk_test_key"


class FakeRecover:
    """Recover for ``httpx.MockTransport``: records accepted bodies; can be 'down' or failing."""

    def __init__(self) -> None:
        self.accepted: list[tuple[str, bytes]] = []
        self.mode = "ok"  # ok | refused | 500 | 400
        self.calls = 0
        self._lock = threading.Lock()

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.calls += 1
            mode = self.mode
            if mode == "refused":
                raise httpx.ConnectError("connection refused", request=request)
            if mode == "500":
                return httpx.Response(500, json={"message": "Internal error"})
            if mode == "400":
                return httpx.Response(
                    400, json={"message": "Validation failed", "errors": ["invoice.id: missing"]}
                )
            assert request.headers["x-api-key"] == API_KEY
            self.accepted.append((request.url.path, request.content))
            n = len(self.accepted)
        return httpx.Response(200, json={"message": "Request submitted", "request_id": f"req-{n}"})

    def paths(self) -> list[str]:
        return [path for path, _ in self.accepted]


@dataclass
class Service:
    settings: Settings
    engine: Engine
    provider: FakeProvider
    hooks: MerchantHooks
    recover: FakeRecover
    app: Starlette
    worker: Worker
    extra: dict[str, Any] = field(default_factory=dict)

    def drain(self, rounds: int = 20) -> None:
        """Run the worker until nothing is due."""
        for _ in range(rounds):
            if not self.worker.run_once():
                return


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    overrides.setdefault("database_url", f"sqlite:///{tmp_path / 'rk.db'}")
    overrides.setdefault("recover_api_key", API_KEY)
    overrides.setdefault("recover_base_url", "http://recover.test/recover")
    overrides.setdefault("outbox_backoff_base", 0.01)
    overrides.setdefault("outbox_backoff_cap", 0.02)
    return load_settings(None, **overrides)


def build_service(settings: Settings, engine: Engine, recover: FakeRecover) -> Service:
    provider = FakeProvider()
    hooks = MerchantHooks()
    plugins = Plugins([plugin, hooks], load_entry_points=False)
    client = RecoverClient(
        api_key=API_KEY,
        base_url=settings.recover_base_url,
        transport=httpx.MockTransport(recover.handler),
        max_attempts=1,
        sleep=lambda _s: None,
    )
    app = create_app(
        settings, plugins, engine, providers={"fake": provider}, client=client, run_worker=False
    )
    worker = Worker(
        settings=settings,
        plugins=plugins,
        engine=engine,
        providers=ProviderRegistry(settings, plugins, {"fake": provider}),
        client=client,
        metrics=app.state.service.metrics,
    )
    return Service(settings, engine, provider, hooks, recover, app, worker)


def call(app: Starlette, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request to the ASGI app (no network, no lifespan), from synchronous test code."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rk") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(go())


PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
