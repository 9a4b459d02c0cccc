"""Issue 11 items 8 and 9: missing configuration is a 503 (logged), 401 bodies reveal nothing,
/readyz hides the driver's error text, and a body that trickles in is cut."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fake_provider import FakeProvider, charge_event, signed
from service_support import FakeRecover, Service, build_service, call, make_settings
from sqlalchemy import func, select

from recoverkit.errors import ConfigurationError
from recoverkit.provider import WebhookRequest
from recoverkit.service.app import SIGNATURE_REFUSED
from recoverkit.store import inbox, make_engine


def _rows(svc: Service) -> int:
    with svc.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inbox)).scalar_one())


class Unconfigured(FakeProvider):
    """A provider whose webhook secret was never set: verify says so."""

    def verify(self, request: WebhookRequest) -> None:
        raise ConfigurationError("fake: RECOVERKIT_FAKE_WEBHOOK_SECRET is not set")


def test_provider_with_missing_configuration_is_503_and_logged(
    service: Service, caplog: pytest.LogCaptureFixture
) -> None:
    service.app.state.service.providers._instances["fake"] = Unconfigured()
    raw, headers = signed(charge_event("evt_1"))
    with caplog.at_level(logging.ERROR, logger="recoverkit.service.app"):
        response = call(service.app, "POST", "/webhooks/fake", content=raw, headers=headers)
    assert response.status_code == 503
    text = response.json()["detail"]
    assert "\n" not in text
    assert "not configured" in text
    assert "WEBHOOK_SECRET" not in text  # the detail is in the log only
    assert "RECOVERKIT_FAKE_WEBHOOK_SECRET" in caplog.text
    assert _rows(service) == 0


def test_provider_that_cannot_be_built_is_503_not_500(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = service.app.state.service.providers
    registry._instances.pop("fake")

    def broken(name: str) -> FakeProvider:
        raise ConfigurationError(f"provider {name!r} settings are invalid: key missing")

    monkeypatch.setattr(registry, "get", broken)
    raw, headers = signed(charge_event("evt_1"))
    response = call(service.app, "POST", "/webhooks/fake", content=raw, headers=headers)
    assert response.status_code == 503
    assert "key missing" not in response.json()["detail"]


def test_401_body_is_fixed_whatever_the_plugin_said(service: Service) -> None:
    raw, headers = signed(charge_event("evt_1"), secret="another-secret")
    response = call(service.app, "POST", "/webhooks/fake", content=raw, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"detail": SIGNATURE_REFUSED}


def test_readyz_does_not_echo_the_database_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on port 1: the driver's message names the host, port and user.
    engine = make_engine("postgresql://secretuser@127.0.0.1:1/hidden_db", connect_args={})
    svc = build_service(make_settings(tmp_path), engine, FakeRecover())
    with caplog.at_level(logging.WARNING, logger="recoverkit.service.app"):
        response = call(svc.app, "GET", "/readyz")
    svc.worker.close()
    assert response.status_code == 503
    body = response.text
    for leaked in ("secretuser", "hidden_db", "127.0.0.1", "5432", ":1"):
        assert leaked not in body
    assert "database unreachable" in response.json()["detail"]
    assert "unreachable" in caplog.text


async def _trickle() -> AsyncIterator[bytes]:
    yield b'{"id": "evt_slow", '
    await asyncio.sleep(30)  # far longer than the configured read timeout
    yield b'"type": "charge.failed"}'


@pytest.mark.parametrize("path", ["/webhooks/fake", "/webhooks/retry-results", "/retry/inv_1"])
def test_a_trickling_body_is_cut_with_408(tmp_path: Path, path: str) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'slow.db'}")
    from recoverkit.store import upgrade

    upgrade(engine)
    settings = make_settings(
        tmp_path,
        body_read_timeout=0.2,
        retry_status={"api_key": "k"},
        retry_results={"api_key": "k", "require_signature": False},
    )
    svc = build_service(settings, engine, FakeRecover())

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=svc.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rk") as client:
            return await client.post(
                path,
                content=_trickle(),
                headers={"content-type": "application/json", "x-api-key": "k"},
            )

    response = asyncio.run(go())
    svc.worker.close()
    assert response.status_code == 408
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(inbox)).scalar_one() == 0
