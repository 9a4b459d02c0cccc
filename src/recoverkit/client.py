"""RecoverClient: send Payments events and Payment Method Updates to Recover (httpx, sync + async).

- Authenticates with the ``x-api-key`` header (Butter's scheme for merchant → Recover calls).
- One pooled, keep-alive connection set per client; explicit connect/read/write/pool timeouts.
- Retries 5xx, 429 and transport errors with exponential backoff and full jitter, a bounded number
  of times; never retries 400, 403, 404 or 415 — those raise :class:`RecoverAPIError` at once,
  carrying Recover's ``errors`` so the outbox can dead-letter the message with the reason.
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

from recoverkit.errors import RecoverAPIError
from recoverkit.schema import PaymentEvent, PaymentMethodUpdate, dumps

__all__ = [
    "DEFAULT_BASE_URL",
    "AsyncRecoverClient",
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
        self, endpoint: Endpoint, body: PaymentEvent | PaymentMethodUpdate | str | bytes
    ) -> RecoverResponse:
        """POST ``body`` to ``{base}/{endpoint}``, retrying what may succeed later."""
        content, url = _body_text(body), self._url(endpoint)
        for attempt in range(1, self.max_attempts + 1):
            response: httpx.Response | None = None
            try:
                response = self._http.post(url, content=content)
                return _interpret(response, attempt)
            except httpx.TransportError as exc:
                error: RecoverAPIError = _unreachable(exc, url)
            except RecoverAPIError as exc:
                error = exc
            if not is_retryable(error) or attempt == self.max_attempts:
                raise error
            self._sleep(self._delay(attempt, response))
        raise AssertionError("unreachable")  # pragma: no cover

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
        self, endpoint: Endpoint, body: PaymentEvent | PaymentMethodUpdate | str | bytes
    ) -> RecoverResponse:
        """POST ``body`` to ``{base}/{endpoint}``, retrying what may succeed later."""
        content, url = _body_text(body), self._url(endpoint)
        for attempt in range(1, self.max_attempts + 1):
            response: httpx.Response | None = None
            try:
                response = await self._http.post(url, content=content)
                return _interpret(response, attempt)
            except httpx.TransportError as exc:
                error: RecoverAPIError = _unreachable(exc, url)
            except RecoverAPIError as exc:
                error = exc
            if not is_retryable(error) or attempt == self.max_attempts:
                raise error
            await asyncio.sleep(self._delay(attempt, response))
        raise AssertionError("unreachable")  # pragma: no cover

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
