"""RecoverClient against httpx.MockTransport: auth, request ids, retry policy, errors."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from recoverkit import RecoverAPIError
from recoverkit.client import (
    AsyncRecoverClient,
    RecoverClient,
    RecoverUnreachableError,
    backoff_delay,
    is_retryable,
)
from recoverkit.schema import PaymentMethodUpdate

Handler = Callable[[httpx.Request], httpx.Response]
OK = {"message": "Request submitted for processing", "request_id": "2c94:4964:000000000000"}


def scripted(*answers: int | type[Exception]) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering each call with the next status (or raising a transport error)."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, type):
            raise answer("boom", request=request)  # type: ignore[call-arg]
        if answer == 200:
            return httpx.Response(200, json=OK)
        return httpx.Response(answer, json={"message": f"status {answer}", "errors": ["e1"]})

    return handler, seen


def client(handler: Handler, sleeps: list[float] | None = None, **kw: object) -> RecoverClient:
    return RecoverClient(
        api_key="key_123",
        base_url="https://recover.test/recover/",
        transport=httpx.MockTransport(handler),
        sleep=(sleeps.append if sleeps is not None else (lambda _s: None)),
        **kw,  # type: ignore[arg-type]
    )


UPDATE = PaymentMethodUpdate(customer_id="c1", payment_method_id="pm_1", reason="network_updated")


def test_sends_api_key_json_and_returns_request_id() -> None:
    handler, seen = scripted(200)
    with client(handler) as c:
        answer = c.send_payment_method_update(UPDATE)
    assert answer.request_id == OK["request_id"]
    assert answer.attempts == 1
    request = seen[0]
    assert str(request.url) == "https://recover.test/recover/payment_method_updates"
    assert request.headers["x-api-key"] == "key_123"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "customer_id": "c1",
        "payment_method_id": "pm_1",
        "reason": "network_updated",
    }


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_retries_server_errors_and_429_then_succeeds(status: int) -> None:
    handler, seen = scripted(status, status, 200)
    sleeps: list[float] = []
    answer = client(handler, sleeps, max_attempts=3).send("payments", b"{}")
    assert answer.attempts == 3
    assert len(seen) == 3
    assert len(sleeps) == 2


def test_retries_transport_errors() -> None:
    handler, seen = scripted(httpx.ConnectError, httpx.ReadTimeout, 200)
    assert client(handler, max_attempts=3).send("payments", b"{}").attempts == 3
    assert len(seen) == 3


@pytest.mark.parametrize("status", [400, 403, 404, 415])
def test_never_retries_client_errors_and_carries_recover_errors(status: int) -> None:
    handler, seen = scripted(status, 200)
    with pytest.raises(RecoverAPIError) as info:
        client(handler, max_attempts=5).send("payments", b"{}")
    assert len(seen) == 1
    assert info.value.status_code == status
    assert info.value.errors == ["e1"]
    assert not is_retryable(info.value)


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    handler, seen = scripted(500, 500, 500)
    with pytest.raises(RecoverAPIError) as info:
        client(handler, max_attempts=3).send("payments", b"{}")
    assert info.value.status_code == 500
    assert is_retryable(info.value)
    assert len(seen) == 3


def test_unreachable_is_status_zero_and_retryable() -> None:
    handler, _ = scripted(httpx.ConnectError)
    with pytest.raises(RecoverUnreachableError) as info:
        client(handler, max_attempts=1).send("payments", b"{}")
    assert info.value.status_code == 0
    assert is_retryable(info.value)
    assert "recover.test" in str(info.value)


def test_retry_after_header_is_honoured_up_to_the_cap() -> None:
    calls = iter([httpx.Response(429, headers={"retry-after": "7"}), httpx.Response(200, json=OK)])
    sleeps: list[float] = []
    client(lambda _r: next(calls), sleeps, backoff_cap=5.0).send("payments", b"{}")
    assert sleeps == [5.0]


def test_backoff_is_jittered_exponential_and_capped() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(n, base=1.0, cap=8.0, rng=rng) for n in range(1, 8)]
    assert all(0 <= d <= min(8.0, 2 ** (n - 1)) for n, d in enumerate(delays, start=1))
    assert len(set(delays)) == len(delays)  # jitter: no two equal


def test_repr_never_shows_the_api_key() -> None:
    handler, _ = scripted()
    assert "key_123" not in repr(client(handler))


def test_timeouts_are_configured() -> None:
    handler, _ = scripted()
    c = client(handler, timeout=3.0, connect_timeout=1.5)
    timeout = c._http.timeout
    assert (timeout.connect, timeout.read, timeout.write) == (1.5, 3.0, 3.0)


def test_payment_event_amounts_are_json_numbers() -> None:
    from recoverkit.schema import PaymentEvent

    event = PaymentEvent.model_validate(
        {
            "customer": {"id": "c"},
            "subscription": {"id": "s", "start_date": datetime(2026, 1, 1, tzinfo=UTC)},
            "invoice": {"id": "i", "created_at": datetime(2026, 1, 1, tzinfo=UTC)},
            "transactions": [
                {
                    "id": "t",
                    "psp_transaction_id": "t",
                    "psp": "stripe",
                    "acquirer_country": "US",
                    "amount": Decimal("12.30"),
                    "currency": "USD",
                    "funding_source": "CREDIT",
                    "payment_method_id": "pm",
                    "psp_transaction_created_at": datetime(2026, 1, 1, tzinfo=UTC),
                    "scheme": "visa",
                    "success": False,
                    "outcome": {"raw_response_message": "insufficient_funds"},
                }
            ],
        }
    )
    handler, seen = scripted(200)
    client(handler).send_payment(event)
    sent = json.loads(seen[0].content, parse_float=Decimal)
    assert sent["transactions"][0]["amount"] == Decimal("12.30")  # a JSON number, not a string


@pytest.mark.anyio
async def test_async_client_has_the_same_retry_policy() -> None:
    handler, seen = scripted(503, 200)
    async with AsyncRecoverClient(
        api_key="k",
        base_url="https://r.test",
        transport=httpx.MockTransport(handler),
        backoff_base=0.001,
        backoff_cap=0.001,
    ) as c:
        answer = await c.send_payment_method_update(UPDATE)
    assert answer.attempts == 2
    assert len(seen) == 2
    handler, seen = scripted(403, 200)
    async with AsyncRecoverClient(api_key="k", transport=httpx.MockTransport(handler)) as c:
        with pytest.raises(RecoverAPIError) as info:
            await c.send("payments", b"{}")
    assert info.value.status_code == 403
    assert len(seen) == 1


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
