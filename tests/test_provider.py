"""Value objects at the provider boundary."""

from __future__ import annotations

from decimal import Decimal

import pytest
from example_provider import ExampleProvider

from recoverkit import MalformedWebhookError, UnsupportedCapabilityError, WebhookRequest
from recoverkit.provider import InvoiceRef, RetryInstruction


def test_headers_are_case_insensitive() -> None:
    request = WebhookRequest(b"{}", {"Stripe-Signature": "t=1"})
    assert request.header("stripe-signature") == "t=1"
    assert request.header("STRIPE-SIGNATURE") == "t=1"
    assert request.header("missing") is None


def test_repr_never_shows_the_body() -> None:
    request = WebhookRequest(b'{"card": "secret stuff"}', {"X": "1"})
    assert "secret" not in repr(request)


def test_malformed_json_is_a_webhook_error() -> None:
    with pytest.raises(MalformedWebhookError, match="not valid JSON"):
        WebhookRequest(b"{nope").json()


def test_undeclared_capability_raises_a_clear_error() -> None:
    provider = ExampleProvider.for_demo()
    instruction = RetryInstruction(
        InvoiceRef("example", "in_1"), 1, "in_1:1", Decimal("1.00"), "USD"
    )
    with pytest.raises(UnsupportedCapabilityError, match="'example' does not support"):
        provider.execute_retry(instruction)
