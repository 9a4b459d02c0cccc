"""The Stripe :class:`~recoverkit.provider.Provider`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from importlib.resources import files
from typing import Any, ClassVar, cast

import stripe

from recoverkit.errors import ConfigurationError, SignatureError
from recoverkit.provider import (
    Capability,
    DoctorCheck,
    EndOfDunningPolicy,
    InvoiceRef,
    Provider,
    ProviderEvent,
    RetryAttempt,
    RetryInstruction,
    Translation,
    WebhookRequest,
)
from recoverkit.schema import EndOfDunning, RetryResults, RetryStatusResponse
from recoverkit_stripe import backfill as _backfill
from recoverkit_stripe import reconcile as _reconcile
from recoverkit_stripe import retry as _retry
from recoverkit_stripe.currencies import STRIPE_EXPONENTS
from recoverkit_stripe.doctor import doctor_checks
from recoverkit_stripe.facts import LruCache, StripeFacts
from recoverkit_stripe.settings import StripeSettings
from recoverkit_stripe.translate import BillingResolver, translate_event
from recoverkit_stripe.webhooks import SIGNATURE_HEADER, parse_events, sign, verify_signature

__all__ = ["TEST_WEBHOOK_SECRET", "StripeProvider"]

#: Signs ``sample_webhooks`` when no webhook secret is configured (documented, not a real secret).
TEST_WEBHOOK_SECRET = "whsec_recoverkit_demo"  # noqa: S105 - a published demo value
_SAMPLES = (
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "payment_method.automatically_updated",
)


class StripeProvider(Provider):
    """Stripe: snapshot webhooks in, ``Invoice.pay`` / PaymentIntent confirm out."""

    name: ClassVar[str] = "stripe"
    currency_exponents = STRIPE_EXPONENTS  # where Stripe differs from ISO 4217
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    settings_class: ClassVar[type[StripeSettings]] = StripeSettings

    def __init__(
        self,
        settings: StripeSettings | None = None,
        *,
        billing_context: BillingResolver | None = None,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        super().__init__(settings)
        #: Supplies billing facts for charges that pay no invoice (the ``billing_context`` hook).
        self.billing_context = billing_context
        self.cache = LruCache(self.config.cache_size)
        self._http_client = http_client
        self._client: stripe.StripeClient | None = None

    @property
    def config(self) -> StripeSettings:
        """The settings, typed."""
        assert isinstance(self.settings, StripeSettings)
        return self.settings

    # -- the API client ------------------------------------------------------------------------

    @property
    def client(self) -> stripe.StripeClient:
        """A :class:`stripe.StripeClient` on the configured base URL and pinned API version."""
        if self._client is None:
            key = self.config.api_key
            if key is None:
                raise ConfigurationError(
                    "stripe: RECOVERKIT_STRIPE_API_KEY is not set; it is needed to fetch facts "
                    "webhooks lack and to retry, reconcile and backfill"
                )
            http_client = self._http_client or stripe.RequestsClient(timeout=self.config.timeout)
            self._client = stripe.StripeClient(
                key.get_secret_value(),
                stripe_version=self.config.api_version,
                base_addresses={"api": self.config.api_base},
                max_network_retries=self.config.max_network_retries,
                http_client=http_client,
            )
        return self._client

    @property
    def facts(self) -> StripeFacts:
        """Cached API lookups for :mod:`.translate` (the client is built on first use)."""
        return StripeFacts(self._lazy_client, self.cache, source=self.facts_source)

    @property
    def _lazy_client(self) -> stripe.StripeClient:
        # Built on first attribute access: a call that needs no API (a PaymentMethodUpdate, an
        # end_dunning with policy "none") works without an API key.
        return cast(stripe.StripeClient, _LazyClient(self))

    # -- inbound -------------------------------------------------------------------------------

    def _secrets(self) -> list[str]:
        return [secret.get_secret_value() for secret in self.config.webhook_secrets]

    def verify(self, request: WebhookRequest) -> None:
        """Check ``Stripe-Signature`` with the SDK against every configured secret."""
        verify_signature(
            request.body,
            request.header(SIGNATURE_HEADER),
            self._secrets(),
            self.config.webhook_tolerance,
            now=request.received_at.timestamp(),
        )

    def parse(self, request: WebhookRequest) -> list[ProviderEvent]:
        """The snapshot event; its dedupe key is the Stripe event id."""
        return parse_events(request)

    def translate(self, event: ProviderEvent) -> Translation:
        """See :mod:`recoverkit_stripe.translate` for which event is the source of truth."""
        return translate_event(
            event,
            self.facts,
            acquirer_country=self.config.acquirer_country,
            billing_context=self.billing_context,
        )

    def sign_test_webhook(
        self, body: bytes, *, timestamp: datetime | None = None
    ) -> WebhookRequest:
        """Sign with the first configured secret (or :data:`TEST_WEBHOOK_SECRET`)."""
        secrets = self._secrets()
        if not secrets and self.config.webhook_secrets:
            raise SignatureError("stripe: webhook secret is empty")
        secret = secrets[0] if secrets else TEST_WEBHOOK_SECRET
        header = sign(body, secret, int(timestamp.timestamp()) if timestamp else None)
        return WebhookRequest(
            body, {SIGNATURE_HEADER: header, "Content-Type": "application/json; charset=utf-8"}
        )

    @classmethod
    def for_demo(cls) -> StripeProvider:
        """Offline: signs and verifies with :data:`TEST_WEBHOOK_SECRET`; the samples seed the
        cache with the objects they refer to, so no API key or network is needed."""
        provider = cls.with_webhook_secret(TEST_WEBHOOK_SECRET)
        assert isinstance(provider, StripeProvider)
        return provider

    def sample_facts(self) -> dict[str, Any]:
        """The API objects the samples refer to (``samples/objects.json``, a facts file)."""
        folder = files("recoverkit_stripe") / "samples"
        facts: dict[str, Any] = json.loads((folder / "objects.json").read_text(encoding="utf-8"))
        return facts

    def sample_webhooks(self) -> list[WebhookRequest]:
        """Bundled sample events, signed now; the objects they refer to are put in the cache.

        Seeding the cache lets the demo translate the samples with no Stripe account and no
        network: the charges and subscription they name are bundled next to them.
        """
        folder = files("recoverkit_stripe") / "samples"
        objects: dict[str, list[dict[str, Any]]] = json.loads(
            (folder / "objects.json").read_text(encoding="utf-8")
        )
        for kind, items in objects.items():
            for item in items:
                self.cache.put((kind, item["id"]), item, float("inf"))
        return [self.sign_test_webhook((folder / f"{name}.json").read_bytes()) for name in _SAMPLES]

    # -- outbound ------------------------------------------------------------------------------

    def retry_status(self, invoice: InvoiceRef) -> RetryStatusResponse:
        """Open, something remaining, subscription running → retry with the amount remaining."""
        return _retry.retry_status(self._lazy_client, invoice)

    def execute_retry(self, instruction: RetryInstruction) -> RetryAttempt:
        """``Invoice.pay`` off-session (or PaymentIntent confirm) with the idempotency key."""
        return _retry.execute_retry(self._lazy_client, instruction)

    def reconcile(self, result: RetryResults, invoice: InvoiceRef) -> None:
        """Annotate the invoice; pay it out of band when Recover collected elsewhere."""
        _reconcile.reconcile(self._lazy_client, result, invoice)

    def end_dunning(
        self, notice: EndOfDunning, invoice: InvoiceRef, policy: EndOfDunningPolicy
    ) -> None:
        """Apply ``policy`` (none, mark_uncollectible, void, cancel_subscription) once."""
        _reconcile.end_dunning(self._lazy_client, notice, invoice, policy)

    def backfill(
        self, since: datetime, until: datetime, cursor: str | None = None
    ) -> Iterator[tuple[ProviderEvent, str]]:
        """Every charge in the window, oldest first, resumable from the cursor."""
        return _backfill.backfill(self._lazy_client, since, until, cursor)

    def doctor(self) -> list[DoctorCheck]:
        """Webhook endpoint subscriptions and the Smart Retries reminder."""
        client = self.client if self.config.api_key is not None else None
        return doctor_checks(client)


class _LazyClient:
    """Builds the provider's client on first attribute access (translate often needs none)."""

    def __init__(self, provider: StripeProvider) -> None:
        self._provider = provider

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider.client, name)
