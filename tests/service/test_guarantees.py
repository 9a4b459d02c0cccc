"""Delivery guarantees: exactly once under normal operation, nothing lost while Recover is down,
newest state wins in the ledger, permanent errors dead-letter with Recover's reasons."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from fake_provider import charge_event, signed
from service_support import API_KEY, Service, call
from sqlalchemy import select

from recoverkit.client import RecoverClient
from recoverkit.errors import MissingFactError
from recoverkit.provider import ProviderEvent
from recoverkit.service import Worker
from recoverkit.store import inbox, outbox, repo


def deliver(svc: Service, body: dict[str, object]) -> None:
    raw, headers = signed(body)
    response = call(svc.app, "POST", "/webhooks/fake", content=raw, headers=headers)
    assert response.status_code == 200, response.text


def run_until(svc: Service, condition, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    """Run worker passes until ``condition()`` holds (polling; never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        if not svc.worker.run_once():
            time.sleep(0.02)


def states(svc: Service, table=outbox) -> list[str]:  # type: ignore[no-untyped-def]
    with svc.engine.connect() as conn:
        return [r.state for r in conn.execute(select(table.c.state).order_by(table.c.id))]


def test_duplicate_delivery_is_forwarded_once(service: Service) -> None:
    deliver(service, charge_event("evt_1"))
    deliver(service, charge_event("evt_1"))
    service.drain()
    assert service.recover.paths() == ["/recover/payments"]


def test_three_events_for_one_attempt_are_forwarded_once(service: Service) -> None:
    # Like Stripe's charge.failed / payment_intent.payment_failed / invoice.payment_failed.
    for event_id, event_type in [("e1", "charge.failed"), ("e2", "invoice.payment_failed")]:
        deliver(service, charge_event(event_id, charge="ch_shared", event_type=event_type))
    service.drain()
    assert len(service.recover.accepted) == 1


@pytest.mark.anyio
async def test_concurrent_duplicate_delivery_is_forwarded_once(service: Service) -> None:
    body, headers = signed(charge_event("evt_c"))
    transport = httpx.ASGITransport(app=service.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://rk") as client:
        answers = await asyncio.gather(
            *[client.post("/webhooks/fake", content=body, headers=headers) for _ in range(10)]
        )
    assert {a.status_code for a in answers} == {200}
    await asyncio.to_thread(service.drain)
    assert len(service.recover.accepted) == 1


def test_forwarded_body_is_the_translation_with_merchant_amendment(service: Service) -> None:
    deliver(service, charge_event("evt_1", invoice="inv_9", amount=1230))
    service.drain()
    body = json.loads(service.recover.accepted[0][1])
    assert body["invoice"]["id"] == "inv_9"
    assert body["custom"] == {"source": "fake-tests"}
    sent = json.loads(service.recover.accepted[0][1], parse_float=Decimal)
    assert sent["transactions"][0]["amount"] == Decimal("12.30")  # a JSON number, exact
    rows = repo.list_outbox(service.engine)
    assert rows[0].request_id == "req-1"
    assert rows[0].state == "sent"


@pytest.mark.parametrize("outage", ["refused", "500"])
def test_recover_down_then_up_loses_nothing_and_sends_nothing_twice(
    service: Service, outage: str
) -> None:
    breaker = service.worker.breaker
    breaker.cooldown, breaker.cooldown_cap = 0.02, 0.1  # probes come quickly in the test
    service.recover.mode = outage
    for n in range(15):
        deliver(service, charge_event(f"evt_{n}", invoice=f"inv_{n}"))
    run_until(service, lambda: breaker.probes >= 4)  # open, then several failed probes
    assert service.recover.accepted == []
    assert set(states(service)) == {"pending"}
    failed = service.recover.calls
    # The outage cost the calls that revealed it (at most the breaker's threshold plus the
    # calls already in flight) and one call per probe, not several calls per message.
    in_flight = service.settings.recover_concurrency
    assert failed <= breaker.threshold + in_flight + breaker.probes
    service.recover.mode = "ok"
    run_until(service, lambda: set(states(service)) == {"sent"})
    assert breaker.state == "closed"
    invoices = [json.loads(b)["invoice"]["id"] for _, b in service.recover.accepted]
    assert sorted(invoices) == sorted(f"inv_{n}" for n in range(15))  # all, each once
    assert service.recover.calls == failed + 15  # after the outage: one call per message


def test_permanent_error_dead_letters_with_recovers_errors(service: Service) -> None:
    service.recover.mode = "400"
    deliver(service, charge_event("evt_1"))
    service.drain()
    (row,) = repo.list_outbox(service.engine)
    assert row.state == "dead"
    assert row.last_status == 400
    assert "invoice.id: missing" in row.last_error
    calls = service.recover.calls
    service.drain()
    assert service.recover.calls == calls  # never retried on its own
    assert repo.requeue_outbox(service.engine, now=row.created_at) == 1
    service.recover.mode = "ok"
    service.drain()
    assert states(service) == ["sent"]


def test_still_failing_after_the_dead_letter_age_is_dead(service: Service) -> None:
    service.settings.outbox_dead_letter_after = 0.05
    service.recover.mode = "500"
    deliver(service, charge_event("evt_1"))
    run_until(service, lambda: states(service) == ["dead"])


def test_out_of_order_success_before_older_failure_leaves_ledger_paid(service: Service) -> None:
    deliver(service, charge_event("evt_ok", charge="ch_2", success=True, created=2_000_000_000))
    service.drain()
    deliver(service, charge_event("evt_fail", charge="ch_1", success=False, created=1_900_000_000))
    service.drain()
    entry = repo.get_ledger(service.engine, "inv_1")
    assert entry is not None
    assert entry.state == "paid"
    assert entry.psp_transaction_id == "ch_2"
    assert len(service.recover.accepted) == 2  # both facts still reach Recover


def test_in_order_failure_then_success_moves_ledger_forward(service: Service) -> None:
    deliver(service, charge_event("evt_fail", charge="ch_1", created=1_900_000_000))
    service.drain()
    assert repo.get_ledger(service.engine, "inv_1").state == "failed"  # type: ignore[union-attr]
    deliver(service, charge_event("evt_ok", charge="ch_2", success=True, created=2_000_000_000))
    service.drain()
    assert repo.get_ledger(service.engine, "inv_1").state == "paid"  # type: ignore[union-attr]


def test_translation_failure_is_retried_then_forwarded(service: Service) -> None:
    failures = {"left": 2}

    def flaky(event: ProviderEvent) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise MissingFactError("PSP API down", provider="fake", object_id=event.object_id)

    service.provider.translate_hook = flaky
    deliver(service, charge_event("evt_1"))
    run_until(service, lambda: len(service.recover.accepted) == 1)
    with service.engine.connect() as conn:
        row = conn.execute(select(inbox)).one()
    assert (row.state, row.attempts) == ("done", 3)


def test_ignored_events_are_marked_and_send_nothing(service: Service) -> None:
    deliver(service, charge_event("evt_x", event_type="customer.created"))
    service.drain()
    assert states(service, inbox) == ["ignored"]
    assert service.recover.accepted == []


def test_payment_method_updates_go_to_their_endpoint(service: Service) -> None:
    deliver(service, charge_event("evt_pm", event_type="payment_method.updated"))
    service.drain()
    assert service.recover.paths() == ["/recover/payment_method_updates"]


# -- forwarding under crashes: leases, per-answer marking, idempotency keys ----------------------


def worker_with(svc: Service, handler, **overrides: object) -> Worker:  # type: ignore[no-untyped-def]
    """Another worker on the same store, talking to Recover through ``handler``."""
    client = RecoverClient(
        api_key=API_KEY,
        base_url=svc.settings.recover_base_url,
        transport=httpx.MockTransport(handler),
        max_attempts=1,
    )
    return Worker(
        settings=svc.settings.model_copy(update=overrides),
        plugins=svc.worker.plugins,
        engine=svc.engine,
        providers=svc.worker.providers,
        client=client,
        metrics=svc.worker.metrics,
    )


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"message": "ok", "request_id": "r"})


