"""end_dunning (none | cancel_subscription) and reconcile."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from bt_support import cassette, make_provider
from recoverkit_braintree import reconcile
from recoverkit_braintree.provider import BraintreeProvider

from recoverkit.provider import EndOfDunningPolicy, InvoiceRef
from recoverkit.schema import EndOfDunning, PspTransaction, RetryResults

INVOICE = InvoiceRef(
    provider="braintree", invoice_id="sub_demo_1:2026-11-30", psp_subscription_id="sub_demo_1"
)
NOW = datetime(2026, 12, 20, tzinfo=UTC)


def test_cancel_subscription_runs_once_and_is_a_no_op_the_second_time(
    provider: BraintreeProvider,
) -> None:
    notice = EndOfDunning(timestamp=NOW, invoice_id=INVOICE.invoice_id, recovered=False)
    policy = EndOfDunningPolicy.CANCEL_SUBSCRIPTION
    with cassette("end_dunning_cancel_twice") as cass:
        assert reconcile.end_dunning(provider.gateway, notice, INVOICE, policy) is True
        assert reconcile.end_dunning(provider.gateway, notice, INVOICE, policy) is False
    assert cass.all_played
    assert [r.method for r in cass.requests] == ["GET", "PUT", "GET"]


def test_policy_none_and_recovered_invoices_touch_nothing(provider: BraintreeProvider) -> None:
    lost = EndOfDunning(timestamp=NOW, invoice_id=INVOICE.invoice_id, recovered=False)
    won = EndOfDunning(timestamp=NOW, invoice_id=INVOICE.invoice_id, recovered=True)
    with cassette("empty"):
        provider.end_dunning(lost, INVOICE, EndOfDunningPolicy.NONE)
        provider.end_dunning(won, INVOICE, EndOfDunningPolicy.CANCEL_SUBSCRIPTION)


def test_reconcile_finds_braintree_in_agreement() -> None:
    provider = make_provider()
    result = RetryResults(
        timestamp=NOW,
        butter_id="b_1",
        invoice_id=INVOICE.invoice_id,
        psp_transactions=[PspTransaction(psp_transaction_id="txn_retry_2", success=True)],
        amount_collected=Decimal("49.99"),
        currency="USD",
        success=True,
    )
    with cassette("reconcile"):
        assert reconcile.reconcile(provider.lookups, result, INVOICE) == []
