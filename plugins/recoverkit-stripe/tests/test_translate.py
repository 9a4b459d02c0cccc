"""Translation of every event type in both invoice shapes, with facts from a fake API."""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from recoverkit_stripe.translate import translate_event

from recoverkit.declines import Advice, DeclineCategory, ResponseType
from recoverkit.errors import MissingFactError
from recoverkit.provider import BillingContext, ProviderEvent, Translation
from recoverkit.schema import PaymentEvent, PaymentMethodUpdate, parse

from .conftest import FakeFacts, event_names, load

SHAPES = ("legacy", "basil")


def event_of(data: dict[str, Any]) -> ProviderEvent:
    return ProviderEvent(
        provider="stripe",
        dedupe_key=data["id"],
        type=data["type"],
        occurred_at=datetime.fromtimestamp(data["created"], UTC),
        data=data,
        object_id=data["data"]["object"].get("id"),
    )


def run(name_or_data: str | dict[str, Any], facts: FakeFacts, **kw: Any) -> Translation:
    data = load(name_or_data) if isinstance(name_or_data, str) else name_or_data
    return translate_event(event_of(data), facts, acquirer_country="US", **kw)


def only_payment(translation: Translation) -> PaymentEvent:
    assert translation.ignored is None, translation.ignored
    (message,) = translation.messages
    assert isinstance(message.body, PaymentEvent)
    parse(PaymentEvent, json.loads(message.to_json())["body"])  # valid on the wire
    return message.body


@pytest.mark.parametrize("shape", SHAPES)
def test_invoice_payment_failed_becomes_one_declined_transaction(
    shape: str, facts: FakeFacts
) -> None:
    translation = run(f"invoice.payment_failed.{shape}", facts)
    payment = only_payment(translation)
    assert payment.customer.id == "cus_RKdemo01"
    assert payment.subscription.id == "sub_RKdemo01"
    assert payment.subscription.start_date == datetime(2025, 11, 1, tzinfo=UTC)
    assert payment.subscription.billing is not None
    assert payment.subscription.billing.period == "month"
    assert payment.invoice.id == "in_RKdemo01"
    (tx,) = payment.transactions
    assert tx.psp_transaction_id == "ch_RKfail01"
    assert tx.amount == Decimal("20.00")
    assert tx.currency == "USD"
    assert tx.funding_source == "DEBIT"
    assert tx.scheme == "visa"
    assert tx.issuer_country == "US"
    assert tx.network_transaction_id == "581123456789014"
    assert tx.success is False
    assert tx.outcome.response_type == "soft_decline"
    assert tx.outcome.network_status == "declined_by_network"
    assert tx.outcome.processor_response_code == 51
    decline = translation.messages[0].decline
    assert decline is not None
    assert decline.category is DeclineCategory.INSUFFICIENT_FUNDS
    assert decline.raw_code == "insufficient_funds"
    assert decline.advice is Advice.TRY_AGAIN_LATER
    assert decline.iso_response_code == "51"
    assert decline.visa_category == 2


def test_basil_failure_takes_the_attempts_charge_not_the_intents_latest(facts: FakeFacts) -> None:
    # The PaymentIntent has since succeeded (latest_charge = ch_RKok01): the failed attempt the
    # event reports must still be ch_RKfail01, found among the charges created before the event.
    assert facts.store["payment_intent"]["pi_RKdemo01"]["latest_charge"]["id"] == "ch_RKok01"
    payment = only_payment(run("invoice.payment_failed.basil", facts))
    assert payment.transactions[0].psp_transaction_id == "ch_RKfail01"
    assert ("invoice_payments", "in_RKdemo01") in facts.calls  # payments were not in the payload
    assert ("charges_of", "pi_RKdemo01") in facts.calls


def test_legacy_failure_uses_the_charge_the_invoice_names(facts: FakeFacts) -> None:
    run("invoice.payment_failed.legacy", facts)
    assert ("charge", "ch_RKfail01") in facts.calls
    assert ("invoice_payments", "in_RKdemo01") not in facts.calls


@pytest.mark.parametrize("shape", SHAPES)
def test_invoice_payment_succeeded_becomes_one_successful_transaction(
    shape: str, facts: FakeFacts
) -> None:
    translation = run(f"invoice.payment_succeeded.{shape}", facts)
    (tx,) = only_payment(translation).transactions
    assert tx.psp_transaction_id == "ch_RKok01"
    assert tx.success is True
    assert tx.outcome.response_type is None
    assert translation.messages[0].decline is None


@pytest.mark.parametrize("shape", SHAPES)
def test_one_failed_attempt_forwards_exactly_one_transaction(shape: str, facts: FakeFacts) -> None:
    names = [
        f"charge.failed.invoice.{shape}",
        f"payment_intent.payment_failed.{shape}",
        f"invoice.payment_failed.{shape}",
        f"invoice.payment_action_required.{shape}",
    ]
    messages = [m for name in names for m in run(name, facts).messages]
    assert [m.dedupe_key for m in messages] == ["stripe:charge:ch_RKfail01"]


