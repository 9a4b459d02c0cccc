"""Translation of Adyen events into Recover messages, and the billing-context conventions."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from adyen_helpers import events_of, fixed_context, item_of, load, settings, signed
from recoverkit_adyen import (
    AdyenProvider,
    BillingContextMissingError,
    default_billing_context,
    format_reference,
)

from recoverkit.declines import DeclineCategory, ResponseType
from recoverkit.errors import MissingFactError
from recoverkit.provider import BillingContext, ProviderEvent
from recoverkit.schema import PaymentEvent, PaymentMethodUpdate


def _translate(provider: AdyenProvider, body: dict[str, object]) -> list[object]:
    [event] = events_of(provider, signed(body))
    translation = provider.translate(event)
    assert translation.ignored is None, translation.ignored
    return [json.loads(m.to_json()) for m in translation.messages]


def test_failed_contauth_renewal_becomes_a_declined_payment_event(
    provider: AdyenProvider,
) -> None:
    [message] = _translate(provider, load("authorisation_refused_not_enough_balance.json"))
    assert message == {
        "endpoint": "payments",
        "dedupe_key": "QFQTPCQ8HXSKGK82:AUTHORISATION:false",
        "body": {
            "customer": {"id": "cus_1001", "psp_id": "cus_1001"},
            "subscription": {"id": "sub_2001", "start_date": "2026-01-15T00:00:00Z"},
            "invoice": {"id": "inv_3001", "created_at": "2026-11-15T09:00:00Z"},
            "transactions": [
                {
                    "id": "rk1/cus_1001/sub_2001/inv_3001/2026-01-15/2026-11-15/a1",
                    "psp_transaction_id": "QFQTPCQ8HXSKGK82",
                    "psp": "adyen",
                    "acquirer_country": "NL",
                    "amount": 49.99,
                    "currency": "EUR",
                    "funding_source": "DEBIT",
                    "payment_method_id": "M5N7TQ4TG5PFWR50",
                    "psp_transaction_created_at": "2026-11-15T09:00:00Z",
                    "scheme": "visa",
                    "success": False,
                    "outcome": {
                        "raw_response_message": "51 : Insufficient funds",
                        "psp_response_message": "Not enough balance",
                        "response_type": "soft_decline",
                    },
                    "network_transaction_id": "580921473618274",
                    "mid": "RecoverkitDemoECOM",
                    "auth": True,
                    "bin": "411111",
                    "issuer_country": "NL",
                }
            ],
        },
        "decline": {
            "category": "insufficient_funds",
            "response_type": "soft_decline",
            "raw_code": "Not enough balance",
            "message": "Not enough balance",
            "iso_response_code": "51",
            "visa_category": 2,
            "mastercard_advice_code": None,
            "advice": "try_again_later",
            "network": "visa",
            "sent_to_network": True,
            "recognized": True,
        },
    }


def test_amounts_use_adyen_currency_exponents(provider: AdyenProvider) -> None:
    jpy = load("authorisation_refused_mastercard_do_not_retry.json")
    [message] = _translate(provider, jpy)
    assert message["body"]["transactions"][0]["amount"] == 1200  # JPY has no decimals
    kwd = load("authorisation_success_account_updater.json")
    payment = _translate(provider, kwd)[0]
    assert payment["body"]["transactions"][0]["amount"] == 12.345  # KWD has three
    isk = load("authorisation_refused_not_enough_balance.json")
    item_of(isk)["amount"] = {"currency": "ISK", "value": 100000}
    [event] = events_of(provider, signed(isk))
    body = provider.translate(event).messages[0].body
    assert isinstance(body, PaymentEvent)
    assert body.transactions[0].amount == Decimal("1000.00")  # Adyen: ISK has 2, ISO says 0


def test_reference_convention_fills_the_billing_context(provider: AdyenProvider) -> None:
    [message] = _translate(provider, load("authorisation_refused_mastercard_do_not_retry.json"))
    body = message["body"]
    assert body["customer"]["id"] == "cus_1002"
    assert body["subscription"] == {"id": "sub_2002", "start_date": "2025-06-01T00:00:00Z"}
    assert body["invoice"] == {"id": "inv_3002", "created_at": "2026-11-20T00:00:00Z"}
    assert body["transactions"][0]["payment_method_id"] == "N7TQ4TG5PFWR5M50"
    assert message["decline"]["advice"] == "do_not_try_again"
    assert body["transactions"][0]["outcome"]["response_type"] == "hard_decline"


def test_successful_authorisation_never_forwards_the_card_summary_reason(
    provider: AdyenProvider,
) -> None:
    messages = _translate(provider, load("authorisation_success_account_updater.json"))
    payment = messages[0]
    assert payment["decline"] is None
    assert payment["body"]["transactions"][0]["success"] is True
    assert payment["body"]["transactions"][0]["outcome"] == {"raw_response_message": "AUTHORISED"}
    assert "03/2030" not in json.dumps(messages)


def test_account_updater_change_also_sends_a_payment_method_update(
    provider: AdyenProvider,
) -> None:
    messages = _translate(provider, load("authorisation_success_account_updater.json"))
    assert [m["endpoint"] for m in messages] == ["payments", "payment_method_updates"]
    assert messages[1]["body"] == {
        "customer_id": "cus_1003",
        "psp_customer_id": "cus_1003",
        "payment_method_id": "HX7TQ4TG5PFWR5Q2",
        "reason": "network_updated",
    }
    assert messages[1]["dedupe_key"] != messages[0]["dedupe_key"]


def test_ecommerce_authorisation_is_ignored(provider: AdyenProvider) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    item_of(body)["additionalData"]["shopperInteraction"] = "Ecommerce"
    [event] = events_of(provider, signed(body))
    translation = provider.translate(event)
    assert translation.messages == ()
    assert translation.ignored is not None
    assert "ContAuth" in translation.ignored


def test_metadata_alone_cannot_name_the_invoice_the_event_is_held(
    provider: AdyenProvider,
) -> None:
    # metadata.rk_* (unsigned additionalData) names a complete context, the signed
    # merchantReference names none: identity comes from signed fields only, so it is held.
    body = load("authorisation_refused_not_enough_balance.json")
    item_of(body)["merchantReference"] = "inv_3001-a1"
    [event] = events_of(provider, signed(body))
    with pytest.raises(BillingContextMissingError, match=r"^held: ") as raised:
        provider.translate(event)
    assert isinstance(raised.value, MissingFactError)
    assert "subscription_id" in str(raised.value)
    assert "invoice_id" in str(raised.value)
    assert "metadata is not signed" in str(raised.value)
    assert raised.value.object_id == "QFQTPCQ8HXSKGK82"


@pytest.mark.parametrize(
    ("reference", "metadata", "expected"),
    [
        # the signed day, refined to a time of day by metadata on that same day
        ("2026-11-15", "2026-11-15T09:00:00Z", datetime(2026, 11, 15, 9, tzinfo=UTC)),
        # metadata on another day cannot move the date: the signed day wins
        ("2026-11-15", "2027-01-01T09:00:00Z", datetime(2026, 11, 15, tzinfo=UTC)),
        # unparseable metadata is ignored
        ("2026-11-15", "last spring", datetime(2026, 11, 15, tzinfo=UTC)),
    ],
)
def test_metadata_only_refines_the_signed_invoice_date(
    provider: AdyenProvider, reference: str, metadata: str, expected: datetime
) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    item_of(body)["merchantReference"] = f"rk1/cus_1001/sub_2001/inv_3001/2026-01-15/{reference}"
    item_of(body)["additionalData"]["metadata.rk_invoice_at"] = metadata
    [message] = provider.translate(events_of(provider, signed(body))[0]).messages
    assert isinstance(message.body, PaymentEvent)
    assert message.body.invoice.created_at == expected


def test_unparseable_date_in_the_signed_reference_is_held(provider: AdyenProvider) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    item_of(body)["merchantReference"] = "rk1/cus_1001/sub_2001/inv_3001/last spring/2026-11-15"
    [event] = events_of(provider, signed(body))
    with pytest.raises(BillingContextMissingError, match="not an ISO 8601 date"):
        provider.translate(event)


def test_merchant_billing_context_hook_wins_over_the_convention() -> None:
    provider = AdyenProvider(settings(), billing_context=fixed_context())
    [message] = _translate(provider, load("authorisation_refused_not_enough_balance.json"))
    assert message["body"]["customer"]["id"] == "cus_hook"
    assert message["body"]["invoice"]["id"] == "inv_for_QFQTPCQ8HXSKGK82"


def test_hook_returning_none_falls_back_to_the_convention() -> None:
    calls: list[ProviderEvent] = []

    def hook(event: ProviderEvent) -> BillingContext | None:
        calls.append(event)
        return None

    provider = AdyenProvider(settings(), billing_context=hook)
    [message] = _translate(provider, load("authorisation_refused_not_enough_balance.json"))
    assert len(calls) == 1
    assert message["body"]["invoice"]["id"] == "inv_3001"


def test_missing_acquirer_country_is_held() -> None:
    provider = AdyenProvider(settings(acquirer_country=None))
    [event] = events_of(provider, signed(load("authorisation_refused_not_enough_balance.json")))
    with pytest.raises(BillingContextMissingError, match="ACQUIRER_COUNTRY"):
        provider.translate(event)
    hooked = AdyenProvider(
        settings(acquirer_country=None),
        billing_context=fixed_context(acquirer_country="de"),
    )
    body = hooked.translate(event).messages[0].body
    assert isinstance(body, PaymentEvent)
    assert body.transactions[0].acquirer_country == "DE"


def test_capture_failed_needs_the_token_from_the_hook() -> None:
    body = load("capture_failed.json")
    plain = AdyenProvider(settings())
    [event] = events_of(plain, signed(body))
    with pytest.raises(BillingContextMissingError, match="stored payment method"):
        plain.translate(event)
    provider = AdyenProvider(settings(), billing_context=fixed_context(payment_method_id="TOK1"))
    [message] = provider.translate(event).messages
    assert isinstance(message.body, PaymentEvent)
    transaction = message.body.transactions[0]
    assert transaction.psp_transaction_id == "PTXC8KXWLRZ9PB82"  # the payment, not the capture
    assert (transaction.success, transaction.captured) == (False, False)
    assert message.decline is not None
    assert message.decline.raw_code == "Capture Failed"


def test_failed_capture_from_the_java_library_mock_is_a_failed_transaction() -> None:
    provider = AdyenProvider(settings(), billing_context=fixed_context(payment_method_id="TOK1"))
    [event] = events_of(provider, signed(load("sdk_java_capture_false.json")))
    [message] = provider.translate(event).messages
    assert isinstance(message.body, PaymentEvent)
    assert message.body.transactions[0].psp_transaction_id == "7914853620991813"
    assert message.body.transactions[0].amount == Decimal("236.23")
    assert message.decline is not None
    assert message.decline.category is DeclineCategory.GENERIC_SOFT


def test_successful_capture_is_ignored(provider: AdyenProvider) -> None:
    body = load("sdk_java_capture_false.json")
    item_of(body)["success"] = "true"
    [event] = events_of(provider, signed(body))
    translation = provider.translate(event)
    assert translation.messages == ()
    assert translation.ignored is not None


def test_recurring_contract_adds_the_token(provider: AdyenProvider) -> None:
    [message] = _translate(provider, load("recurring_contract.json"))
    assert message["body"] == {
        "customer_id": "cus_1005",
        "psp_customer_id": "cus_1005",
        "payment_method_id": "T4W9M3PQRXK2LB50",
        "reason": "added",
    }


@pytest.mark.parametrize(
    ("event_type", "reason"),
    [
        ("recurring.token.created", "added"),
        ("recurring.token.updated", "updated"),
        ("recurring.token.disabled", "removed"),
        ("recurring.token.alreadyExisting", None),
    ],
)
def test_tokenization_webhooks_become_payment_method_updates(
    provider: AdyenProvider, event_type: str, reason: str | None
) -> None:
    body = load("token_updated.json")
    body["type"] = event_type
    [event] = events_of(provider, provider.sign_test_webhook(json.dumps(body).encode()))
    translation = provider.translate(event)
    if reason is None:
        assert translation.messages == ()
        assert translation.ignored is not None
        return
    [message] = translation.messages
    assert message.body == PaymentMethodUpdate(
        customer_id="cus_1001",
        psp_customer_id="cus_1001",
        payment_method_id="M5N7TQ4TG5PFWR50",
        reason=reason,
    )


def test_auto_rescue_events_are_ignored_with_a_warning(
    provider: AdyenProvider, caplog: pytest.LogCaptureFixture
) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    item_of(body)["eventCode"] = "AUTORESCUE"
    [event] = events_of(provider, signed(body))
    with caplog.at_level(logging.WARNING, logger="recoverkit_adyen"):
        translation = provider.translate(event)
    assert translation.ignored is not None
    assert "Auto Rescue" in caplog.text


def test_rescue_scheduled_on_an_authorisation_logs_a_warning(
    provider: AdyenProvider, caplog: pytest.LogCaptureFixture
) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    item_of(body)["additionalData"]["retry.rescueScheduled"] = "true"
    [event] = events_of(provider, signed(body))
    with caplog.at_level(logging.WARNING, logger="recoverkit_adyen"):
        provider.translate(event)
    assert "Auto Rescue" in caplog.text


def test_unknown_event_codes_are_ignored(provider: AdyenProvider) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    item_of(body)["eventCode"] = "REFUND"
    [event] = events_of(provider, signed(body))
    assert provider.translate(event).ignored == "REFUND: not an event Recover uses"


def test_decline_rides_on_the_message(provider: AdyenProvider) -> None:
    [event] = events_of(
        provider, signed(load("authorisation_refused_mastercard_do_not_retry.json"))
    )
    [message] = provider.translate(event).messages
    assert message.decline is not None
    assert message.decline.response_type is ResponseType.HARD


def test_reference_helper_round_trips_through_the_default_context() -> None:
    reference = format_reference(
        customer_id="cus_9",
        subscription_id="sub_9",
        invoice_id="inv_9",
        subscription_start=date(2025, 1, 31),
        invoice_created_at=datetime(2026, 11, 30, 8, 0, tzinfo=UTC),
        suffix="r2",
    )
    assert reference == "rk1/cus_9/sub_9/inv_9/2025-01-31/2026-11-30/r2"
    event = ProviderEvent(
        provider="adyen",
        dedupe_key="X:AUTHORISATION:false",
        type="AUTHORISATION",
        occurred_at=datetime(2026, 11, 30, tzinfo=UTC),
        data={"merchantReference": reference},
    )
    context = default_billing_context(event)
    assert (context.customer_id, context.subscription_id, context.invoice_id) == (
        "cus_9",
        "sub_9",
        "inv_9",
    )
    assert context.invoice_created_at == datetime(2026, 11, 30, tzinfo=UTC)
    with pytest.raises(ValueError, match="'/'"):
        format_reference(
            customer_id="a/b",
            subscription_id="s",
            invoice_id="i",
            subscription_start=date(2025, 1, 1),
            invoice_created_at=date(2025, 1, 1),
        )
