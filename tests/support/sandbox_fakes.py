"""Sandbox test doubles: a scripted issuer behind a provider, a recording merchant."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from recoverkit import (
    Capability,
    Provider,
    RetryAttempt,
    RetryInstruction,
)
from recoverkit.declines import DeclineCategory, NormalizedDecline, ResponseType
from recoverkit.signing import verify

START = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SIGNING_SECRET = "test_signing_secret"


def insufficient_funds() -> NormalizedDecline:
    return NormalizedDecline(
        DeclineCategory.INSUFFICIENT_FUNDS,
        ResponseType.SOFT,
        "insufficient_funds",
        iso_response_code="51",
        network="visa",
    )


@dataclass
class ScriptedIssuer:
    """Answers each charge from a script: True approves, a decline declines, an exception raises."""

    script: list[bool | NormalizedDecline | Exception] = field(default_factory=list)
    calls: list[RetryInstruction] = field(default_factory=list)
    charged: dict[str, RetryAttempt] = field(default_factory=dict)

    def charge(self, instruction: RetryInstruction) -> RetryAttempt:
        self.calls.append(instruction)
        if instruction.idempotency_key in self.charged:  # the PSP's idempotent replay
            return self.charged[instruction.idempotency_key]
        step = self.script.pop(0) if self.script else insufficient_funds()
        if isinstance(step, Exception):
            raise step
        success = step is True
        result = RetryAttempt(
            success=success,
            psp_transaction_id=f"ch_retry_{len(self.charged) + 1}",
            amount=instruction.amount,
            currency=instruction.currency,
            payment_method_id=instruction.payment_method_id,
            decline=None if success else step,  # type: ignore[arg-type]
        )
        self.charged[instruction.idempotency_key] = result
        return result


class ScriptedProvider(Provider):
    name = "stripe"
    capabilities = frozenset({Capability.WEBHOOKS, Capability.EXECUTE_RETRY})

    def __init__(self, issuer: ScriptedIssuer) -> None:
        super().__init__()
        self.issuer = issuer

    def execute_retry(self, instruction: RetryInstruction) -> RetryAttempt:
        return self.issuer.charge(instruction)


@dataclass
class RecordingMerchant:
    """The merchant's endpoints: RetryStatus answers and the webhooks it received (verified)."""

    retry_answers: dict[str, Any] = field(default_factory=dict)
    webhook_status: list[int] = field(default_factory=list)
    received: list[tuple[str, dict[str, Any], dict[str, str]]] = field(default_factory=list)
    retry_status_calls: list[str] = field(default_factory=list)
    now: Callable[[], datetime] = lambda: START

    def handler(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["x-api-key"] == "merchant_key"
        path = request.url.path
        if path.startswith("/retry/"):
            invoice_id = path.removeprefix("/retry/")
            self.retry_status_calls.append(invoice_id)
            answer = self.retry_answers.get(invoice_id, {"retry": True})
            if isinstance(answer, int):
                return httpx.Response(answer, json={"detail": "no"})
            return httpx.Response(200, json=answer)
        verify(
            request.content,
            dict(request.headers),
            [SIGNING_SECRET],
            now=self.now().timestamp(),
        )
        status = self.webhook_status.pop(0) if self.webhook_status else 200
        kind = "retry_results" if path.endswith("retry-results") else "end_of_dunning"
        self.received.append((kind, json.loads(request.content), dict(request.headers)))
        return httpx.Response(status, json={"detail": "Event delivered successfully"})

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [body for k, body, _ in self.received if k == kind]


def failed_payment(invoice: str = "inv_1", **transaction: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": f"ts_{invoice}",
        "psp_transaction_id": f"ch_{invoice}",
        "psp": "stripe",
        "acquirer_country": "US",
        "amount": 19.99,
        "currency": "USD",
        "funding_source": "CREDIT",
        "payment_method_id": "pm_1",
        "psp_transaction_created_at": START.isoformat(),
        "scheme": "visa",
        "success": False,
        "outcome": {"raw_response_message": "insufficient_funds", "response_type": "soft_decline"},
    }
    body.update(transaction)
    return {
        "customer": {"id": "cus_1"},
        "subscription": {"id": "sub_1", "start_date": "2025-01-01T00:00:00Z"},
        "invoice": {"id": invoice, "created_at": START.isoformat()},
        "transactions": [body],
    }
