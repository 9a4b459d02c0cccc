"""RecoverClient: send Payments events and Payment Method Updates to Recover (httpx, sync + async).

- Authenticates with the ``x-api-key`` header (Butter's scheme for merchant → Recover calls).
- One pooled, keep-alive connection set per client; explicit connect/read/write/pool timeouts.
- Retries 5xx, 429 and transport errors with exponential backoff and full jitter, a bounded number
  of times (tenacity); never retries 400, 403, 404 or 415 — those raise :class:`RecoverAPIError`
  at once, carrying Recover's ``errors`` so the outbox can dead-letter the message with the reason.
  A caller may stop the quick tries early (``keep_trying``: the worker's circuit breaker).
- Sends an ``Idempotency-Key`` header when given one (the outbox sends the message's dedupe key),
  so a receiver that honours it drops a repeat sent after a crash.
- Reports every HTTP call to ``on_call(endpoint, status)`` (status 0: no answer), for metrics.
- Returns Recover's ``request_id`` so the caller can keep it next to the message it sent.

Request building and answer interpretation are pure functions shared by both clients; only the
send loop differs. Tests plug in ``httpx.MockTransport``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
)

from recoverkit.errors import RecoverAPIError
from recoverkit.schema import PaymentEvent, PaymentMethodUpdate, dumps

__all__ = [
    "DEFAULT_BASE_URL",
    "AsyncRecoverClient",
    "CallObserver",
    "RecoverClient",
    "RecoverResponse",
    "RecoverUnreachableError",
    "backoff_delay",
    "error_summary",
    "is_retryable",
]

DEFAULT_BASE_URL = "https://api.butterpayments.com/recover"
Endpoint = Literal["payments", "payment_method_updates"]
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
#: ``on_call(endpoint, status)`` after every HTTP call; status 0 when no answer came.
CallObserver = Callable[[str, int], None]


class RecoverUnreachableError(RecoverAPIError):
    """No answer from Recover (connection refused, timeout …); ``status_code`` is 0."""


@dataclass(frozen=True, slots=True)
class RecoverResponse:
    """Recover's 200 answer."""

    status_code: int
    message: str
    request_id: str | None
    attempts: int


def is_retryable(exc: RecoverAPIError) -> bool:
    """True when sending the same message again later may succeed (5xx, 429, no answer)."""
    return (
        isinstance(exc, RecoverUnreachableError)
        or exc.status_code in _RETRYABLE_STATUS
        or (exc.status_code >= 500)
    )


