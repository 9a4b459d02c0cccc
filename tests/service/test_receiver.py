"""POST /webhooks/{provider}: store before ack, refuse bad input with the documented status."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from fake_provider import charge_event, signed
from service_support import Service, call
from sqlalchemy import func, select

from recoverkit.service.app import SIGNATURE_REFUSED
from recoverkit.store import inbox, repo


def inbox_rows(svc: Service) -> int:
    with svc.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(inbox)).scalar_one())


def post(
    svc: Service, body: bytes, headers: dict[str, str], provider: str = "fake"
) -> httpx.Response:
    return call(svc.app, "POST", f"/webhooks/{provider}", content=body, headers=headers)


def test_valid_webhook_is_stored_then_acknowledged_with_the_providers_body(
    service: Service,
) -> None:
    response = post(service, *signed(charge_event("evt_1")))
    assert response.status_code == 200
    assert response.content == b"fake-ok"
    assert response.headers["content-type"].startswith("text/plain")
    assert inbox_rows(service) == 1


def test_duplicate_delivery_is_acknowledged_and_stores_nothing_new(service: Service) -> None:
    body, headers = signed(charge_event("evt_1"))
    assert post(service, body, headers).status_code == 200
    assert post(service, body, headers).status_code == 200
    assert inbox_rows(service) == 1


def test_batch_stores_one_row_per_event(service: Service) -> None:
    body = {"events": [charge_event("evt_a"), charge_event("evt_b"), charge_event("evt_a")]}
    assert post(service, *signed(body)).status_code == 200
    assert inbox_rows(service) == 2


@pytest.mark.anyio
async def test_concurrent_duplicates_store_one_row(service: Service) -> None:
    body, headers = signed(charge_event("evt_same"))
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rk") as client:
        answers = await asyncio.gather(
            *[client.post("/webhooks/fake", content=body, headers=headers) for _ in range(12)]
        )
    assert [a.status_code for a in answers] == [200] * 12
    assert inbox_rows(service) == 1


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b, h: (b + b" ", h), "does not match"),
        (lambda b, h: (b, {"Content-Type": "application/json"}), "missing X-Fake-Signature"),
        (lambda b, h: (b, {"X-Fake-Signature": "garbage"}), "malformed"),
    ],
)
def test_bad_signature_is_401_with_one_line_reason_and_nothing_stored(
    service: Service, mutate: object, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    body, headers = mutate(*signed(charge_event("evt_1")))  # type: ignore[operator]
    with caplog.at_level("WARNING", logger="recoverkit.service.app"):
        response = post(service, body, headers)
    assert response.status_code == 401
    detail = response.json()["detail"]
    # The plugin's reason is logged; the caller gets a fixed text (it could name key ids).
    assert detail == SIGNATURE_REFUSED
    assert reason in caplog.text
    assert inbox_rows(service) == 0


def test_wrong_secret_and_stale_timestamp_are_401(service: Service) -> None:
    assert post(service, *signed(charge_event("e"), secret="other")).status_code == 401
    stale = signed(charge_event("e"), timestamp=1_000_000_000)
    assert post(service, *stale).status_code == 401
    assert inbox_rows(service) == 0


def test_unknown_provider_is_404(service: Service) -> None:
    response = post(service, *signed(charge_event("e")), provider="paypal")
    assert response.status_code == 404
    assert "paypal" in response.json()["detail"]


def test_body_over_the_limit_is_413_and_not_read(service: Service) -> None:
    huge = b"{" + b" " * (service.settings.max_body_bytes + 1) + b"}"
    assert post(service, *signed(huge)).status_code == 413

    async def chunks():  # no Content-Length: the limit applies while streaming
        for _ in range(service.settings.max_body_bytes // 65536 + 2):
            yield b" " * 65536

    response = call(service.app, "POST", "/webhooks/fake", content=chunks())
    assert response.status_code == 413
    assert inbox_rows(service) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        b"\xff\xfe\x00garbage",
        b'{"id": "x"}',
        b"[]",
    ],
)
def test_undecodable_signed_bodies_are_400_and_nothing_stored(service: Service, raw: bytes) -> None:
    response = post(service, *signed(raw))
    assert response.status_code == 400
    assert inbox_rows(service) == 0


def test_store_failure_is_500_so_the_psp_redelivers(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_a: object, **_k: object) -> int:
        raise RuntimeError("disk full")

    monkeypatch.setattr(repo, "insert_event_groups", broken)
    response = post(service, *signed(charge_event("evt_1")))
    assert response.status_code == 500
    assert "disk full" not in response.text


@pytest.mark.anyio
async def test_bad_requests_in_a_group_commit_do_not_affect_the_good_ones(service: Service) -> None:
    good = [signed(charge_event(f"evt_{n}")) for n in range(8)]
    bad = [signed(charge_event(f"bad_{n}"), secret="wrong") for n in range(8)]
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rk") as client:
        answers = await asyncio.gather(
            *[
                client.post("/webhooks/fake", content=body, headers=headers)
                for pair in zip(good, bad, strict=True)
                for body, headers in pair
            ]
        )
    assert [a.status_code for a in answers] == [200, 401] * 8
    assert inbox_rows(service) == 8


def test_provider_crash_on_a_body_is_400_logged_and_nothing_stored(
    service: Service, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A plugin that trips over a hostile body (KeyError, RecursionError, …) instead of raising
    # MalformedWebhookError: bad input is a 4xx (issue 10 item 10); the traceback is logged.
    def crash(_request: object) -> None:
        raise KeyError("bug in the plugin")

    monkeypatch.setattr(service.provider, "verify", crash)
    with caplog.at_level("ERROR", logger="recoverkit.service.ingest"):
        response = post(service, *signed(charge_event("evt_1")))
    assert response.status_code == 400
    assert "bug" not in response.text
    assert "KeyError" in caplog.text
    assert inbox_rows(service) == 0
