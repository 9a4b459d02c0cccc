"""translate: every webhook kind, facts from cassettes, out-of-order delivery, declines."""

from __future__ import annotations

import json
from decimal import Decimal
from importlib.resources import files
from typing import Any

import httpx
import pytest
from bt_support import cassette, fixture_xml, make_provider, sdk_sample
from recoverkit_braintree.account_updater import download_report
from recoverkit_braintree.provider import BraintreeProvider

from recoverkit.declines import Advice, DeclineCategory, ResponseType
from recoverkit.errors import ConfigurationError, MissingFactError
from recoverkit.provider import ProviderEvent, Translation, WebhookRequest
from recoverkit.schema import PaymentEvent, PaymentMethodUpdate


def _sample(provider: BraintreeProvider, kind: str) -> WebhookRequest:
    xml = (files("recoverkit_braintree") / "samples" / f"{kind}.xml").read_bytes()
    return provider.sign_test_webhook(xml)


def _translate(provider: BraintreeProvider, request: WebhookRequest) -> Translation:
    provider.verify(request)
    [event] = provider.parse(request)
    return provider.translate(event)


def _payment(translation: Translation) -> PaymentEvent:
    [message] = translation.messages
    assert isinstance(message.body, PaymentEvent)
    return message.body


def test_failed_renewal_becomes_a_payment_event_with_the_decline(
    provider: BraintreeProvider,
) -> None:
    with cassette("translate_charged_unsuccessfully") as cass:
        translation = _translate(provider, _sample(provider, "subscription_charged_unsuccessfully"))
    assert cass.all_played
    body = _payment(translation)
    assert body.customer.id == "cust_demo_1"
    assert body.subscription.id == "sub_demo_1"
    assert body.subscription.start_date.isoformat() == "2026-01-30T10:00:00+00:00"
    assert body.invoice.id == "sub_demo_1:2026-11-30"
    [txn] = body.transactions
    assert txn.psp == "braintree"
    assert txn.psp_transaction_id == "txn_declined_1"
    assert txn.amount == Decimal("49.99")
    assert isinstance(txn.amount, Decimal)
    assert txn.currency == "USD"
    assert txn.success is False
    assert txn.payment_method_id == "pm_card_demo_1"
    assert txn.scheme == "visa"
    assert txn.funding_source.value == "CREDIT"
    assert txn.bin == "411111"
    assert txn.outcome.processor_response_code == 2001
    assert txn.outcome.raw_response_message == "51 : INSUFFICIENT FUNDS"
    assert txn.outcome.response_type is not None
    assert txn.outcome.response_type.value == "soft_decline"
    decline = translation.messages[0].decline
    assert decline is not None
    assert decline.category is DeclineCategory.INSUFFICIENT_FUNDS
    assert decline.iso_response_code == "51"
    assert decline.visa_category is not None
    assert translation.messages[0].dedupe_key == "braintree:attempt:txn_declined_1"


def test_the_sdks_own_sample_translates(provider: BraintreeProvider) -> None:
    # The SDK's sample names the transaction with the id it is given (and status "failed").
    request = sdk_sample("subscription_charged_unsuccessfully", "txn_declined_1")
    with cassette("translate_charged_unsuccessfully"):
        body = _payment(_translate(provider, request))
    assert body.transactions[0].psp_transaction_id == "txn_declined_1"


def test_old_failure_arriving_after_recovery_reports_the_whole_cycle(
    provider: BraintreeProvider,
) -> None:
    with cassette("translate_out_of_order"):
        body = _payment(
            _translate(provider, _sample(provider, "subscription_charged_unsuccessfully"))
        )
    assert [t.psp_transaction_id for t in body.transactions] == ["txn_declined_1", "txn_settled_1"]
    assert [t.success for t in body.transactions] == [False, True]
    assert body.transactions[1].outcome.response_type is None


def test_successful_renewal_is_forwarded(provider: BraintreeProvider) -> None:
    with cassette("translate_charged_successfully"):
        translation = _translate(provider, _sample(provider, "subscription_charged_successfully"))
    body = _payment(translation)
    assert body.transactions[-1].success is True
    assert translation.messages[0].decline is None


