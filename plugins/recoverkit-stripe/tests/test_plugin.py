"""The distribution registers the provider through its entry point; the demo samples work."""

from __future__ import annotations

import json

from recoverkit_stripe import StripeProvider, StripeSettings

from recoverkit import Plugins
from recoverkit.schema import PaymentEvent, PaymentMethodUpdate, parse


def test_entry_point_registers_the_stripe_provider() -> None:
    plugins = Plugins(environ={"RECOVERKIT_LOAD_PLUGINS": "stripe"})
    assert plugins.provider_class("stripe") is StripeProvider
    origin = plugins.origin("stripe")
    assert origin is not None
    assert origin.distribution == "recoverkit-stripe"


def test_bundled_samples_translate_offline_without_any_setting() -> None:
    # The demo's path: no API key, no secret, no network. The samples are signed with the
    # documented demo secret and the objects they name come bundled into the cache.
    provider = StripeProvider(StripeSettings(webhook_secrets=["whsec_recoverkit_demo"]))
    kinds = []
    for request in provider.sample_webhooks():
        provider.verify(request)
        for event in provider.parse(request):
            for message in provider.translate(event).messages:
                wire = json.loads(message.to_json())
                model = PaymentEvent if wire["endpoint"] == "payments" else PaymentMethodUpdate
                parse(model, wire["body"])
                kinds.append((event.type, wire["endpoint"]))
    assert kinds == [
        ("invoice.payment_failed", "payments"),
        ("invoice.payment_succeeded", "payments"),
        ("payment_method.automatically_updated", "payment_method_updates"),
    ]
