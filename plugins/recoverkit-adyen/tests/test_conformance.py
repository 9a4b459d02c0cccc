"""The core conformance kit run against the Adyen provider."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest
from adyen_helpers import (
    CASSETTES,
    FIXTURES,
    INVOICE,
    OTHER_KEY,
    REPLAY,
    SAMPLES,
    events_of,
    settings,
)
from recoverkit_adyen import TEST_HMAC_KEY, AdyenProvider
from recoverkit_adyen.codes import decline_table
from recoverkit_adyen.provider import SAMPLE_FILES
from recoverkit_adyen.retry import stored_payment_method_ids
from recoverkit_adyen.webhooks import HEADER

from recoverkit.declines import DeclineTable
from recoverkit.errors import SignatureError
from recoverkit.provider import Capability, EndOfDunningPolicy, InvoiceRef, WebhookRequest
from recoverkit.schema import EndOfDunning, RetryResults
from recoverkit.testing import IdempotencyCase, ProviderConformance, Sample

_EXPECTED = {
    "authorisation_refused_not_enough_balance.json",
    "authorisation_refused_mastercard_do_not_retry.json",
}


def _is_standard(request: WebhookRequest) -> bool:
    return request.header(HEADER) is None


class TestAdyenConformance(ProviderConformance):
    """Adyen-specific overrides: no signed timestamp, signatures inside the body."""

    signature_headers: ClassVar[tuple[str, ...]] = (HEADER,)
    #: Adyen's HMAC covers no timestamp (Adyen redelivers the same signed item for 30 days).
    signs_timestamp: ClassVar[bool] = False

    @pytest.fixture
    def provider(self) -> AdyenProvider:
        return AdyenProvider(settings())

    @pytest.fixture
    def wrong_secret_provider(self) -> AdyenProvider:
        return AdyenProvider(settings(webhook_secrets=[OTHER_KEY]))

    @pytest.fixture
    def samples(self, provider: AdyenProvider) -> list[Sample]:
        samples = []
        for name, request in zip(SAMPLE_FILES, provider.sample_webhooks(), strict=True):
            expected = None
            if name in _EXPECTED:
                path = FIXTURES / f"expected_{name}"
                expected = json.loads(path.read_text(encoding="utf-8"))
            samples.append(Sample(name, request, expected))
        return samples

    @pytest.fixture
    def do_not_try_again_samples(self, samples: list[Sample]) -> list[Sample]:
        """A Mastercard "Refused" (soft by the table) with MAC 03."""
        return [
            s for s in samples if s.name == "authorisation_refused_mastercard_do_not_retry.json"
        ]

    @pytest.fixture
    def secrets(self) -> list[str]:
        return [TEST_HMAC_KEY, "test_api_key_not_real"]

    @pytest.fixture
    def decline_table(self) -> DeclineTable:
        return decline_table()

    @pytest.fixture
    def scanned_paths(self) -> list[Path]:
        return [FIXTURES, SAMPLES, CASSETTES]

    @pytest.fixture
    def idempotency_cases(self, provider: AdyenProvider) -> list[IdempotencyCase]:
        marked_paid: dict[str, str] = {}

        def mark_paid(result: RetryResults, invoice: InvoiceRef) -> None:
            marked_paid[invoice.invoice_id] = (
                result.butter_id
            )  # the merchant's own idempotent write

        provider.reconcile_hook = mark_paid
        result = RetryResults(
            timestamp=datetime(2026, 12, 1, tzinfo=UTC),
            butter_id="b_1",
            invoice_id="inv_3001",
            success=True,
        )
        notice = EndOfDunning(
            timestamp=datetime(2026, 12, 1, tzinfo=UTC), invoice_id="inv_3001", recovered=False
        )

        @contextmanager
        def cassette() -> Iterator[object]:
            with REPLAY.use_cassette("disable_token.yaml") as recorded:
                yield recorded
            assert recorded.all_played

        return [
            IdempotencyCase(
                name="reconcile marks the invoice paid through the merchant hook",
                capability=Capability.RECONCILE,
                action=lambda: provider.reconcile(result, INVOICE),
                state=lambda: dict(marked_paid),
            ),
            IdempotencyCase(
                name="end_dunning disable_token deletes the stored card once",
                capability=Capability.END_DUNNING,
                action=lambda: provider.end_dunning(
                    notice, INVOICE, EndOfDunningPolicy.DISABLE_TOKEN
                ),
                state=lambda: stored_payment_method_ids(
                    "cus_1001", provider.settings, provider._adyen()
                ),
                context=cassette,
            ),
        ]

    def unsigned(self, request: WebhookRequest) -> WebhookRequest:
        """Standard notifications carry the signature inside each item, not in a header."""
        if not _is_standard(request):
            return super().unsigned(request)
        body = json.loads(request.body)
        for wrapper in body["notificationItems"]:
            wrapper["NotificationRequestItem"].get("additionalData", {}).pop("hmacSignature", None)
        return WebhookRequest(json.dumps(body).encode(), dict(request.headers))

    def tampered(self, request: WebhookRequest) -> WebhookRequest:
        """Change a signed field (the amount) of a standard notification.

        Adyen's item HMAC covers eight fields, not the body, so the kit's default (change any
        digit near the middle) may land in an unsigned field such as ``eventDate``; no verifier
        can detect that. ``test_unsigned_fields_are_outside_adyens_signature`` pins it.
        """
        if not _is_standard(request):
            return super().tampered(request)
        body = json.loads(request.body)
        body["notificationItems"][0]["NotificationRequestItem"]["amount"]["value"] += 1
        return WebhookRequest(json.dumps(body).encode(), dict(request.headers))


def test_unsigned_fields_are_outside_adyens_signature() -> None:
    """A documented property of Adyen's scheme, not of this plugin: only 8 fields are signed."""
    provider = AdyenProvider(settings())
    request = provider.sample_webhooks()[0]
    body: dict[str, Any] = json.loads(request.body)
    item = body["notificationItems"][0]["NotificationRequestItem"]
    item["reason"] = "changed"
    provider.verify(WebhookRequest(json.dumps(body).encode()))
    item["merchantReference"] = "changed"
    with pytest.raises(SignatureError):
        provider.verify(WebhookRequest(json.dumps(body).encode()))


def test_sample_webhooks_sign_with_the_configured_key() -> None:
    provider = AdyenProvider(settings(webhook_secrets=[OTHER_KEY]))
    for request in provider.sample_webhooks():
        events_of(provider, request)
    with pytest.raises(SignatureError):
        AdyenProvider(settings()).verify(provider.sample_webhooks()[0])
