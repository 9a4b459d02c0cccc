"""retry_status and execute_retry: retry_charge under a claim, sale with an idempotency key."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from braintree.exceptions.http.timeout_error import ReadTimeoutError
from bt_support import cassette, make_provider
from recoverkit_braintree.claims import Claim, MemoryClaims, SqliteClaims
from recoverkit_braintree.provider import BraintreeProvider
from recoverkit_braintree.retry import execute_retry

from recoverkit.declines import DeclineCategory
from recoverkit.errors import OutcomeUnknownError, ProviderError
from recoverkit.provider import InvoiceRef, RetryInstruction

SUB_INVOICE = InvoiceRef(
    provider="braintree",
    invoice_id="sub_demo_1:2026-11-30",
    psp_subscription_id="sub_demo_1",
    psp_transaction_id="txn_declined_1",
    amount=Decimal("49.99"),
    currency="USD",
)
ONE_OFF = InvoiceRef(
    provider="braintree",
    invoice_id="inv_77",
    psp_invoice_id="inv_77",
    payment_method_id="pm_card_demo_1",
    amount=Decimal("20.00"),
    currency="USD",
)


def _instruction(invoice: InvoiceRef, key: str = "inv-attempt-2") -> RetryInstruction:
    assert invoice.amount is not None
    return RetryInstruction(
        invoice=invoice, attempt=2, idempotency_key=key, amount=invoice.amount, currency="USD"
    )


def _capture() -> tuple[list[bytes], Callable[[Any], Any]]:
    """Collect the bodies of requests as they are sent (cassette entries store none, so the
    stored requests vcrpy also passes through the hook add empty bodies; the sent one is last)."""
    bodies: list[bytes] = []

    def hook(request: Any) -> Any:
        body = request.body
        bodies.append(body if isinstance(body, bytes) else (body or "").encode())
        return request

    return bodies, hook


def test_past_due_subscription_with_a_balance_may_be_retried(provider: BraintreeProvider) -> None:
    with cassette("retry_status_past_due"):
        status = provider.retry_status(SUB_INVOICE)
    assert status.retry is True
    assert status.amount == Decimal("49.99")


def test_active_subscription_may_not_be_retried(provider: BraintreeProvider) -> None:
    with cassette("retry_status_active"):
        status = provider.retry_status(SUB_INVOICE)
    assert status.retry is False
    assert status.reason is not None
    assert "Active" in status.reason


def test_declined_retry_charge_is_an_attempt_with_a_decline(provider: BraintreeProvider) -> None:
    bodies, hook = _capture()
    with cassette("retry_charge_declined", before_record_request=hook) as cass:
        attempt = provider.execute_retry(_instruction(SUB_INVOICE))
    assert cass.all_played
    assert attempt.success is False
    assert attempt.psp_transaction_id == "txn_retry_1"
    assert attempt.decline is not None
    assert attempt.decline.category is DeclineCategory.INSUFFICIENT_FUNDS
    body = bodies[-1].decode()
    assert "<subscription_id>sub_demo_1</subscription_id>" in body
    assert "<amount>49.99</amount>" in body
    claim = provider.claims.get("sub_demo_1")
    assert claim is not None
    assert claim.transaction_id == "txn_retry_1"


def test_successful_retry_charge(provider: BraintreeProvider) -> None:
    with cassette("retry_charge_success"):
        attempt = provider.execute_retry(_instruction(SUB_INVOICE))
    assert attempt.success is True
    assert attempt.amount == Decimal("49.99")
    assert attempt.decline is None


def test_after_a_crash_the_claimed_attempt_is_found_not_charged_again() -> None:
    claims = MemoryClaims()
    claims.put(Claim("sub_demo_1", "inv-attempt-2", datetime(2026, 12, 3, 9, 59, tzinfo=UTC)))
    provider = BraintreeProvider(make_provider().settings, claims=claims)
    # The cassette has no POST: a second charge would fail the test.
    with cassette("retry_charge_after_crash") as cass:
        attempt = provider.execute_retry(_instruction(SUB_INVOICE))
    assert cass.all_played
    assert attempt.psp_transaction_id == "txn_retry_1"
    assert attempt.success is False
    claim = claims.get("sub_demo_1")
    assert claim is not None
    assert claim.transaction_id == "txn_retry_1"


def test_subscription_that_is_no_longer_past_due_is_not_charged(
    provider: BraintreeProvider,
) -> None:
    with cassette("retry_charge_not_past_due"), pytest.raises(ProviderError, match="91531"):
        provider.execute_retry(_instruction(SUB_INVOICE))
    assert provider.claims.get("sub_demo_1") is None


def test_braintree_refusing_retry_charge_releases_the_claim(provider: BraintreeProvider) -> None:
    with cassette("retry_charge_refused"), pytest.raises(ProviderError, match="91531"):
        provider.execute_retry(_instruction(SUB_INVOICE))
    assert provider.claims.get("sub_demo_1") is None


def test_one_off_invoice_is_charged_with_sale_recurring_and_the_idempotency_key(
    provider: BraintreeProvider,
) -> None:
    bodies, hook = _capture()
    with cassette("sale_success", before_record_request=hook):
        attempt = provider.execute_retry(_instruction(ONE_OFF, key="inv_77-attempt-2"))
    assert attempt.success is True
    assert attempt.psp_transaction_id == "txn_sale_1"
    body = bodies[-1].decode()
    assert "<transaction_source>recurring</transaction_source>" in body
    assert "<api_request_key>inv_77-attempt-2</api_request_key>" in body
    assert "<payment_method_token>pm_card_demo_1</payment_method_token>" in body
    assert '<submit_for_settlement type="boolean">true</submit_for_settlement>' in body
    assert "<order_id>inv_77</order_id>" in body


def test_declined_sale_is_an_attempt_not_an_exception(provider: BraintreeProvider) -> None:
    with cassette("sale_declined"):
        attempt = provider.execute_retry(_instruction(ONE_OFF))
    assert attempt.success is False
    assert attempt.decline is not None
    assert attempt.decline.category is DeclineCategory.NOT_PERMITTED


def test_sqlite_claims_survive_a_new_process(tmp_path: Path) -> None:
    path = tmp_path / "claims.sqlite"
    first = SqliteClaims(path)
    first.put(Claim("sub_1", "key-1", datetime(2026, 12, 3, tzinfo=UTC)))
    again = SqliteClaims(path)
    claim = again.get("sub_1")
    assert claim == Claim("sub_1", "key-1", datetime(2026, 12, 3, tzinfo=UTC))
    again.complete("sub_1", "txn_9")
    assert SqliteClaims(path).get("sub_1") == Claim(
        "sub_1", "key-1", datetime(2026, 12, 3, tzinfo=UTC), "txn_9"
    )
    again.release("sub_1")
    assert SqliteClaims(path).get("sub_1") is None


class _FlakyGateway:
    """A stand-in gateway whose retry_charge times out after reaching Braintree (read timeout)."""

    def __init__(self, subscription_xml_transactions: list[object]) -> None:
        self.charges = 0
        self.transactions = subscription_xml_transactions
        self.subscription = self
        self.transaction = self

    def find(self, subscription_id: str) -> object:
        return SimpleNamespace(
            id=subscription_id, status="Past Due", transactions=self.transactions
        )

    def retry_charge(self, *args: object) -> object:
        self.charges += 1
        raise ReadTimeoutError("read timed out")


def test_read_timeout_keeps_the_claim_and_the_next_call_looks_the_attempt_up() -> None:
    claims = MemoryClaims()
    gateway = _FlakyGateway([])
    claimed_at = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
    with pytest.raises(OutcomeUnknownError, match="look the outcome up"):
        execute_retry(gateway, claims, _instruction(SUB_INVOICE), now=claimed_at)
    assert gateway.charges == 1
    claim = claims.get("sub_demo_1")
    assert claim is not None
    assert claim.transaction_id is None
    # Braintree did create the transaction; the subscription now lists it.
    gateway.transactions = [
        SimpleNamespace(
            id="txn_after_timeout",
            status="submitted_for_settlement",
            amount=Decimal("49.99"),
            currency_iso_code="USD",
            created_at=datetime(2026, 12, 3, 10, 0, 2),
        )
    ]
    attempt = execute_retry(gateway, claims, _instruction(SUB_INVOICE), now=claimed_at)
    assert gateway.charges == 1  # not charged again
    assert attempt.psp_transaction_id == "txn_after_timeout"
    assert attempt.success is True
