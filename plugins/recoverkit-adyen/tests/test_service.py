"""The Adyen provider behind the real receiver and worker (SQLite store, Recover stand-in)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from adyen_helpers import item_of, load, settings, signed
from recoverkit_adyen import AdyenProvider
from sqlalchemy import Engine, text

from recoverkit import Plugins
from recoverkit.client import RecoverClient
from recoverkit.config import load_settings
from recoverkit.provider import WebhookRequest
from recoverkit.service import Worker, create_app
from recoverkit.service.runtime import ProviderRegistry
from recoverkit.store import make_engine, upgrade

API_KEY = "rk_test_key"


@dataclass
class _Loop:
    app: Any
    worker: Worker
    engine: Engine
    sent: list[tuple[str, dict[str, Any]]]

    def post(self, request: WebhookRequest) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://rk") as client:
                return await client.post(
                    "/webhooks/adyen", content=request.body, headers=dict(request.headers)
                )

        return asyncio.run(go())

    def events(self) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT dedupe_key FROM inbox ORDER BY id"))
            return [row[0] for row in rows]

    def drain(self) -> None:
        for _ in range(10):
            if not self.worker.run_once():
                return

    def inbox(self) -> list[tuple[str, str | None]]:
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT state, last_error FROM inbox ORDER BY id"))
            return [(row[0], row[1]) for row in rows]


@pytest.fixture
def loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Loop]:
    yield from make_loop(tmp_path, monkeypatch, AdyenProvider(settings()))


def make_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, provider: AdyenProvider
) -> Iterator[_Loop]:
    """The receiver and worker around ``provider`` (SQLite in ``tmp_path``, Recover stand-in)."""
    monkeypatch.setenv("RECOVERKIT_RETRY_STATUS__API_KEY", "merchant-key")
    monkeypatch.setenv("RECOVERKIT_RETRY_RESULTS__API_KEY", "merchant-key")
    monkeypatch.setenv("RECOVERKIT_END_OF_DUNNING__USERNAME", "butter")
    monkeypatch.setenv("RECOVERKIT_END_OF_DUNNING__PASSWORD", "s3cret")
    monkeypatch.setenv("RECOVERKIT_BUTTER_SIGNING_SECRETS", '["example_signing_secret"]')
    database = f"sqlite:///{tmp_path / 'rk.db'}"
    service_settings = load_settings(
        None,
        database_url=database,
        recover_api_key=API_KEY,
        recover_base_url="http://recover.test/recover",
        outbox_backoff_base=0.01,
        outbox_backoff_cap=0.02,
    )
    engine = make_engine(database)
    upgrade(engine)
    sent: list[tuple[str, dict[str, Any]]] = []

    def recover(request: httpx.Request) -> httpx.Response:
        sent.append((request.url.path, json.loads(request.content)))
        return httpx.Response(200, json={"message": "ok", "request_id": f"r{len(sent)}"})

    client = RecoverClient(
        api_key=API_KEY,
        base_url=service_settings.recover_base_url,
        transport=httpx.MockTransport(recover),
        max_attempts=1,
        sleep=lambda _s: None,
    )
    plugins = Plugins(load_entry_points=False)
    app = create_app(
        service_settings,
        plugins,
        engine,
        providers={"adyen": provider},
        client=client,
        run_worker=False,
    )
    worker = Worker(
        settings=service_settings,
        plugins=plugins,
        engine=engine,
        providers=ProviderRegistry(service_settings, plugins, {"adyen": provider}),
        client=client,
        metrics=app.state.service.metrics,
    )
    yield _Loop(app, worker, engine, sent)
    worker.close()
    engine.dispose()


def test_failed_renewal_is_acknowledged_with_accepted_and_forwarded(loop: _Loop) -> None:
    request = signed(load("authorisation_refused_not_enough_balance.json"))
    answer = loop.post(request)
    assert (answer.status_code, answer.text) == (200, "[accepted]")
    assert loop.post(request).status_code == 200  # Adyen redelivers: stored once
    loop.drain()
    assert [path for path, _ in loop.sent] == ["/recover/payments"]
    assert loop.sent[0][1]["invoice"]["id"] == "inv_3001"
    assert loop.sent[0][1]["transactions"][0]["amount"] == 49.99


def test_batch_with_one_forged_item_is_refused_whole(loop: _Loop) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    other = load("authorisation_refused_mastercard_do_not_retry.json")
    body["notificationItems"].append(other["notificationItems"][0])
    forged = json.loads(signed(body).body)
    item_of(forged, 1)["amount"]["value"] = 1
    answer = loop.post(WebhookRequest(json.dumps(forged).encode()))
    assert answer.status_code == 401
    assert loop.inbox() == []


def test_event_without_billing_context_is_held_in_the_inbox(loop: _Loop) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    item_of(body)["merchantReference"] = "inv_3001-a1"  # unsigned metadata alone names it
    assert loop.post(signed(body)).status_code == 200
    loop.drain()
    [(state, error)] = loop.inbox()
    assert state in ("pending", "failed")  # kept for a later try, never dropped
    assert error is not None
    assert "held:" in error
    assert loop.sent == []
