"""Outbound: retries through Checkout /payments, token removal, RetryStatus and End of Dunning.

PSP calls replay hand-written vcrpy cassettes (``cassettes/adyen/``, ``record_mode="none"``): a
request that differs from the cassette in method, URL, JSON body or Idempotency-Key fails.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from Adyen.exceptions import AdyenAPIResponseError
from adyen_helpers import INVOICE, REPLAY, settings
from recoverkit_adyen import AdyenProvider, default_billing_context
from recoverkit_adyen.retry import (
    idempotency_key_for,
    payment_request,
    retry_reference,
    stored_payment_method_ids,
)

from recoverkit.declines import Advice, DeclineCategory, ResponseType
from recoverkit.errors import (
    ConfigurationError,
    MissingFactError,
    OutcomeUnknownError,
    ProviderError,
    RequestNotSentError,
)
from recoverkit.provider import EndOfDunningPolicy, InvoiceRef, ProviderEvent, RetryInstruction
from recoverkit.schema import EndOfDunning, RetryResults, RetryStatusResponse


def _instruction(attempt: int) -> RetryInstruction:
    return RetryInstruction(
        invoice=INVOICE,
        attempt=attempt,
        idempotency_key=f"inv_3001-{attempt}",
        amount=Decimal("49.99"),
        currency="EUR",
    )


def test_retry_request_is_a_contauth_subscription_charge_on_the_stored_card() -> None:
    body = payment_request(_instruction(1), settings())
    assert body["paymentMethod"] == {"type": "scheme", "storedPaymentMethodId": "M5N7TQ4TG5PFWR50"}
    assert body["shopperReference"] == "cus_1001"
    assert body["shopperInteraction"] == "ContAuth"
    assert body["recurringProcessingModel"] == "Subscription"
    assert body["amount"] == {"value": 4999, "currency": "EUR"}
    assert body["metadata"]["rk_invoice"] == "inv_3001"
    assert body["merchantOrderReference"] == "inv_3001"
    assert body["additionalData"] == {"retry.orderAttemptNumber": "2", "retry.skipRetry": "true"}
    assert "returnUrl" not in body


def test_authorised_retry_is_a_success(provider: AdyenProvider) -> None:
    with REPLAY.use_cassette("payments_authorised.yaml") as cassette:
        attempt = provider.execute_retry(_instruction(1))
    assert cassette.all_played
    assert attempt.success is True
    assert attempt.psp_transaction_id == "V4HZ4RBFJGXXGN99"
    assert attempt.amount == Decimal("49.99")
    assert attempt.payment_method_id == "M5N7TQ4TG5PFWR50"
    assert attempt.network_transaction_id == "580921473618290"
    assert attempt.decline is None


def test_refused_retry_is_a_decline_result_not_an_error(provider: AdyenProvider) -> None:
    with REPLAY.use_cassette("payments_refused.yaml"):
        attempt = provider.execute_retry(_instruction(2))
    assert attempt.success is False
    assert attempt.psp_transaction_id == "QFQTPCQ8HXSKGK99"
    assert attempt.decline is not None
    assert attempt.decline.category is DeclineCategory.INSUFFICIENT_FUNDS
    assert attempt.decline.raw_code == "12"
    assert attempt.decline.iso_response_code == "51"
    assert attempt.decline.mastercard_advice_code == "02"
    assert attempt.decline.network == "mastercard"


def test_validation_error_is_a_provider_error_that_charged_nothing(
    provider: AdyenProvider,
) -> None:
    with (
        REPLAY.use_cassette("payments_error_422.yaml"),
        pytest.raises(ProviderError, match="HTTP 422") as raised,
    ):
        provider.execute_retry(_instruction(3))
    assert not isinstance(raised.value, OutcomeUnknownError | RequestNotSentError)
    assert raised.value.object_id == "inv_3001"
    assert "test_api_key_not_real" not in str(raised.value)


def test_server_error_leaves_the_outcome_unknown(provider: AdyenProvider) -> None:
    with (
        REPLAY.use_cassette("payments_error_500.yaml"),
        pytest.raises(OutcomeUnknownError, match="inv_3001-4"),
    ):
        provider.execute_retry(_instruction(4))


def test_custom_base_url_gets_the_pinned_version() -> None:
    # The SDK's api_checkout_version does not rewrite a custom URL; the plugin builds it itself.
    local = AdyenProvider(
        settings(checkout_base_url="http://127.0.0.1:8080/", checkout_api_version=71)
    )
    with REPLAY.use_cassette("payments_local_emulator_v71.yaml") as cassette:
        attempt = local.execute_retry(_instruction(1))
    assert cassette.all_played
    assert attempt.success is True


def test_connection_refused_is_request_not_sent() -> None:
    closed = AdyenProvider(settings(checkout_base_url="http://127.0.0.1:9"))
    with pytest.raises(RequestNotSentError, match="safe to retry"):
        closed.execute_retry(_instruction(1))


def test_long_idempotency_keys_are_hashed_to_adyens_limit() -> None:
    long_key = "x" * 100
    assert len(idempotency_key_for(long_key)) == 64
    assert idempotency_key_for(long_key) == idempotency_key_for(long_key)
    assert idempotency_key_for("inv_1-1") == "inv_1-1"


def test_retry_without_a_stored_card_is_a_missing_fact(provider: AdyenProvider) -> None:
    bare = InvoiceRef(provider="adyen", invoice_id="inv_x")
    instruction = RetryInstruction(
        invoice=bare, attempt=1, idempotency_key="k", amount=Decimal("1.00"), currency="EUR"
    )
    with pytest.raises(MissingFactError, match="inv_x"):
        provider.execute_retry(instruction)


def test_retry_without_credentials_is_a_configuration_error() -> None:
    provider = AdyenProvider(settings(api_key=None))
    with pytest.raises(ConfigurationError, match="API_KEY"):
        provider.execute_retry(_instruction(1))


def test_default_retry_status_trusts_the_ledger(provider: AdyenProvider) -> None:
    assert provider.retry_status(INVOICE) == RetryStatusResponse(
        retry=True, amount=Decimal("49.99")
    )
    answer = provider.retry_status(InvoiceRef(provider="adyen", invoice_id="inv_x"))
    assert answer.retry is False
    assert answer.reason


def test_retry_status_hook_answers_instead() -> None:
    provider = AdyenProvider(
        settings(),
        retry_status_hook=lambda invoice: RetryStatusResponse(retry=False, reason="paid"),
    )
    assert provider.retry_status(INVOICE).reason == "paid"


def _notice(recovered: bool) -> EndOfDunning:
    return EndOfDunning(
        timestamp=datetime(2026, 12, 1, tzinfo=UTC), invoice_id="inv_3001", recovered=recovered
    )


def test_disable_token_policy_deletes_the_stored_card_once(provider: AdyenProvider) -> None:
    with REPLAY.use_cassette("disable_token.yaml") as cassette:
        provider.end_dunning(_notice(False), INVOICE, EndOfDunningPolicy.DISABLE_TOKEN)
        assert stored_payment_method_ids("cus_1001", provider.settings, provider._adyen()) == []
        provider.end_dunning(_notice(False), INVOICE, EndOfDunningPolicy.DISABLE_TOKEN)
        assert stored_payment_method_ids("cus_1001", provider.settings, provider._adyen()) == []
    assert cassette.all_played  # exactly one DELETE was sent


def test_recovered_invoice_keeps_its_card(provider: AdyenProvider) -> None:
    # no cassette: any HTTP call would fail
    provider.end_dunning(_notice(True), INVOICE, EndOfDunningPolicy.DISABLE_TOKEN)


def test_subscription_policies_need_the_merchant_hook(provider: AdyenProvider) -> None:
    with pytest.raises(ConfigurationError, match="end_dunning_hook"):
        provider.end_dunning(_notice(False), INVOICE, EndOfDunningPolicy.CANCEL_SUBSCRIPTION)
    calls: list[tuple[str, EndOfDunningPolicy]] = []
    hooked = AdyenProvider(
        settings(),
        end_dunning_hook=lambda notice, invoice, policy: calls.append((invoice.invoice_id, policy)),
    )
    hooked.end_dunning(_notice(False), INVOICE, EndOfDunningPolicy.CANCEL_SUBSCRIPTION)
    assert calls == [("inv_3001", EndOfDunningPolicy.CANCEL_SUBSCRIPTION)]


def test_reconcile_calls_the_merchant_hook() -> None:
    seen: list[str] = []
    provider = AdyenProvider(
        settings(), reconcile_hook=lambda result, invoice: seen.append(result.butter_id)
    )
    result = RetryResults(
        timestamp=datetime(2026, 12, 1, tzinfo=UTC),
        butter_id="b_1",
        invoice_id="inv_3001",
        success=True,
    )
    provider.reconcile(result, INVOICE)
    assert seen == ["b_1"]
    AdyenProvider(settings()).reconcile(result, INVOICE)  # no hook: nothing to write at Adyen


def test_end_of_dunning_setting_refuses_policies_adyen_cannot_apply() -> None:
    with pytest.raises(ValueError, match="end_dunning_hook"):
        settings(end_of_dunning_policy="cancel_subscription")
    assert settings(end_of_dunning_policy="disable_token").end_of_dunning_policy is (
        EndOfDunningPolicy.DISABLE_TOKEN
    )


def test_refused_decline_keeps_advice_from_the_table(provider: AdyenProvider) -> None:
    with REPLAY.use_cassette("payments_refused.yaml"):
        attempt = provider.execute_retry(_instruction(2))
    assert attempt.decline is not None
    assert attempt.decline.response_type is ResponseType.SOFT
    assert attempt.decline.advice is Advice.TRY_AGAIN_LATER


class _FakeResult:
    def __init__(self, message: dict[str, Any]) -> None:
        self.message, self.psp = message, message.get("pspReference")


class _FakeCheckout:
    """Stands in for ``Adyen.Adyen`` to pin resultCode handling without HTTP."""

    def __init__(self, message: dict[str, Any]) -> None:
        self.sent: list[tuple[dict[str, Any], str]] = []
        outer = self

        class _Payments:
            def payments(self, body: dict[str, Any], idempotency_key: str) -> _FakeResult:
                outer.sent.append((body, idempotency_key))
                return _FakeResult(message)

        class _Checkout:
            payments_api = _Payments()

        self.checkout = _Checkout()


@pytest.mark.parametrize("result_code", ["Pending", "Received", "SomethingNew"])
def test_pending_answers_leave_the_outcome_to_the_webhook(result_code: str) -> None:
    fake = _FakeCheckout({"resultCode": result_code, "pspReference": "P1"})
    provider = AdyenProvider(settings(), client=fake)
    with pytest.raises(OutcomeUnknownError, match=result_code):
        provider.execute_retry(_instruction(1))
    assert fake.sent[0][1] == "inv_3001-1"


def test_shopper_action_is_an_authentication_decline() -> None:
    fake = _FakeCheckout({"resultCode": "RedirectShopper", "pspReference": "P2"})
    attempt = AdyenProvider(settings(), client=fake).execute_retry(_instruction(1))
    assert attempt.success is False
    assert attempt.decline is not None
    assert attempt.decline.category is DeclineCategory.AUTHENTICATION_REQUIRED
    assert attempt.decline.response_type is ResponseType.HARD


def test_partial_authorisation_needs_a_human() -> None:
    fake = _FakeCheckout(
        {
            "resultCode": "PartiallyAuthorised",
            "pspReference": "P3",
            "amount": {"value": 2000, "currency": "EUR"},
        }
    )
    with pytest.raises(OutcomeUnknownError, match=r"20\.00 EUR"):
        AdyenProvider(settings(), client=fake).execute_retry(_instruction(1))


class _Failing:
    def __init__(self, status: int) -> None:
        error = AdyenAPIResponseError("failed", status_code=status, error_code="x")
        outer = self
        self.error = error

        class _Payments:
            def payments(self, body: dict[str, Any], idempotency_key: str) -> None:
                raise outer.error

        class _Checkout:
            payments_api = _Payments()

        self.checkout = _Checkout()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (502, OutcomeUnknownError),
        (504, OutcomeUnknownError),
        (408, OutcomeUnknownError),
        (429, RequestNotSentError),
        (401, ProviderError),
        (404, ProviderError),
    ],
)
def test_http_errors_say_whether_the_charge_may_have_happened(
    status: int, error: type[ProviderError]
) -> None:
    provider = AdyenProvider(settings(), client=_Failing(status))
    with pytest.raises(error) as raised:
        provider.execute_retry(_instruction(1))
    assert type(raised.value) is error


@pytest.mark.parametrize(
    ("extra", "customer", "reference"),
    [
        (
            {
                "subscription_start": datetime(2026, 1, 15, tzinfo=UTC),
                "invoice_created_at": datetime(2026, 11, 15, 9, tzinfo=UTC),
            },
            "cus_1001",
            "rk1/cus_1001/sub_2001/inv_3001/2026-01-15/2026-11-15/r2",
        ),
        ({}, "cus_1001", "inv_3001-r2"),  # dates unknown: the webhook needs the hook
        (
            {
                "subscription_start": datetime(2026, 1, 15, tzinfo=UTC),
                "invoice_created_at": datetime(2026, 11, 15, tzinfo=UTC),
            },
            "cus/with/slashes",
            "inv_3001-r2",
        ),
        (
            {
                "subscription_start": datetime(2026, 1, 15, tzinfo=UTC),
                "invoice_created_at": datetime(2026, 11, 15, tzinfo=UTC),
            },
            "c" * 60,  # over Adyen's 80 characters in the convention
            "inv_3001-r2",
        ),
    ],
)
def test_retry_reference_names_the_invoice_in_the_signed_convention_when_it_can(
    extra: dict[str, object], customer: str, reference: str
) -> None:
    invoice = dataclasses.replace(INVOICE, customer_id=customer, extra=extra)
    assert retry_reference(invoice, 2) == reference
    if reference.startswith("rk1/"):
        event = ProviderEvent(
            provider="adyen",
            dedupe_key="X:AUTHORISATION:false",
            type="AUTHORISATION",
            occurred_at=datetime(2026, 11, 20, tzinfo=UTC),
            data={"merchantReference": reference},
        )
        context = default_billing_context(event)
        assert (context.customer_id, context.invoice_id) == (customer, "inv_3001")
