"""Test helpers: settings with the documented test key, fixture loading, signing.

Imported by the tests as ``adyen_helpers`` (conftest puts this folder on ``sys.path``; pytest runs
with ``--import-mode=importlib``, which does not).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from recoverkit_adyen import TEST_HMAC_KEY, AdyenProvider, AdyenSettings
from recoverkit_adyen.webhooks import decode_keys, sign_item

from recoverkit.provider import BillingContext, InvoiceRef, ProviderEvent, WebhookRequest
from recoverkit.testing.recording import cassette_vcr

FIXTURES = Path(__file__).parent / "fixtures"
SAMPLES = Path(__file__).parents[1] / "src" / "recoverkit_adyen" / "samples"
CASSETTES = Path(__file__).parents[3] / "cassettes" / "adyen"
#: A second, unrelated key (random hex) for rotation and wrong-key tests.
OTHER_KEY = "0F1E2D3C4B5A69788796A5B4C3D2E1F00112233445566778899AABBCCDDEEFF0"
#: The Adyen Python library's key for its signed util mocks (test/UtilTest.py).
SDK_MOCK_KEY = "74F490DD33F7327BAECC88B2947C011FC02D014A473AAA33A8EC93E4DC069174"


def settings(**overrides: Any) -> AdyenSettings:
    """Settings independent of the environment of the machine running the tests."""
    values: dict[str, Any] = {
        "webhook_secrets": [TEST_HMAC_KEY],
        "acquirer_country": "NL",
        "api_key": "test_api_key_not_real",
        "merchant_account": "RecoverkitDemoECOM",
    }
    values.update(overrides)
    return AdyenSettings(**values)


def load(name: str) -> dict[str, Any]:
    """A fixture (tests/fixtures) or a bundled sample (src/.../samples) as a dict."""
    path = FIXTURES / name
    if not path.exists():
        path = SAMPLES / name
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def item_of(body: dict[str, Any], index: int = 0) -> dict[str, Any]:
    item: dict[str, Any] = body["notificationItems"][index]["NotificationRequestItem"]
    return item


def signed(body: dict[str, Any], key: str = TEST_HMAC_KEY) -> WebhookRequest:
    """A standard notification with every item signed under ``key``."""
    raw_key = decode_keys([key])[0]
    for wrapper in body["notificationItems"]:
        sign_item(wrapper["NotificationRequestItem"], raw_key)
    return WebhookRequest(json.dumps(body).encode(), {"content-type": "application/json"})


def events_of(provider: AdyenProvider, request: WebhookRequest) -> list[ProviderEvent]:
    provider.verify(request)
    return provider.parse(request)


def fixed_context(**extra: Any) -> Callable[[ProviderEvent], BillingContext]:
    """A merchant billing_context callable answering the same facts for every event."""

    def hook(event: ProviderEvent) -> BillingContext:
        return BillingContext(
            customer_id="cus_hook",
            subscription_id="sub_hook",
            invoice_id=f"inv_for_{event.object_id}",
            subscription_start=datetime(2025, 1, 1, tzinfo=UTC),
            invoice_created_at=datetime(2026, 11, 1, tzinfo=UTC),
            extra=extra,
        )

    return hook


def _json_body(r1: Any, r2: Any) -> None:
    def decode(body: Any) -> Any:
        if not body:
            return None
        return json.loads(body.decode() if isinstance(body, bytes) else body)

    assert decode(r1.body) == decode(r2.body)


def _idempotency_key(r1: Any, r2: Any) -> None:
    assert r1.headers.get("Idempotency-Key") == r2.headers.get("Idempotency-Key")


#: Replays cassettes/adyen; a request differing in method, URL, JSON body or Idempotency-Key
#: fails.
#: RECOVERKIT_RECORD=1 records the cassettes afresh, scrubbed (docs/recording.md).
REPLAY = cassette_vcr(
    str(CASSETTES),
    filter_headers=["x-api-key"],
    match_on=["method", "scheme", "host", "port", "path", "query", "json_body", "idempotency"],
)
REPLAY.register_matcher("json_body", _json_body)
REPLAY.register_matcher("idempotency", _idempotency_key)

INVOICE = InvoiceRef(
    provider="adyen",
    invoice_id="inv_3001",
    customer_id="cus_1001",
    subscription_id="sub_2001",
    psp_customer_id="cus_1001",
    psp_transaction_id="QFQTPCQ8HXSKGK82",
    payment_method_id="M5N7TQ4TG5PFWR50",
    amount=Decimal("49.99"),
    currency="EUR",
)