@pytest.mark.parametrize("shape", SHAPES)
def test_one_successful_attempt_forwards_exactly_one_transaction(
    shape: str, facts: FakeFacts
) -> None:
    names = [
        f"charge.succeeded.invoice.{shape}",
        f"payment_intent.succeeded.{shape}",
        f"invoice.payment_succeeded.{shape}",
        f"invoice.paid.{shape}",
    ]
    messages = [m for name in names for m in run(name, facts).messages]
    assert [m.dedupe_key for m in messages] == ["stripe:charge:ch_RKok01"]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("invoice.paid.legacy", "out-of-band"),
        ("invoice.payment_action_required.basil", "invoice.payment_failed"),
        ("charge.failed.invoice.legacy", "pays invoice in_RKdemo01"),
        ("charge.failed.invoice.basil", "pays invoice in_RKdemo01"),
        ("payment_intent.payment_failed.basil", "carries this attempt"),
        ("customer.subscription.updated.legacy", "ledger state"),
        ("customer.subscription.deleted.basil", "ledger state"),
        ("invoice.voided.basil", "ledger state"),
        ("invoice.marked_uncollectible.legacy", "ledger state"),
        ("customer.created", "carries nothing"),
    ],
)
def test_no_op_events_say_why(name: str, reason: str, facts: FakeFacts) -> None:
    translation = run(name, facts)
    assert translation.messages == ()
    assert translation.ignored is not None
    assert reason in translation.ignored


def test_basil_charge_is_matched_to_its_invoice_through_invoice_payments(facts: FakeFacts) -> None:
    run("charge.failed.invoice.basil", facts)
    assert ("invoice_of", "pi_RKdemo01") in facts.calls


def test_legacy_non_invoice_charge_needs_no_invoice_lookup(facts: FakeFacts) -> None:
    run("charge.failed.non_invoice", facts)
    assert not [c for c in facts.calls if c[0] == "invoice_of"]


def test_non_invoice_charge_uses_metadata_billing_context(facts: FakeFacts) -> None:
    translation = run("charge.failed.non_invoice", facts)
    payment = only_payment(translation)
    assert payment.customer.id == "merchant-cus-42"
    assert payment.customer.psp_id == "cus_RKdemo01"
    assert payment.subscription.id == "merchant-sub-42"
    assert payment.invoice.id == "merchant-inv-42"
    decline = translation.messages[0].decline
    assert decline is not None
    # The PaymentIntent's last_payment_error names this charge: its decline_code wins, and the
    # raw Mastercard MAC 03 makes the decline hard, never to be retried.
    assert decline.raw_code == "do_not_honor"
    assert decline.mastercard_advice_code == "03"
    assert decline.response_type is ResponseType.HARD
    assert decline.advice is Advice.DO_NOT_TRY_AGAIN


def test_non_invoice_charge_without_billing_context_is_ignored_with_instructions(
    facts: FakeFacts,
) -> None:
    data = load("charge.failed.non_invoice")
    data["data"]["object"]["metadata"] = {}
    data["data"]["object"]["payment_intent"] = None
    translation = run(data, facts)
    assert translation.ignored is not None
    assert "recover_subscription_id" in translation.ignored
    assert "billing_context" in translation.ignored


def test_billing_context_resolver_wins_over_metadata(facts: FakeFacts) -> None:
    def resolver(event: ProviderEvent) -> BillingContext:
        return BillingContext(
            customer_id="c-1",
            subscription_id="s-1",
            invoice_id="i-1",
            subscription_start=datetime(2025, 1, 1, tzinfo=UTC),
            invoice_created_at=datetime(2025, 12, 1, tzinfo=UTC),
        )

    payment = only_payment(run("charge.succeeded.non_invoice", facts, billing_context=resolver))
    assert (payment.customer.id, payment.subscription.id, payment.invoice.id) == (
        "c-1",
        "s-1",
        "i-1",
    )


def test_blocked_charge_is_a_block_not_a_decline(facts: FakeFacts) -> None:
    translation = run("charge.failed.blocked", facts)
    payment = only_payment(translation)
    decline = translation.messages[0].decline
    assert decline is not None
    assert decline.category is DeclineCategory.BLOCKED_BY_PSP
    assert decline.sent_to_network is False
    assert decline.raw_code == "previously_declined_do_not_retry"
    assert payment.transactions[0].outcome.network_status == "not_sent_to_network"


def test_specific_failure_code_wins_over_card_declined(facts: FakeFacts) -> None:
    translation = run("charge.failed.expired_card", facts)
    decline = translation.messages[0].decline
    assert decline is not None
    assert decline.raw_code == "expired_card"
    assert decline.category is DeclineCategory.CARD_DATA_INVALID
    assert decline.response_type is ResponseType.HARD


