"""Test helpers for recoverkit-braintree: settings, cassettes, SDK-signed samples."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from recoverkit_braintree import BraintreeProvider, BraintreeSettings
from recoverkit_braintree._sdk import braintree
from recoverkit_braintree.claims import MemoryClaims

from recoverkit.provider import WebhookRequest
from recoverkit.testing.recording import cassette_vcr

ROOT = Path(__file__).resolve().parents[3]
CASSETTES = ROOT / "cassettes" / "braintree"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MERCHANT = "test_merchant"
BASE_URL = "http://braintree.emulator.test:3000"
PAIR = {"public_key": "pk_test_current", "private_key": "sk_test_current_private"}
OLD_PAIR = {"public_key": "pk_test_previous", "private_key": "sk_test_previous_private"}

#: RECOVERKIT_RECORD=1 records the cassettes afresh, scrubbed (docs/recording.md).
_vcr = cassette_vcr(
    str(CASSETTES),
    filter_headers=["authorization"],
    match_on=["method", "scheme", "host", "port", "path", "query"],
)


def make_settings(**overrides: Any) -> BraintreeSettings:
    """Settings for tests: two key pairs (rotation), the emulator URL, nothing from the env."""
    values: dict[str, Any] = {
        "merchant_id": MERCHANT,
        "key_pairs": [PAIR, OLD_PAIR],
        "api_base_url": BASE_URL,
    }
    values.update(overrides)
    return BraintreeSettings(**values)


def make_provider(**overrides: Any) -> BraintreeProvider:
    """A provider with in-memory claims."""
    return BraintreeProvider(make_settings(**overrides), claims=MemoryClaims())


def cassette(name: str, **options: Any) -> AbstractContextManager[Any]:
    """Replay ``cassettes/braintree/<name>.yaml``; any request not in it fails the test."""
    return _vcr.use_cassette(f"{name}.yaml", **options)


def sdk_sample(kind: str, object_id: str, pair: dict[str, str] = PAIR) -> WebhookRequest:
    """A webhook built and signed by the SDK's own ``WebhookTesting.sample_notification``."""
    gateway = braintree.BraintreeGateway(
        braintree.Configuration(
            environment=braintree.Environment.Sandbox,
            merchant_id=MERCHANT,
            public_key=pair["public_key"],
            private_key=pair["private_key"],
        )
    )
    signed = gateway.webhook_testing.sample_notification(kind, object_id)
    body = urlencode({"bt_signature": signed["bt_signature"], "bt_payload": signed["bt_payload"]})
    return WebhookRequest(
        body.encode("ascii"), {"content-type": "application/x-www-form-urlencoded"}
    )


def fixture_xml(name: str) -> bytes:
    """A notification XML file from ``tests/fixtures``."""
    return (FIXTURES / name).read_bytes()
