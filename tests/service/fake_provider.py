"""A small PSP for the service tests: JSON webhooks signed with HMAC-SHA256 in a header.

Wire format (invented, Stripe-like): header ``X-Fake-Signature: t=<epoch>,v1=<hex>`` where
``hex = HMAC_SHA256(secret, "<t>.<body>")``; body ``{"id", "type", "created", "data"}`` or
``{"events": [...]}`` for a batch. ``data`` holds the invoice facts; ``fail_translate: true``
makes ``translate`` raise :class:`MissingFactError` (a PSP API outage) to exercise retries.

Several event types for one attempt (``charge.failed`` and ``invoice.payment_failed`` naming the
same ``charge``) translate to one message dedupe key, like the real Stripe plugin must.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import SecretStr
from pydantic_settings import SettingsConfigDict

from recoverkit import hookimpl
from recoverkit.errors import (
    MalformedWebhookError,
    MissingFactError,
    RequestNotSentError,
    SignatureError,
)
from recoverkit.hookspecs import PaymentAmendment
from recoverkit.provider import (
    Capability,
    EndOfDunningPolicy,
    InvoiceRef,
    Provider,
    ProviderEvent,
    ProviderSettings,
    RecoverMessage,
    Translation,
    WebhookRequest,
)
from recoverkit.schema import (
    EndOfDunning,
    PaymentEvent,
    PaymentMethodUpdate,
    RetryResults,
    RetryStatusResponse,
    to_major,
)

TEST_SECRET = "whsec_fake_test_secret"
SIGNATURE_HEADER = "X-Fake-Signature"


class FakeSettings(ProviderSettings):
    """``RECOVERKIT_FAKE_*``."""

    model_config = SettingsConfigDict(env_prefix="RECOVERKIT_FAKE_", extra="forbid", frozen=True)

    webhook_secret: SecretStr = SecretStr(TEST_SECRET)
    tolerance: int = 300


def fake_signature(body: bytes, secret: str, timestamp: int) -> str:
    digest = hmac.new(
        secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def charge_event(
    event_id: str,
    *,
    invoice: str = "inv_1",
    charge: str | None = None,
    success: bool = False,
    created: int = 1_764_547_200,
    amount: int = 1999,
    event_type: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A webhook body for one charge attempt."""
    return {
        "id": event_id,
        "type": event_type or ("charge.succeeded" if success else "charge.failed"),
        "created": created,
        "data": {
            "invoice": invoice,
            "charge": charge or f"ch_{event_id}",
            "customer": "cus_1",
            "subscription": "sub_1",
            "amount": amount,
            "currency": "usd",
            "success": success,
            "payment_method": "pm_1",
            **extra,
        },
    }


