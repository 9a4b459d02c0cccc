"""A small, complete provider used by the core's own tests (and shown in docs/writing-a-plugin.md).

Its "PSP" signs JSON webhooks like Stripe does: ``Example-Signature: t=<unix>,v1=<hex>`` where the
hex is HMAC-SHA256 of ``"<t>." + body``. Its reconcile/end_dunning write to an in-memory ledger.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from recoverkit import (
    Capability,
    ConfigurationError,
    EndOfDunningPolicy,
    InvoiceRef,
    MalformedWebhookError,
    Provider,
    ProviderEvent,
    ProviderSettings,
    RecoverMessage,
    SignatureError,
    Translation,
    WebhookRequest,
    hookimpl,
)
from recoverkit.declines import Advice, DeclineTable, normalize
from recoverkit.schema import (
    Customer,
    EndOfDunning,
    Invoice,
    Outcome,
    PaymentEvent,
    PaymentMethodUpdate,
    RetryResults,
    Subscription,
    Transaction,
    to_major,
)

HERE = Path(__file__).parent
SAMPLES = HERE / "example_samples"
TEST_SECRET = "example_test_secret"
DECLINES = DeclineTable.from_csv(HERE / "example_declines.csv")


class ExampleSettings(ProviderSettings):
    """Settings of the example provider."""

    model_config = SettingsConfigDict(env_prefix="RECOVERKIT_EXAMPLE_", extra="forbid")

    webhook_secrets: list[SecretStr] = Field(default_factory=list)
    tolerance_seconds: int = 300


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The ``Example-Signature`` header value."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


class ExampleProvider(Provider):
    """The example PSP."""

    name = "example"
    settings_class = ExampleSettings
    capabilities = frozenset(
        {
            Capability.WEBHOOKS,
            Capability.SIGN_TEST_WEBHOOK,
            Capability.RECONCILE,
            Capability.END_DUNNING,
        }
    )
    #: Shared "PSP state" that reconcile and end_dunning write (tests read it).
    ledger: ClassVar[dict[str, dict[str, Any]]] = {}

    @property
    def _settings(self) -> ExampleSettings:
        assert isinstance(self.settings, ExampleSettings)
        return self.settings

    @classmethod
    def for_demo(cls) -> Provider:
        return cls.with_webhook_secret(TEST_SECRET)

    def verify(self, request: WebhookRequest) -> None:
        secrets = [s.get_secret_value() for s in self._settings.webhook_secrets]
        if not secrets:
            raise ConfigurationError(
                "example: no webhook secret configured (RECOVERKIT_EXAMPLE_WEBHOOK_SECRETS)"
            )
        header = request.header("Example-Signature")
        if not header:
            raise SignatureError("example: missing Example-Signature header")
        parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
        try:
            timestamp = int(parts["t"])
        except (KeyError, ValueError):
            raise SignatureError("example: Example-Signature has no timestamp") from None
        age = request.received_at.timestamp() - timestamp
        if abs(age) > self._settings.tolerance_seconds:
            raise SignatureError(f"example: signature timestamp is {int(age)} s old")
        given = parts.get("v1", "")
        if not any(
            hmac.compare_digest(sign(request.body, s, timestamp).split("v1=")[1], given)
            for s in secrets
        ):
            raise SignatureError("example: signature does not match any configured secret")

    def parse(self, request: WebhookRequest) -> list[ProviderEvent]:
        payload = request.json()
        if not isinstance(payload, dict) or not {"id", "type", "created", "data"} <= set(payload):
            raise MalformedWebhookError("example: body must hold id, type, created and data")
        return [
            ProviderEvent(
                provider=self.name,
                dedupe_key=str(payload["id"]),
                type=str(payload["type"]),
                occurred_at=datetime.fromtimestamp(int(payload["created"]), UTC),
                data=payload["data"],
                object_id=payload["data"].get("id"),
            )
        ]

    def translate(self, event: ProviderEvent) -> Translation:
        try:
            return self._translate(event, event.data)
        except KeyError as exc:
            raise MalformedWebhookError(
                f"example: event {event.dedupe_key} ({event.type}) lacks field {exc}"
            ) from None

    def _translate(self, event: ProviderEvent, obj: Mapping[str, Any]) -> Translation:
        if event.type in ("charge.failed", "charge.succeeded"):
            return self._translate_charge(event, obj)
        if event.type == "card.updated":
            update = PaymentMethodUpdate(
                customer_id=obj["customer_id"],
                psp_customer_id=obj["customer_id"],
                payment_method_id=obj["payment_method"],
                reason=obj.get("reason", "updated"),
            )
            return Translation(event, (RecoverMessage(update, f"{event.dedupe_key}:pmu"),))
        return Translation.ignore(event, f"{event.type} carries nothing for Recover")

    def _translate_charge(self, event: ProviderEvent, obj: Mapping[str, Any]) -> Translation:
        success = event.type == "charge.succeeded"
        card = obj["card"]
        decline = None
        if not success:
            decline = normalize(
                DECLINES,
                obj["failure_code"],
                message=obj.get("failure_message"),
                mastercard_advice_code=obj.get("advice_code"),
                advice=Advice(obj["advice"]) if obj.get("advice") else None,
                network=card["network"],
            )
        created = datetime.fromtimestamp(int(obj["created"]), UTC)
        payment = PaymentEvent(
            customer=Customer(id=obj["customer_id"], psp_id=obj["customer_id"]),
            subscription=Subscription(
                id=obj["subscription_id"],
                start_date=datetime.fromtimestamp(int(obj["subscription_start"]), UTC),
            ),
            invoice=Invoice(id=obj["invoice_id"], created_at=created),
            transactions=[
                Transaction(
                    id=obj["id"],
                    psp_transaction_id=obj["id"],
                    psp="stripe",  # the example PSP poses as a listed PSP name
                    acquirer_country="US",
                    amount=to_major(int(obj["amount"]), obj["currency"]),
                    currency=obj["currency"],
                    funding_source=card["funding"],
                    payment_method_id=card["payment_method"],
                    psp_transaction_created_at=created,
                    scheme=card["network"],
                    success=success,
                    outcome=Outcome(
                        raw_response_message="approved" if success else obj["failure_code"],
                        psp_response_message=obj.get("failure_message"),
                        response_type=decline.response_type.value if decline else None,
                    ),
                    issuer_country=card.get("country"),
                )
            ],
        )
        return Translation(event, (RecoverMessage(payment, event.dedupe_key, decline),))

    def sign_test_webhook(
        self, body: bytes, *, timestamp: datetime | None = None
    ) -> WebhookRequest:
        secrets = self._settings.webhook_secrets
        secret = secrets[0].get_secret_value() if secrets else TEST_SECRET
        at = int((timestamp or datetime.now(UTC)).timestamp())
        return WebhookRequest(
            body,
            {"Content-Type": "application/json", "Example-Signature": sign(body, secret, at)},
        )

    def sample_webhooks(self) -> list[WebhookRequest]:
        return [self.sign_test_webhook(p.read_bytes()) for p in sorted(SAMPLES.glob("*.json"))]

    def reconcile(self, result: RetryResults, invoice: InvoiceRef) -> None:
        entry = self.ledger.setdefault(invoice.invoice_id, {})
        if result.success:
            entry["status"] = "paid"
        entry.setdefault("butter_ids", [])
        if result.butter_id not in entry["butter_ids"]:
            entry["butter_ids"].append(result.butter_id)

    def end_dunning(
        self, notice: EndOfDunning, invoice: InvoiceRef, policy: EndOfDunningPolicy
    ) -> None:
        entry = self.ledger.setdefault(invoice.invoice_id, {})
        if not notice.recovered and policy is EndOfDunningPolicy.MARK_UNCOLLECTIBLE:
            entry["status"] = "uncollectible"


class ExamplePlugin:
    """The plugin object: registers the provider."""

    @hookimpl
    def register_providers(self, register: Any) -> None:
        register(ExampleProvider)


def sample_body(name: str) -> bytes:
    """The raw body of a bundled sample."""
    return (SAMPLES / f"{name}.json").read_bytes()


def event_body(**overrides: Any) -> bytes:
    """A charge.failed body with ``overrides`` applied to the top level."""
    payload = json.loads(sample_body("charge_failed"))
    payload.update(overrides)
    return json.dumps(payload).encode()
