"""How the sandbox calls the merchant, exactly as Recover would: RetryStatus and signed webhooks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from recoverkit.errors import RecoverkitError, WireValidationError
from recoverkit.sandbox.server.settings import SandboxSettings
from recoverkit.schema import RetryStatusResponse, parse
from recoverkit.signing import signed_headers

__all__ = ["InvoiceUnknownError", "MerchantClient", "MerchantUnavailableError", "WebhookOutcome"]

#: ``X-Butter-Webhook-Type`` values the sandbox sends (Butter documents none for Recover).
WEBHOOK_TYPES = {
    "retry_results": "recover.retry_results",
    "end_of_dunning": "recover.end_of_dunning",
}


class MerchantUnavailableError(RecoverkitError):
    """RetryStatus could not be answered now (network, 401, 429, 5xx, bad body): try later."""


class InvoiceUnknownError(RecoverkitError):
    """The merchant answered RetryStatus 404: it does not know the invoice."""


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    """One delivery attempt's result."""

    delivered: bool
    status: int | None
    error: str | None = None


class MerchantClient:
    """Calls the merchant's endpoints with the configured credentials."""

    def __init__(self, settings: SandboxSettings, *, transport: httpx.BaseTransport | None = None):
        self.settings = settings
        self._http = httpx.Client(
            base_url=settings.merchant_url,
            timeout=httpx.Timeout(10.0, connect=5.0),
            headers={"x-api-key": settings.merchant_api_key.get_secret_value()},
            transport=transport,
        )

    def retry_status(self, invoice_id: str, custom: dict[str, Any] | None) -> RetryStatusResponse:
        """``POST /retry/{invoice_id}``: may the sandbox retry, for how much, with what?"""
        try:
            response = self._http.post(
                f"/retry/{invoice_id}", json={"custom": custom} if custom else {}
            )
        except httpx.TransportError as exc:
            raise MerchantUnavailableError(f"RetryStatus for {invoice_id}: {exc}") from None
        if response.status_code == 404:
            raise InvoiceUnknownError(f"the merchant does not know invoice {invoice_id}")
        if response.status_code != 200:
            raise MerchantUnavailableError(
                f"RetryStatus for {invoice_id} answered {response.status_code}: "
                f"{response.text[:200]}"
            )
        try:
            return parse(RetryStatusResponse, response.content)
        except WireValidationError as exc:
            raise MerchantUnavailableError(f"RetryStatus for {invoice_id}: {exc}") from None

    def deliver(self, kind: str, body: str, dedupe_id: str, now: datetime) -> WebhookOutcome:
        """POST one signed webhook; only a 200 counts as delivered (Butter's documented ack)."""
        path = (
            self.settings.retry_results_path
            if kind == "retry_results"
            else self.settings.end_of_dunning_path
        )
        expiry = int((now + self.settings.webhook_ttl).timestamp())
        headers = signed_headers(
            body,
            secret=self.settings.signing_secret.get_secret_value(),
            expiry=expiry,
            dedupe_id=dedupe_id,
            event_type=WEBHOOK_TYPES[kind],
        )
        try:
            response = self._http.post(path, content=body.encode(), headers=headers)
        except httpx.TransportError as exc:
            return WebhookOutcome(False, None, str(exc) or type(exc).__name__)
        ok = response.status_code == 200
        return WebhookOutcome(ok, response.status_code, None if ok else response.text[:300])

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()


def new_dedupe_id() -> str:
    """32 hex characters, like Butter's sample."""
    return uuid.uuid4().hex