def test_each_message_carries_its_dedupe_key_as_idempotency_key(service: Service) -> None:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("idempotency-key"))
        return ok(request)

    for n in range(3):
        deliver(service, charge_event(f"evt_{n}", invoice=f"inv_{n}"))
    service.worker.translate_pending()
    worker = worker_with(service, handler)
    try:
        worker.forward_pending()
    finally:
        worker.close()
    with service.engine.connect() as conn:
        keys = sorted(conn.execute(select(outbox.c.dedupe_key)).scalars())
    assert sorted(k for k in seen if k is not None) == keys
    assert len(seen) == 3


def test_answers_are_recorded_as_they_arrive_not_after_the_whole_batch(service: Service) -> None:
    # One request hangs; the others' answers are committed while it is still in flight, so a
    # kill at this moment could repeat only the hanging one.
    release = threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        if json.loads(request.content)["invoice"]["id"] == "inv_0":
            release.wait(30)
        return ok(request)

    for n in range(6):
        deliver(service, charge_event(f"evt_{n}", invoice=f"inv_{n}"))
    service.worker.translate_pending()
    worker = worker_with(service, handler, recover_concurrency=6)
    forward = threading.Thread(target=worker.forward_pending)
    forward.start()
    try:
        deadline = time.monotonic() + 30
        while states(service).count("sent") < 5:
            assert time.monotonic() < deadline, f"answers not recorded: {states(service)}"
            time.sleep(0.02)
        assert forward.is_alive()  # the batch is not over: inv_0 is still in flight
        assert states(service).count("pending") == 1
    finally:
        release.set()
        forward.join(30)
        worker.close()
    assert states(service) == ["sent"] * 6


def test_a_heartbeat_renews_the_lease_of_a_message_still_in_flight(service: Service) -> None:
    # Lease 0.4 s, request 1.2 s: without renewal a second worker would claim and send it again.
    release = threading.Event()
    calls: list[str] = []

    def slow(request: httpx.Request) -> httpx.Response:
        calls.append("a")
        release.wait(30)
        return ok(request)

    def other(request: httpx.Request) -> httpx.Response:
        calls.append("b")
        return ok(request)

    deliver(service, charge_event("evt_1"))
    service.worker.translate_pending()
    a = worker_with(service, slow, worker_lease_seconds=0.4)
    b = worker_with(service, other, worker_lease_seconds=0.4)
    forward = threading.Thread(target=a.forward_pending)
    forward.start()
    try:
        deadline = time.monotonic() + 30
        while not calls:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        first = repo.list_outbox(service.engine)[0].claimed_until
        while repo.list_outbox(service.engine)[0].claimed_until == first:  # a renewal
            assert time.monotonic() < deadline, "the lease was never renewed"
            time.sleep(0.05)
        # Past the first lease's end: the row is still A's, so B finds nothing to send.
        while datetime.now(UTC) <= first + timedelta(seconds=0.2):
            time.sleep(0.05)
        assert b.forward_pending() == 0
    finally:
        release.set()
        forward.join(30)
        a.close()
        b.close()
    assert calls == ["a"]
    assert states(service) == ["sent"]
