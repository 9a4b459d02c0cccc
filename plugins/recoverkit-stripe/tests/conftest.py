"""Shared helpers: fixture loading and a dict-backed stand-in for the Stripe API facts."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from recoverkit_stripe import StripeProvider, StripeSettings

from recoverkit.errors import MissingFactError
from recoverkit.provider import ProviderEvent, WebhookRequest
from recoverkit.testing.recording import credential

FIXTURES = Path(__file__).parent / "fixtures"
CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "stripe"
SECRET = "whsec_unit_test_a"  # short on purpose: not a real secret's shape
OTHER_SECRET = "whsec_unit_test_b"


def load(name: str) -> dict[str, Any]:
    """A fixture file as a dict."""
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def body(name: str) -> bytes:
    """A fixture file's exact bytes (what Stripe would POST)."""
    return (FIXTURES / f"{name}.json").read_bytes()


def event_names() -> list[str]:
    """Every event fixture (objects.json holds the API objects, not an event)."""
    return sorted(p.stem for p in FIXTURES.glob("*.json") if p.stem != "objects")


class FakeFacts:
    """:class:`recoverkit_stripe.facts.Facts` over ``objects.json``; records every lookup."""

    def __init__(self, objects: dict[str, list[dict[str, Any]]] | None = None) -> None:
        objects = objects if objects is not None else load("objects")
        self.store = {kind: {o["id"]: o for o in items} for kind, items in objects.items()}
        self.calls: list[tuple[str, str]] = []

    def _get(self, kind: str, object_id: str) -> dict[str, Any]:
        self.calls.append((kind, object_id))
        try:
            return self.store[kind][object_id]
        except KeyError:
            raise MissingFactError(
                f"stripe: no {kind} {object_id} in the test objects",
                provider="stripe",
                object_id=object_id,
            ) from None

    def charge(self, charge_id: str) -> dict[str, Any]:
        return self._get("charge", charge_id)

    def subscription(self, subscription_id: str) -> dict[str, Any]:
        return self._get("subscription", subscription_id)

    def payment_intent(self, payment_intent_id: str, *, seen_at: int) -> dict[str, Any]:
        return self._get("payment_intent", payment_intent_id)

    def charges_of_payment_intent(
        self, payment_intent_id: str, *, created_lte: int
    ) -> list[dict[str, Any]]:
        page = self._get("charges_of", payment_intent_id)
        found = [c for c in page["data"] if c["created"] <= created_lte]
        return sorted(found, key=lambda c: c["created"], reverse=True)

    def invoice_payments(self, invoice_id: str, *, seen_at: int) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self._get("invoice_payments", invoice_id)["payments"]["data"]
        return data

    def invoice_of_payment_intent(self, payment_intent_id: str) -> str | None:
        for item in self._get("invoice_of", payment_intent_id)["data"]:
            return str(item["invoice"])
        return None

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        return self._get("invoice", invoice_id)


def make_provider(*secrets: str, **overrides: Any) -> StripeProvider:
    """A provider with ``secrets`` and no environment influence; the API key is a test key."""
    settings = StripeSettings(
        webhook_secrets=list(secrets or (SECRET,)),
        api_key=overrides.pop(
            "api_key", credential("RECOVERKIT_STRIPE_API_KEY", "sk_test_recoverkit")
        ),
        **overrides,
    )
    return StripeProvider(settings)


def seed(provider: StripeProvider, objects: dict[str, list[dict[str, Any]]] | None = None) -> None:
    """Fill the provider's cache from ``objects.json`` as if fetched after every fixture event."""
    for kind, items in (objects or load("objects")).items():
        for item in items:
            provider.cache.put((kind, item["id"]), item, float("inf"))


def parsed(provider: StripeProvider, name: str) -> ProviderEvent:
    """Sign, verify and parse one fixture; return its single event."""
    request: WebhookRequest = provider.sign_test_webhook(body(name))
    provider.verify(request)
    (event,) = provider.parse(request)
    return event


@pytest.fixture
def facts() -> FakeFacts:
    return FakeFacts()


@pytest.fixture(autouse=True)
def _no_stripe_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings must come from the test, never from the developer's shell."""
    for name in list(os.environ):
        if name.startswith("RECOVERKIT_STRIPE_"):
            monkeypatch.delenv(name)
