"""The dunning loop: plan, ask RetryStatus, retry through the provider, tell the merchant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sandbox_fakes import (
    RecordingMerchant,
    ScriptedIssuer,
    failed_payment,
)
from starlette.testclient import TestClient

from recoverkit import OutcomeUnknownError, RetryAttempt, RetryInstruction
from recoverkit.declines import DeclineCategory, NormalizedDecline, ResponseType
from recoverkit.sandbox.clock import SimulatedClock
from recoverkit.sandbox.server.app import Sandbox

KEY = {"x-api-key": "sandbox_key"}


def _ingest(sandbox: Sandbox, body: dict[str, object]) -> None:
    response = TestClient(sandbox.app).post("/recover/payments", json=body, headers=KEY)
    assert response.status_code == 200, response.text


def _run_days(sandbox: Sandbox, clock: SimulatedClock, days: int) -> None:
    for _ in range(days * 4):
        sandbox.run_until_idle()
        clock.advance(timedelta(hours=6))
    sandbox.run_until_idle()


def test_failed_invoice_is_retried_until_recovered(
    make_sandbox: Callable[..., Sandbox],
    clock: SimulatedClock,
    issuer: ScriptedIssuer,
    merchant: RecordingMerchant,
) -> None:
    issuer.script = [_decline(), _decline(), True]
    sandbox = make_sandbox()
    _ingest(sandbox, failed_payment())
    _run_days(sandbox, clock, 10)

    keys = [call.idempotency_key for call in issuer.calls]
    assert keys == [f"recoverkit-sandbox:inv_1:{n}" for n in (1, 2, 3)]
    assert merchant.retry_status_calls == ["inv_1"] * 3
    results = merchant.of_kind("retry_results")
    assert [r["success"] for r in results] == [False, False, True]
    assert [r["dunning_complete"] for r in results] == [False, False, True]
    assert results[-1]["amount_collected"] == 19.99
    assert merchant.of_kind("end_of_dunning") == [
        {"timestamp": results[-1]["timestamp"], "invoice_id": "inv_1", "recovered": True}
    ]
    # Fixed schedule: days 1, 3, 5 after the first failure.
    at = [call.invoice.invoice_id for call in issuer.calls]
    assert at == ["inv_1"] * 3
    invoice = sandbox.book.invoice("inv_1")
    assert invoice is not None
    assert (invoice.state, invoice.attempts) == ("recovered", 3)


def test_every_webhook_is_signed_with_butters_headers(
    make_sandbox: Callable[..., Sandbox],
    clock: SimulatedClock,
    issuer: ScriptedIssuer,
    merchant: RecordingMerchant,
) -> None:
    issuer.script = [True]
    sandbox = make_sandbox()
    _ingest(sandbox, failed_payment())
    _run_days(sandbox, clock, 2)
    assert len(merchant.received) == 2  # Retry Results + End of Dunning, each verified on receipt
    dedupe_ids = {h["x-butter-webhook-deduplication-id"] for _, _, h in merchant.received}
    assert len(dedupe_ids) == 2
    assert {h["x-butter-webhook-type"] for _, _, h in merchant.received} == {
        "recover.retry_results",
        "recover.end_of_dunning",
    }


def test_merchant_refusal_ends_dunning_without_a_charge(
    make_sandbox: Callable[..., Sandbox],
    clock: SimulatedClock,
    issuer: ScriptedIssuer,
    merchant: RecordingMerchant,
) -> None:
    merchant.retry_answers["inv_1"] = {"retry": False, "reason": "User Cancellation"}
    sandbox = make_sandbox()
    _ingest(sandbox, failed_payment())
    _run_days(sandbox, clock, 3)
    assert issuer.calls == []
    assert [e["recovered"] for e in merchant.of_kind("end_of_dunning")] == [False]
    invoice = sandbox.book.invoice("inv_1")
    assert invoice is not None
    assert invoice.end_reason == "merchant refused: User Cancellation"


def test_retry_status_amount_and_payment_method_are_obeyed(
    make_sandbox: Callable[..., Sandbox],
    clock: SimulatedClock,
    issuer: ScriptedIssuer,
    merchant: RecordingMerchant,
) -> None:
    merchant.retry_answers["inv_1"] = {
        "retry": True,
        "amount": 9.5,
        "payment_methods": [{"id": "pm_new"}],
    }
    issuer.script = [True]
    sandbox = make_sandbox()
    _ingest(sandbox, failed_payment())
    _run_days(sandbox, clock, 2)
    (call,) = issuer.calls
    assert (str(call.amount), call.payment_method_id) == ("9.5", "pm_new")


def test_unreachable_retry_status_postpones_and_charges_nothing(
    make_sandbox: Callable[..., Sandbox],
    clock: SimulatedClock,
    issuer: ScriptedIssuer,
    merchant: RecordingMerchant,
) -> None:
    merchant.retry_answers["inv_1"] = 500
    sandbox = make_sandbox()
    _ingest(sandbox, failed_payment())
    _run_days(sandbox, clock, 2)
    assert issuer.calls == []
    assert len(merchant.retry_status_calls) >= 2
    invoice = sandbox.book.invoice("inv_1")
    assert invoice is not None
    assert invoice.state == "dunning"


def test_stolen_card_is_never_retried_but_a_new_card_from_the_customer_is(
    make_sandbox: Callable[..., Sandbox],
    clock: SimulatedClock,
    issuer: ScriptedIssuer,
    merchant: RecordingMerchant,
) -> None:
    issuer.script = [True]
    sandbox = make_sandbox()
    client = TestClient(sandbox.app)
    outcome = {"raw_response_message": "43", "response_type": "hard_decline"}  # ISO 43: stolen
    _ingest(sandbox, failed_payment(outcome=outcome))
    _run_days(sandbox, clock, 2)
    refresh = {"customer_id": "cus_1", "payment_method_id": "pm_1", "reason": "network_updated"}
    assert client.post("/recover/payment_method_updates", json=refresh, headers=KEY).is_success
    _run_days(sandbox, clock, 2)
    assert issuer.calls == []  # an updater refresh of the stolen card lifts nothing
    assert merchant.retry_status_calls == []
    new_card = {"customer_id": "cus_1", "payment_method_id": "pm_2", "reason": "customer_added"}
    assert client.post("/recover/payment_method_updates", json=new_card, headers=KEY).is_success
    merchant.retry_answers["inv_1"] = {"retry": True, "payment_methods": [{"id": "pm_2"}]}
    _run_days(sandbox, clock, 4)
    assert [call.payment_method_id for call in issuer.calls] == ["pm_2"]
    assert [e["recovered"] for e in merchant.of_kind("end_of_dunning")] == [True]


def test_stolen_card_dunning_ends_with_the_window_without_a_new_card(
    make_sandbox: Callable[..., Sandbox],
    clock: SimulatedClock,
    issuer: ScriptedIssuer,
    merchant: RecordingMerchant,
) -> None:
    sandbox = make_sandbox(dunning_window=timedelta(days=5))
    outcome = {"raw_response_message": "43", "response_type": "hard_decline"}
    _ingest(sandbox, failed_payment(outcome=outcome))
    _run_days(sandbox, clock, 7)
    assert issuer.calls == []
    (notice,) = merchant.of_kind("end_of_dunning")
    assert notice["recovered"] is False


def test_crash_mid_charge_reuses_the_idempotency_key(
    make_sandbox: Callable[..., Sandbox],
    clock: SimulatedClock,
    issuer: ScriptedIssuer,
    merchant: RecordingMerchant,
) -> None:
    issuer.script = [OutcomeUnknownError("timeout", provider="stripe"), True]
    sandbox = make_sandbox()
    _ingest(sandbox, failed_payment())
    _run_days(sandbox, clock, 3)
    keys = [call.idempotency_key for call in issuer.calls]
    assert keys == ["recoverkit-sandbox:inv_1:1", "recoverkit-sandbox:inv_1:1"]
    assert len(issuer.charged) == 1
    assert merchant.retry_status_calls == ["inv_1"]  # not asked again for the same attempt


def test_expired_card_waits_for_an_update_then_retries(
    make_sandbox: Callable[..., Sandbox],
    clock: SimulatedClock,
    issuer: ScriptedIssuer,
    merchant: RecordingMerchant,
) -> None:
    issuer.script = [True]
    sandbox = make_sandbox()
    outcome = {"raw_response_message": "54", "response_type": "hard_decline"}  # expired card
    _ingest(sandbox, failed_payment(outcome=outcome))
    _run_days(sandbox, clock, 2)
    assert issuer.calls == []
    invoice = sandbox.book.invoice("inv_1")
    assert invoice is not None
    assert invoice.state == "awaiting_payment_method"
    update = {"customer_id": "cus_1", "payment_method_id": "pm_1", "reason": "network_updated"}
    client = TestClient(sandbox.app)
    assert client.post("/recover/payment_method_updates", json=update, headers=KEY).is_success
    _run_days(sandbox, clock, 4)
    assert len(issuer.calls) == 1
    assert [e["recovered"] for e in merchant.of_kind("end_of_dunning")] == [True]


def test_webhooks_are_redelivered_every_interval_then_given_up(
    make_sandbox: Callable[..., Sandbox],
    clock: SimulatedClock,
    issuer: ScriptedIssuer,
    merchant: RecordingMerchant,
) -> None:
    merchant.webhook_status = [500] * 100
    issuer.script = [True]
    sandbox = make_sandbox(
        redelivery_interval=timedelta(hours=12), redelivery_window=timedelta(days=7)
    )
    _ingest(sandbox, failed_payment())
    _run_days(sandbox, clock, 12)
    retry_results = merchant.of_kind("retry_results")
    # First try plus every 12 h within 7 days: 1 + 14 deliveries, then given up.
    assert len(retry_results) == 15
    assert len({r["butter_id"] for r in retry_results}) == 1  # the same event each time


def test_a_second_worker_skips_an_invoice_in_flight(
    make_sandbox: Callable[..., Sandbox],
    clock: SimulatedClock,
    issuer: ScriptedIssuer,
) -> None:
    first = make_sandbox()
    second = make_sandbox()
    _ingest(first, failed_payment())
    first.run_until_idle()  # plan
    clock.advance(timedelta(days=1, hours=1))
    ticks_during_charge: list[int] = []
    charge = issuer.charge

    def charge_while_another_worker_ticks(instruction: RetryInstruction) -> RetryAttempt:
        # While worker one is inside the PSP call, worker two polls the same database.
        ticks_during_charge.append(second.engine.tick(clock.now()))
        return charge(instruction)

    issuer.charge = charge_while_another_worker_ticks  # type: ignore[method-assign]
    first.engine.tick(clock.now())
    assert ticks_during_charge == [0]
    assert [c.idempotency_key for c in issuer.calls] == ["recoverkit-sandbox:inv_1:1"]


def _decline() -> NormalizedDecline:
    return NormalizedDecline(
        DeclineCategory.INSUFFICIENT_FUNDS,
        ResponseType.SOFT,
        "insufficient_funds",
        iso_response_code="51",
        network="visa",
    )


# -- the sandbox's own crash recovery ------------------------------------------------------------


class Killed(BaseException):
    """Raised at a chosen point to stop the sandbox as ``kill -9`` would: no cleanup runs."""


def _kill_once_at(obj: object, name: str, when: Callable[..., bool] = lambda *a, **k: True) -> None:
    original = getattr(obj, name)
    fired = []

    def dying(*args: object, **kwargs: object) -> object:
        if not fired and when(*args, **kwargs):
            fired.append(True)
            raise Killed(name)
        return original(*args, **kwargs)

    setattr(obj, name, dying)


def _crash(sandbox: Sandbox) -> None:
    try:
        sandbox.run_until_idle()
    except Killed:
        pass
    else:
        raise AssertionError("the sandbox was not killed")
    sandbox.stop()


def test_killed_right_after_a_charge_answer_a_restart_completes_that_attempt(
    make_sandbox: Callable[..., Sandbox],
    clock: SimulatedClock,
    issuer: ScriptedIssuer,
    merchant: RecordingMerchant,
) -> None:
    issuer.script = [_decline(), True]
    sandbox = make_sandbox()
    _ingest(sandbox, failed_payment())
    sandbox.run_until_idle()  # plans attempt 1
    # The decline of attempt 1 is recorded, then the process dies before anything else.
    _kill_once_at(sandbox.book, "record_card_attempt")
    clock.advance(timedelta(days=1, hours=1))
    _crash(sandbox)
    (attempt,) = sandbox.book.attempts_of("inv_1")
    assert attempt.finished_at is not None
    assert sandbox.book.invoice("inv_1").attempts == 0  # type: ignore[union-attr]

    restarted = make_sandbox()
    _run_days(restarted, clock, 10)
    keys = [call.idempotency_key for call in issuer.calls]
    assert keys == ["recoverkit-sandbox:inv_1:1", "recoverkit-sandbox:inv_1:2"]  # no re-charge
    assert len(issuer.charged) == 2
    assert merchant.retry_status_calls == ["inv_1"] * 2  # not asked again for attempt 1
    results = merchant.of_kind("retry_results")
    assert [r["success"] for r in results] == [False, True]  # attempt 1's result, once
    assert [r["dunning_complete"] for r in results] == [False, True]
    invoice = restarted.book.invoice("inv_1")
    assert invoice is not None
    assert (invoice.state, invoice.attempts) == ("recovered", 2)


def test_killed_before_the_retry_result_was_queued_a_restart_queues_it_once(
    make_sandbox: Callable[..., Sandbox],
    clock: SimulatedClock,
    issuer: ScriptedIssuer,
    merchant: RecordingMerchant,
) -> None:
    issuer.script = [_decline(), True]
    sandbox = make_sandbox()
    _ingest(sandbox, failed_payment())
    sandbox.run_until_idle()  # plans attempt 1
    # The invoice is advanced to its next attempt, then the process dies before queueing.
    _kill_once_at(sandbox.engine, "_queue", lambda kind, *a, **k: kind == "retry_results")
    clock.advance(timedelta(days=1, hours=1))
    _crash(sandbox)
    assert sandbox.book.invoice("inv_1").attempts == 1  # type: ignore[union-attr]
    assert merchant.of_kind("retry_results") == []

    restarted = make_sandbox()
    restarted.run_until_idle()
    restarted.run_until_idle()  # a second pass finds nothing more to complete
    assert [r["success"] for r in merchant.of_kind("retry_results")] == [False]
    _run_days(restarted, clock, 10)
    results = merchant.of_kind("retry_results")
    assert [r["success"] for r in results] == [False, True]
    assert [r["dunning_complete"] for r in results] == [False, True]
    assert len(issuer.charged) == 2


def test_a_restarted_speed_sandbox_resumes_simulated_time_instead_of_going_back(
    make_sandbox: Callable[..., Sandbox], issuer: ScriptedIssuer, merchant: RecordingMerchant
) -> None:
    from sandbox_fakes import START

    from recoverkit.sandbox.server import store
    from recoverkit.sandbox.server.engine import resume_simulated_clock

    real = [0.0]
    fast = SimulatedClock(START, speed=86_400, monotonic=lambda: real[0])  # a day per second
    current = [fast]
    merchant.now = lambda: current[0].now()  # noqa: PLW0108 - the clock is swapped below
    sandbox = make_sandbox()
    resume_simulated_clock(sandbox.engine, fast)
    _ingest(sandbox, failed_payment())
    issuer.script = [_decline(), _decline(), True]
    for _ in range(8):  # four simulated days, one attempt or more
        real[0] += 0.5
        sandbox.engine.tick(fast.now())
    before_kill = fast.now()
    first = [a.started_at for a in sandbox.book.attempts_of("inv_1")]
    assert first, "no attempt ran before the restart"
    sandbox.stop()

    # The restarted process's clock starts again from the wall clock (here: START).
    again = SimulatedClock(START, speed=86_400, monotonic=lambda: real[0])
    current[0] = again
    restarted = make_sandbox()
    resume_simulated_clock(restarted.engine, again)
    assert again.now() >= before_kill  # resumed, not back at START
    assert store.resume_time(restarted.book.engine) == before_kill
    for _ in range(16):
        real[0] += 0.5
        restarted.engine.tick(again.now())
    started = [a.started_at for a in restarted.book.attempts_of("inv_1")]
    assert len(started) > len(first)
    assert started == sorted(started)  # no attempt starts "before" an earlier one