def backoff_delay(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Full-jitter exponential backoff: uniform in ``[0, min(cap, base * 2**(attempt-1))]``."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(0, ceiling)


def _body_text(body: PaymentEvent | PaymentMethodUpdate | str | bytes) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return dumps(body).encode("utf-8")


def _interpret(response: httpx.Response, attempts: int) -> RecoverResponse:
    """Recover's answer as a :class:`RecoverResponse`, or the :class:`RecoverAPIError` it means."""
    data: Any
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        data = None
    payload: Mapping[str, Any] = data if isinstance(data, dict) else {}
    message = str(payload.get("message") or response.reason_phrase or "")
    request_id = payload.get("request_id")
    request_id = str(request_id) if request_id is not None else None
    if 200 <= response.status_code < 300:
        return RecoverResponse(response.status_code, message, request_id, attempts)
    raise RecoverAPIError(
        f"Recover answered {response.status_code} to {response.request.url.path}: "
        f"{message or response.text[:200]}",
        status_code=response.status_code,
        errors=payload.get("errors"),
        request_id=request_id,
    )


def _retry_after(response: httpx.Response | None) -> float | None:
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class _Base:
    def __init__(
        self,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_attempts: int = 3,
        backoff_base: float = 0.5,
        backoff_cap: float = 10.0,
        max_connections: int = 20,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._headers = {
            "x-api-key": api_key,
            "content-type": "application/json",
            "accept": "application/json",
            "user-agent": "recoverkit",
        }
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30,
        )

    def _url(self, endpoint: Endpoint) -> str:
        return f"{self.base_url}/{endpoint}"

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        hinted = _retry_after(response)
        if hinted is not None:
            return min(hinted, self.backoff_cap)
        return backoff_delay(attempt, base=self.backoff_base, cap=self.backoff_cap)

    def _policy(
        self, keep_trying: Callable[[], bool] | None, last: list[httpx.Response | None]
    ) -> dict[str, Any]:
        """Tenacity's arguments: which errors to retry, how often, how long to wait between."""

        def retry(exc: BaseException) -> bool:
            return (
                isinstance(exc, RecoverAPIError)
                and is_retryable(exc)
                and (keep_trying is None or keep_trying())
            )

        def wait(state: RetryCallState) -> float:
            return self._delay(state.attempt_number, last[0])

        return {
            "stop": stop_after_attempt(self.max_attempts),
            "retry": retry_if_exception(retry),
            "wait": wait,
            "reraise": True,
        }

    @staticmethod
    def _request_headers(idempotency_key: str | None) -> dict[str, str] | None:
        return None if idempotency_key is None else {"idempotency-key": idempotency_key}

    def __repr__(self) -> str:  # the API key never appears
        return f"<{type(self).__name__} {self.base_url}>"


def _unreachable(exc: httpx.TransportError, url: str) -> RecoverUnreachableError:
    return RecoverUnreachableError(
        f"no answer from Recover at {url}: {type(exc).__name__}: {exc}", status_code=0
    )


class RecoverClient(_Base):
    """Synchronous client; thread-safe (one shared connection pool). Use as a context manager."""

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._sleep = sleep
        self._http = httpx.Client(
            headers=self._headers, timeout=self._timeout, limits=self._limits, transport=transport
        )

    def send(
        self,
        endpoint: Endpoint,
        body: PaymentEvent | PaymentMethodUpdate | str | bytes,
        *,
        idempotency_key: str | None = None,
        keep_trying: Callable[[], bool] | None = None,
        on_call: CallObserver | None = None,
    ) -> RecoverResponse:
        """POST ``body`` to ``{base}/{endpoint}``, retrying what may succeed later."""
        content, url = _body_text(body), self._url(endpoint)
        headers = self._request_headers(idempotency_key)
        last: list[httpx.Response | None] = [None]
        attempt = 0

        def once() -> RecoverResponse:
            nonlocal attempt
            attempt += 1
            last[0] = None
            try:
                last[0] = response = self._http.post(url, content=content, headers=headers)
            except httpx.TransportError as exc:
                if on_call is not None:
                    on_call(endpoint, 0)
                raise _unreachable(exc, url) from None
            if on_call is not None:
                on_call(endpoint, response.status_code)
            return _interpret(response, attempt)

        retrying = Retrying(sleep=self._sleep, **self._policy(keep_trying, last))
        return retrying(once)

    def send_payment(self, event: PaymentEvent) -> RecoverResponse:
        """``POST {base}/payments``."""
        return self.send("payments", event)

    def send_payment_method_update(self, update: PaymentMethodUpdate) -> RecoverResponse:
        """``POST {base}/payment_method_updates``."""
        return self.send("payment_method_updates", update)

    def close(self) -> None:
        """Close pooled connections."""
        self._http.close()

    def __enter__(self) -> RecoverClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncRecoverClient(_Base):
    """Asynchronous client with the same behaviour as :class:`RecoverClient`."""

    def __init__(
        self, *, transport: httpx.AsyncBaseTransport | None = None, **options: Any
    ) -> None:
        super().__init__(**options)
        self._http = httpx.AsyncClient(
            headers=self._headers, timeout=self._timeout, limits=self._limits, transport=transport
        )

    async def send(
        self,
        endpoint: Endpoint,
        body: PaymentEvent | PaymentMethodUpdate | str | bytes,
        *,
        idempotency_key: str | None = None,
        keep_trying: Callable[[], bool] | None = None,
        on_call: CallObserver | None = None,
    ) -> RecoverResponse:
        """POST ``body`` to ``{base}/{endpoint}``, retrying what may succeed later."""
        content, url = _body_text(body), self._url(endpoint)
        headers = self._request_headers(idempotency_key)
        last: list[httpx.Response | None] = [None]
        attempt = 0

        async def once() -> RecoverResponse:
            nonlocal attempt
            attempt += 1
            last[0] = None
            try:
                last[0] = response = await self._http.post(url, content=content, headers=headers)
            except httpx.TransportError as exc:
                if on_call is not None:
                    on_call(endpoint, 0)
                raise _unreachable(exc, url) from None
            if on_call is not None:
                on_call(endpoint, response.status_code)
            return _interpret(response, attempt)

        retrying = AsyncRetrying(sleep=asyncio.sleep, **self._policy(keep_trying, last))
        return await retrying(once)

    async def send_payment(self, event: PaymentEvent) -> RecoverResponse:
        """``POST {base}/payments``."""
        return await self.send("payments", event)

    async def send_payment_method_update(self, update: PaymentMethodUpdate) -> RecoverResponse:
        """``POST {base}/payment_method_updates``."""
        return await self.send("payment_method_updates", update)

    async def aclose(self) -> None:
        """Close pooled connections."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncRecoverClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def error_summary(exc: RecoverAPIError) -> str:
    """One line for the outbox's ``last_error`` column: status, message and Recover's errors."""
    errors = "" if exc.errors is None else f" errors={json.dumps(exc.errors, default=str)[:500]}"
    return f"{exc.status_code}: {exc}{errors}"