def test_past_due_reads_the_subscription_and_converges_on_the_attempt(
    provider: BraintreeProvider,
) -> None:
    with cassette("translate_went_past_due"):
        translation = _translate(provider, sdk_sample("subscription_went_past_due", "sub_demo_1"))
    assert translation.messages[0].dedupe_key == "braintree:attempt:txn_declined_1"
    assert _payment(translation).transactions[0].success is False


@pytest.mark.parametrize("kind", ["subscription_canceled", "subscription_expired"])
def test_subscription_end_is_ignored_with_a_reason(provider: BraintreeProvider, kind: str) -> None:
    with cassette("empty"):
        translation = _translate(provider, sdk_sample(kind, "sub_demo_1"))
    assert translation.messages == ()
    assert translation.ignored
    assert "RetryStatus" in translation.ignored


def test_settlement_declined_ach_sale(provider: BraintreeProvider) -> None:
    with cassette("translate_settlement_declined"):
        translation = _translate(
            provider, sdk_sample("transaction_settlement_declined", "txn_ach_1")
        )
    body = _payment(translation)
    [txn] = body.transactions
    assert txn.success is False
    assert txn.amount == Decimal("100.00")
    assert txn.scheme == "ach"
    assert txn.payment_method_id == "pm_ach_demo_1"
    assert body.invoice.id == "order_991"
    decline = translation.messages[0].decline
    assert decline is not None
    assert decline.raw_code == "4001"
    assert translation.messages[0].dedupe_key == "braintree:attempt:txn_ach_1:settlement"
    # The authorization said 1000 Approved; Recover is told the settlement outcome instead.
    assert txn.outcome.processor_response_code == 4001
    assert txn.outcome.psp_response_message == "Settlement Declined"
    assert txn.outcome.raw_response_message == "4001 : Settlement Declined"
    assert txn.outcome.response_type is not None
    assert txn.outcome.response_type.value == "soft_decline"


def test_ach_return_code_decides_the_settlement_decline(provider: BraintreeProvider) -> None:
    with cassette("translate_settlement_ach_return") as cass:
        translation = _translate(
            provider, sdk_sample("transaction_settlement_declined", "txn_ach_2")
        )
    assert cass.all_played
    decline = translation.messages[0].decline
    assert decline is not None
    assert decline.raw_code == "R02"
    assert decline.category is DeclineCategory.ACCOUNT_INVALID
    assert decline.response_type is ResponseType.HARD
    assert decline.advice is Advice.DO_NOT_TRY_AGAIN
    [txn] = _payment(translation).transactions
    assert txn.outcome.processor_response_code == 4001
    assert txn.outcome.network_status == "R02"
    assert txn.outcome.raw_response_message == "4001 : Settlement Declined; ACH return code R02"
    assert txn.outcome.response_type is not None
    assert txn.outcome.response_type.value == "hard_decline"


def test_mastercard_expired_card_with_mac_01_is_hard(provider: BraintreeProvider) -> None:
    request = provider.sign_test_webhook(fixture_xml("charged_unsuccessfully_hard_decline.xml"))
    with cassette("translate_hard_decline"):
        translation = _translate(provider, request)
    decline = translation.messages[0].decline
    assert decline is not None
    assert decline.category is DeclineCategory.CARD_DATA_INVALID
    assert decline.response_type is ResponseType.HARD
    assert decline.mastercard_advice_code == "01"
    assert decline.advice is Advice.CONFIRM_CARD_DATA
    assert _payment(translation).transactions[0].scheme == "mastercard"


def test_excessive_retry_rejection_was_never_sent_to_the_network(
    provider: BraintreeProvider,
) -> None:
    request = provider.sign_test_webhook(fixture_xml("charged_unsuccessfully_gateway_rejected.xml"))
    with cassette("translate_gateway_rejected"):
        translation = _translate(provider, request)
    decline = translation.messages[0].decline
    assert decline is not None
    assert decline.category is DeclineCategory.BLOCKED_BY_PSP
    assert decline.sent_to_network is False
    assert decline.advice is Advice.DO_NOT_TRY_AGAIN
    assert decline.raw_code == "excessive_retry"
    outcome = _payment(translation).transactions[-1].outcome
    assert outcome.raw_response_message.startswith("Gateway Rejected: excessive_retry")


