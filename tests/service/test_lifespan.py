"""The app's lifespan: refuses to start on an old schema; runs the in-process worker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from fake_provider import FakeProvider, MerchantHooks, charge_event, plugin, signed
from service_support import API_KEY, FakeRecover, make_settings

from recoverkit import ConfigurationError, Plugins
from recoverkit.client import RecoverClient
from recoverkit.service import create_app
from recoverkit.store import make_engine, upgrade


def test_start_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    app = create_app(make_settings(tmp_path), Plugins(load_entry_points=False), engine)

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(ConfigurationError, match="recoverkit db upgrade"):
        asyncio.run(start())


def test_serve_runs_a_worker_that_forwards_what_was_received(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, worker_poll_interval=0.05)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    recover = FakeRecover()
    client = RecoverClient(
        api_key=API_KEY,
        base_url=settings.recover_base_url,
        transport=httpx.MockTransport(recover.handler),
    )
    app = create_app(
        settings,
        Plugins([plugin, MerchantHooks()], load_entry_points=False),
        engine,
        providers={"fake": FakeProvider()},
        client=client,
    )
    assert settings.serve_worker  # the default: serve runs a worker in-process

    async def scenario() -> None:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://rk") as http:
                for n in range(5):
                    raw, headers = signed(charge_event(f"evt_{n}", invoice=f"inv_{n}"))
                    response = await http.post("/webhooks/fake", content=raw, headers=headers)
                    assert response.status_code == 200
            deadline = time.monotonic() + 30
            while len(recover.accepted) < 5:
                assert time.monotonic() < deadline, "the in-process worker forwarded nothing"
                await asyncio.sleep(0.05)

    asyncio.run(scenario())
    assert len(recover.accepted) == 5
    engine.dispose()