def test_unknown_decline_code_falls_back_to_generic_with_a_warning(
    facts: FakeFacts, caplog: pytest.LogCaptureFixture
) -> None:
    data = load("charge.failed.expired_card")
    charge = data["data"]["object"]
    charge["failure_code"] = "brand_new_code"
    charge["outcome"]["reason"] = "brand_new_code"
    with caplog.at_level(logging.WARNING):
        translation = run(data, facts)
    decline = translation.messages[0].decline
    assert decline is not None
    assert decline.category is DeclineCategory.GENERIC_SOFT
    assert decline.recognized is False
    assert "brand_new_code" in caplog.text


@pytest.mark.parametrize(
    ("currency", "minor", "major"),
    [
        ("jpy", 2000, Decimal("2000")),
        ("kwd", 2000, Decimal("2.000")),
        ("usd", 2000, Decimal("20.00")),
    ],
)
def test_amounts_use_stripes_decimal_lists(
    currency: str, minor: int, major: Decimal, facts: FakeFacts
) -> None:
    data = load("charge.succeeded.non_invoice")
    data["data"]["object"].update(currency=currency, amount=minor)
    (tx,) = only_payment(run(data, facts)).transactions
    assert tx.amount == major
    assert str(tx.amount) == str(major)


def test_unknown_funding_is_sent_as_unknown(facts: FakeFacts) -> None:
    data = load("charge.succeeded.non_invoice")
    data["data"]["object"]["payment_method_details"]["card"]["funding"] = "charge_card"
    (tx,) = only_payment(run(data, facts)).transactions
    assert tx.funding_source == "UNKNOWN"


@pytest.mark.parametrize(
    ("name", "reason", "payment_method"),
    [
        ("payment_method.automatically_updated", "network_updated", "pm_RKdemo01"),
        ("payment_method.updated", "updated", "pm_RKdemo01"),
        ("payment_method.attached", "added", "pm_RKdemo01"),
        ("payment_method.detached", "removed", "pm_RKdemo01"),
        ("customer.source.updated", "source_updated", "card_RKlegacy01"),
    ],
)
def test_card_changes_become_payment_method_updates(
    name: str, reason: str, payment_method: str, facts: FakeFacts
) -> None:
    translation = run(name, facts)
    (message,) = translation.messages
    assert isinstance(message.body, PaymentMethodUpdate)
    assert message.body.customer_id == "cus_RKdemo01"
    assert message.body.payment_method_id == payment_method
    assert message.body.reason == reason
    assert facts.calls == []  # no API call for card changes


def test_missing_fact_names_the_object(facts: FakeFacts) -> None:
    del facts.store["subscription"]["sub_RKdemo01"]
    with pytest.raises(MissingFactError, match="sub_RKdemo01") as info:
        run("invoice.payment_failed.legacy", facts)
    assert info.value.object_id == "sub_RKdemo01"


def test_invoice_without_any_charge_is_ignored(facts: FakeFacts) -> None:
    data = load("invoice.payment_failed.legacy")
    data["data"]["object"].update(charge=None, payment_intent=None)
    translation = run(data, facts)
    assert translation.ignored is not None
    assert "no charge was attempted" in translation.ignored


def test_one_off_invoice_is_ignored(facts: FakeFacts) -> None:
    data = load("invoice.payment_failed.basil")
    data["data"]["object"]["parent"] = None
    translation = run(data, facts)
    assert translation.ignored is not None
    assert "no subscription" in translation.ignored


def test_every_fixture_translates_or_says_why(facts: FakeFacts) -> None:
    for name in event_names():
        translation = run(name, facts)
        assert translation.messages or (translation.ignored or "").strip(), name


#: Stripe's charge and payment_method example objects (stripe/openapi, MIT; see SOURCE.md there).
STRIPE_FIXTURES = Path(__file__).parent / "fixtures" / "stripe-openapi" / "fixtures3.slice.json"


def test_stripes_own_example_objects_do_not_crash_translation() -> None:
    """Stripe's OpenAPI example objects carry every documented field (placeholder values)."""
    resources = json.loads(STRIPE_FIXTURES.read_text())["resources"]
    charge = copy.deepcopy(resources["charge"])
    charge.update(status="failed", payment_intent=None, invoice=None)
    charge["metadata"] = {"recover_subscription_id": "s", "recover_subscription_start": "1"}
    facts = FakeFacts({})
    data = {
        "id": "evt_x",
        "object": "event",
        "type": "charge.failed",
        "created": 1,
        "data": {"object": charge},
    }
    translation = run(data, facts)
    # Placeholder values such as outcome.type == "type" must fall to safe defaults, not crash.
    assert translation.messages or translation.ignored
    pm = copy.deepcopy(resources["payment_method"])
    pm["customer"] = "cus_1"
    data = {**data, "type": "payment_method.automatically_updated", "data": {"object": pm}}
    (message,) = run(data, facts).messages
    assert message.body.payment_method_id == pm["id"]