def test_revoked_paypal_account_is_a_payment_method_update(provider: BraintreeProvider) -> None:
    translation = _translate(provider, sdk_sample("payment_method_revoked_by_customer", "pm_pp_1"))
    [message] = translation.messages
    assert isinstance(message.body, PaymentMethodUpdate)
    assert message.body.payment_method_id == "pm_pp_1"
    assert message.body.customer_id == "a-customer-id"
    assert message.body.reason == "revoked_by_customer"


def test_customer_data_update_is_a_payment_method_update(provider: BraintreeProvider) -> None:
    translation = _translate(provider, sdk_sample("payment_method_customer_data_updated", "x"))
    [message] = translation.messages
    assert isinstance(message.body, PaymentMethodUpdate)
    assert message.body.payment_method_id == "TOKEN-12345"
    assert message.body.reason == "customer_data_updated"


def test_account_updater_report_gives_one_update_per_card(provider: BraintreeProvider) -> None:
    request = provider.sign_test_webhook(fixture_xml("account_updater_daily_report.xml"))
    with cassette("account_updater_report") as cass:
        translation = _translate(provider, request)
    assert cass.all_played
    bodies = [m.body for m in translation.messages]
    assert all(isinstance(b, PaymentMethodUpdate) for b in bodies)
    assert [
        (b.customer_id, b.payment_method_id) for b in bodies if isinstance(b, PaymentMethodUpdate)
    ] == [
        ("cust_demo_1", "pm_card_demo_1"),
        ("cust_demo_2", "pm_card_demo_2"),
    ]
    assert len({m.dedupe_key for m in translation.messages}) == 2


def test_translation_from_a_stored_event_needs_no_cached_notification() -> None:
    receiver = make_provider()
    request = sdk_sample("payment_method_revoked_by_customer", "pm_pp_1")
    receiver.verify(request)
    [event] = receiver.parse(request)
    stored = ProviderEvent(
        **json.loads(json.dumps(_event_dict(event), default=str))
        | {"occurred_at": event.occurred_at}
    )
    worker = make_provider()  # another process: nothing cached
    [message] = worker.translate(stored).messages
    assert isinstance(message.body, PaymentMethodUpdate)
    assert message.body.payment_method_id == "pm_pp_1"


def _event_dict(event: ProviderEvent) -> dict[str, Any]:
    return {
        "provider": event.provider,
        "dedupe_key": event.dedupe_key,
        "type": event.type,
        "data": dict(event.data),
        "object_id": event.object_id,
    }


def test_unknown_kind_is_ignored(provider: BraintreeProvider) -> None:
    translation = _translate(provider, sdk_sample("check", "x"))
    assert translation.ignored


def test_report_download_failure_names_the_host() -> None:
    def client() -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(403)))

    with pytest.raises(MissingFactError, match=r"reports\.braintree\.example.*403"):
        download_report(
            "https://reports.braintree.example/x.csv?sig=secret",
            max_bytes=10_000,
            client_factory=client,
        )


def test_demo_provider_translates_the_bundled_samples_offline() -> None:
    provider = BraintreeProvider.for_demo()
    produced = []
    with cassette("empty"):  # any HTTP request would fail here
        for request in provider.sample_webhooks():
            provider.verify(request)
            for event in provider.parse(request):
                produced.extend(provider.translate(event).messages)
    assert [m.endpoint for m in produced] == ["payments", "payments", "payment_method_updates"]


def test_with_webhook_secret_takes_a_public_private_pair() -> None:
    provider = BraintreeProvider.with_webhook_secret("pk_x:sk_x", merchant_id="m")
    provider.verify(
        sdk_sample("subscription_canceled", "s", {"public_key": "pk_x", "private_key": "sk_x"})
    )
    with pytest.raises(ConfigurationError, match="public_key"):
        BraintreeProvider.with_webhook_secret("no-colon")