class FakeProvider(Provider):
    """The test PSP. Records reconcile / end_dunning / retry_status calls."""

    name: ClassVar[str] = "fake"
    capabilities = frozenset(
        {
            Capability.WEBHOOKS,
            Capability.RETRY_STATUS,
            Capability.RECONCILE,
            Capability.END_DUNNING,
            Capability.SIGN_TEST_WEBHOOK,
            Capability.BACKFILL,
        }
    )
    #: ``backfill`` history, shared by every instance (the CLI builds its own instance).
    history: ClassVar[list[dict[str, Any]]] = []
    #: Raise after yielding this many events (once), to test resuming; cursors seen are recorded.
    fail_after: ClassVar[int | None] = None
    cursors_seen: ClassVar[list[str | None]] = []
    settings_class = FakeSettings
    webhook_ack: ClassVar[tuple[int, str, bytes]] = (200, "text/plain", b"fake-ok")

    def __init__(self, settings: ProviderSettings | None = None) -> None:
        super().__init__(settings)
        self.calls: list[tuple[str, str]] = []
        self.closed_invoices: set[str] = set()
        self.translate_hook: Callable[[ProviderEvent], None] | None = None
        self._lock = threading.Lock()

    @property
    def _settings(self) -> FakeSettings:
        assert isinstance(self.settings, FakeSettings)
        return self.settings

    def verify(self, request: WebhookRequest) -> None:
        header = request.header(SIGNATURE_HEADER)
        if not header:
            raise SignatureError(f"fake: missing {SIGNATURE_HEADER} header")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            timestamp = int(parts["t"])
            given = parts["v1"]
        except (KeyError, ValueError):
            raise SignatureError("fake: signature header is malformed") from None
        age = request.received_at.timestamp() - timestamp
        if abs(age) > self._settings.tolerance:
            raise SignatureError(f"fake: signature timestamp is {int(age)} s old")
        expected = fake_signature(
            request.body, self._settings.webhook_secret.get_secret_value(), timestamp
        )
        if not hmac.compare_digest(expected.encode(), f"t={timestamp},v1={given}".encode()):
            raise SignatureError("fake: signature does not match")

    def parse(self, request: WebhookRequest) -> list[ProviderEvent]:
        data = request.json()
        items = data.get("events") if isinstance(data, dict) and "events" in data else [data]
        if not isinstance(items, list):
            raise MalformedWebhookError("fake: events must be a list")
        events = []
        for item in items:
            if not isinstance(item, dict) or not {"id", "type", "created", "data"} <= set(item):
                raise MalformedWebhookError("fake: an event needs id, type, created and data")
            events.append(
                ProviderEvent(
                    provider=self.name,
                    dedupe_key=str(item["id"]),
                    type=str(item["type"]),
                    occurred_at=datetime.fromtimestamp(int(item["created"]), UTC),
                    data=item["data"],
                    object_id=item["data"].get("charge"),
                )
            )
        return events

    def translate(self, event: ProviderEvent) -> Translation:
        if self.translate_hook is not None:
            self.translate_hook(event)
        d = event.data
        if d.get("fail_translate"):
            raise MissingFactError(
                "fake: PSP API down", provider=self.name, object_id=event.object_id
            )
        if event.type == "payment_method.updated":
            update = PaymentMethodUpdate(
                customer_id=d["customer"], payment_method_id=d["payment_method"], reason="updated"
            )
            return Translation(event, (RecoverMessage(update, f"pm:{event.dedupe_key}"),))
        if not event.type.startswith(("charge.", "invoice.payment_")):
            return Translation.ignore(event, f"{event.type} carries nothing for Recover")
        when = event.occurred_at
        success = bool(d["success"])
        payment = PaymentEvent.model_validate(
            {
                "customer": {"id": d["customer"], "psp_id": d["customer"]},
                "subscription": {
                    "id": d["subscription"],
                    "start_date": datetime(2026, 1, 1, tzinfo=UTC),
                },
                "invoice": {"id": d["invoice"], "created_at": when},
                "transactions": [
                    {
                        "id": d["charge"],
                        "psp_transaction_id": d["charge"],
                        "psp": "stripe",
                        "acquirer_country": "US",
                        "amount": to_major(int(d["amount"]), d["currency"], psp="stripe"),
                        "currency": d["currency"].upper(),
                        "funding_source": "CREDIT",
                        "payment_method_id": d["payment_method"],
                        "psp_transaction_created_at": when,
                        "scheme": "visa",
                        "success": success,
                        "outcome": {
                            "raw_response_message": "approved" if success else "insufficient_funds",
                            **({} if success else {"response_type": "soft_decline"}),
                        },
                    }
                ],
            }
        )
        return Translation(event, (RecoverMessage(payment, f"attempt:{d['charge']}"),))

    def retry_status(self, invoice: InvoiceRef) -> RetryStatusResponse:
        self._record("retry_status", invoice.invoice_id)
        if invoice.invoice_id in self.closed_invoices:
            return RetryStatusResponse(retry=False, reason="User Cancellation")
        return RetryStatusResponse(retry=True, amount=invoice.amount or Decimal(0))

    def reconcile(self, result: RetryResults, invoice: InvoiceRef) -> None:
        self._record("reconcile", invoice.invoice_id)

    def end_dunning(
        self, notice: EndOfDunning, invoice: InvoiceRef, policy: EndOfDunningPolicy
    ) -> None:
        self._record(f"end_dunning:{policy}", invoice.invoice_id)

    def backfill(
        self, since: datetime, until: datetime, cursor: str | None = None
    ) -> Iterator[tuple[ProviderEvent, str]]:
        type(self).cursors_seen.append(cursor)
        start = int(cursor) + 1 if cursor else 0
        for index in range(start, len(self.history)):
            if type(self).fail_after is not None and index - start >= type(self).fail_after:
                type(self).fail_after = None
                raise RequestNotSentError("fake: list API timed out", provider=self.name)
            item = self.history[index]
            (event,) = self.parse(WebhookRequest(json.dumps(item).encode()))
            if since <= event.occurred_at < until:
                yield event, str(index)

    def sign_test_webhook(
        self, body: bytes, *, timestamp: datetime | None = None
    ) -> WebhookRequest:
        ts = int((timestamp or datetime.now(UTC)).timestamp())
        secret = self._settings.webhook_secret.get_secret_value()
        return WebhookRequest(
            body=body,
            headers={
                SIGNATURE_HEADER: fake_signature(body, secret, ts),
                "Content-Type": "application/json",
            },
        )

    def _record(self, what: str, invoice_id: str) -> None:
        with self._lock:
            self.calls.append((what, invoice_id))


def signed(
    body: dict[str, Any] | bytes, *, secret: str = TEST_SECRET, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    """``(raw body, headers)`` for posting a fake webhook."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    ts = int(datetime.now(UTC).timestamp()) if timestamp is None else timestamp
    return raw, {
        SIGNATURE_HEADER: fake_signature(raw, secret, ts),
        "Content-Type": "application/json",
    }


class FakePlugin:
    """Registers :class:`FakeProvider`."""

    @hookimpl
    def register_providers(self, register: Callable[[type[Provider]], None]) -> None:
        register(FakeProvider)


class MerchantHooks:
    """The merchant's hooks: a veto list, an amendment, and records of the notifications."""

    def __init__(self) -> None:
        self.vetoed: set[str] = set()
        self.results: list[str] = []
        self.ended: list[str] = []

    @hookimpl
    def retry_veto(self, invoice: InvoiceRef, status: RetryStatusResponse) -> str | None:
        return "merchant veto" if invoice.invoice_id in self.vetoed else None

    @hookimpl
    def amend_payment_event(
        self, event: ProviderEvent, payment: PaymentEvent
    ) -> PaymentAmendment | None:
        return PaymentAmendment(custom={"source": "fake-tests"})

    @hookimpl
    def on_retry_result(self, result: RetryResults, invoice: InvoiceRef) -> None:
        self.results.append(invoice.invoice_id)

    @hookimpl
    def on_end_of_dunning(self, notice: EndOfDunning, invoice: InvoiceRef) -> None:
        self.ended.append(invoice.invoice_id)


plugin = FakePlugin()
