"""Registration, settings from the environment, the billing_context hook, doctor."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from adyen_helpers import events_of, load, settings, signed
from recoverkit_adyen import AdyenProvider, AdyenSettings

from recoverkit.hookspecs import hookimpl
from recoverkit.plugins import Plugins
from recoverkit.provider import BillingContext, ProviderEvent


def test_entry_point_registers_the_adyen_provider() -> None:
    plugins = Plugins(environ={"RECOVERKIT_LOAD_PLUGINS": "adyen"})
    assert plugins.provider_class("adyen") is AdyenProvider
    origin = plugins.origin("adyen")
    assert origin is not None
    assert origin.distribution == "recoverkit-adyen"


def test_settings_come_from_prefixed_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RECOVERKIT_ADYEN_WEBHOOK_SECRETS", '["AABB", "CCDD"]')
    monkeypatch.setenv("RECOVERKIT_ADYEN_MERCHANT_ACCOUNT", "Shop")
    monkeypatch.setenv("RECOVERKIT_ADYEN_CHECKOUT_API_VERSION", "71")
    loaded = AdyenSettings()
    assert [key.get_secret_value() for key in loaded.webhook_secrets] == ["AABB", "CCDD"]
    assert loaded.checkout_url() == "https://checkout-test.adyen.com/v71"
    assert "AABB" not in repr(loaded)


def test_live_checkout_url_uses_the_prefix() -> None:
    live = settings(environment="live", live_endpoint_prefix="1797a841fbb37ca7-AdyenDemo")
    assert live.checkout_url() == (
        "https://1797a841fbb37ca7-AdyenDemo-checkout-live.adyenpayments.com/checkout/v72"
    )
    with pytest.raises(ValueError, match="live_endpoint_prefix"):
        settings(environment="live")


def test_with_webhook_secret_builds_a_verifying_provider() -> None:
    other = "0F1E2D3C4B5A69788796A5B4C3D2E1F00112233445566778899AABBCCDDEEFF0"
    provider = AdyenProvider.with_webhook_secret(other, acquirer_country="NL")
    events_of(provider, signed(load("authorisation_refused_not_enough_balance.json"), other))


def test_demo_provider_translates_every_sample() -> None:
    provider = AdyenProvider.for_demo()
    produced = 0
    for request in provider.sample_webhooks():
        for event in events_of(provider, request):
            produced += len(provider.translate(event).messages)
    assert produced == 6


class _MerchantPlugin:
    @hookimpl
    def billing_context(self, provider: str, event: ProviderEvent) -> BillingContext | None:
        if provider != "adyen":
            return None
        return BillingContext(
            customer_id="cus_from_platform",
            subscription_id="sub_from_platform",
            invoice_id="inv_from_platform",
            subscription_start=datetime(2025, 5, 1, tzinfo=UTC),
            invoice_created_at=datetime(2026, 11, 1, tzinfo=UTC),
        )


def test_core_billing_context_hook_plugs_into_the_provider() -> None:
    plugins = Plugins([_MerchantPlugin()], load_entry_points=False)
    provider = AdyenProvider(settings())
    provider.billing_context = lambda event: plugins.billing_context("adyen", event)
    [event] = events_of(provider, signed(load("authorisation_refused_not_enough_balance.json")))
    [message] = provider.translate(event).messages
    assert message.body.invoice.id == "inv_from_platform"  # type: ignore[union-attr]


def test_doctor_reminds_to_turn_auto_rescue_off(provider: AdyenProvider) -> None:
    checks = {check.name: check for check in provider.doctor()}
    reminder = next(c for name, c in checks.items() if "Auto Rescue" in name)
    assert "autoRescue" in reminder.detail
    assert checks["adyen webhook HMAC key"].ok
    bare = AdyenProvider(settings(webhook_secrets=[], api_key=None, acquirer_country=None))
    failing = [check.name for check in bare.doctor() if not check.ok]
    assert failing == [
        "adyen webhook HMAC key",
        "adyen webhook basic auth",
        "adyen Checkout credentials",
        "adyen acquirer country",
    ]
