"""``recoverkit demo`` runs the Stripe samples offline."""

from __future__ import annotations

import pytest
from recoverkit_stripe.provider import StripeProvider


def test_demo_provider_translates_every_sample_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECOVERKIT_STRIPE_WEBHOOK_SECRETS", raising=False)
    monkeypatch.delenv("RECOVERKIT_STRIPE_API_KEY", raising=False)
    provider = StripeProvider.for_demo()
    samples = provider.sample_webhooks()
    assert samples
    messages = []
    for request in samples:
        provider.verify(request)
        for event in provider.parse(request):
            messages.extend(provider.translate(event).messages)
    assert {m.endpoint for m in messages} == {"payments", "payment_method_updates"}
