"""The conformance kit run against the Braintree provider (Braintree API calls from cassettes)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import pytest
from bt_support import (
    CASSETTES,
    FIXTURES,
    OLD_PAIR,
    PAIR,
    cassette,
    fixture_xml,
    make_provider,
    sdk_sample,
)
from recoverkit_braintree import webhooks
from recoverkit_braintree.codes import decline_table as bt_decline_table
from recoverkit_braintree.provider import BraintreeProvider

from recoverkit.declines import DeclineTable
from recoverkit.provider import Capability, EndOfDunningPolicy, InvoiceRef, Provider, WebhookRequest
from recoverkit.schema import EndOfDunning, PspTransaction, RetryResults
from recoverkit.testing import IdempotencyCase, ProviderConformance, Sample

INVOICE = InvoiceRef(
    provider="braintree", invoice_id="sub_demo_1:2026-11-30", psp_subscription_id="sub_demo_1"
)
NOW = datetime(2026, 12, 20, tzinfo=UTC)
CANCEL = EndOfDunningPolicy.CANCEL_SUBSCRIPTION


class TestBraintreeConformance(ProviderConformance):
    """Braintree signs the timestamp inside the payload; the replay window is 26 hours."""

    stale_after = timedelta(hours=26)

    @pytest.fixture
    def provider(self) -> Iterator[Provider]:
        # Translating subscription samples calls transaction.find / subscription.find.
        with cassette("conformance", allow_playback_repeats=True):
            yield make_provider()

    @pytest.fixture
    def wrong_secret_provider(self) -> Provider:
        other = {"public_key": PAIR["public_key"], "private_key": "another_private_key"}
        return make_provider(key_pairs=[other])

    @pytest.fixture
    def samples(self, provider: Provider) -> list[Sample]:
        assert isinstance(provider, BraintreeProvider)
        own = [Sample(f"bundled-{i}", r) for i, r in enumerate(provider.sample_webhooks())]
        revoked = sdk_sample("payment_method_revoked_by_customer", "pm_pp_1")
        payload = parse_qs(revoked.body.decode())["bt_payload"][0].encode()
        key = webhooks.dedupe_key(payload)
        expected = [
            {
                "endpoint": "payment_method_updates",
                "body": {
                    "customer_id": "a-customer-id",
                    "psp_customer_id": "a-customer-id",
                    "payment_method_id": "pm_pp_1",
                    "reason": "revoked_by_customer",
                },
                "decline": None,
                "dedupe_key": f"{key}:pm_pp_1",
            }
        ]
        xml = [
            "charged_unsuccessfully_hard_decline.xml",
            "charged_unsuccessfully_gateway_rejected.xml",
            "account_updater_daily_report.xml",
        ]
        return [
            *own,
            Sample("sdk-revoked", revoked, expected),
            Sample(
                "sdk-revoked-old-key",
                sdk_sample("payment_method_revoked_by_customer", "p", OLD_PAIR),
            ),
            Sample(
                "sdk-charged-unsuccessfully",
                sdk_sample("subscription_charged_unsuccessfully", "txn_declined_1"),
            ),
            Sample("sdk-past-due", sdk_sample("subscription_went_past_due", "sub_demo_1")),
            Sample("sdk-canceled", sdk_sample("subscription_canceled", "sub_demo_1")),
            Sample("sdk-expired", sdk_sample("subscription_expired", "sub_demo_1")),
            Sample(
                "sdk-settlement-declined",
                sdk_sample("transaction_settlement_declined", "txn_ach_1"),
            ),
            Sample("sdk-customer-data", sdk_sample("payment_method_customer_data_updated", "x")),
            *(Sample(name, provider.sign_test_webhook(fixture_xml(name))) for name in xml),
        ]

    @pytest.fixture
    def do_not_try_again_samples(self) -> list[Sample]:
        # An ACH debit returned R02 (account closed): the table's own "do not try again".
        request = sdk_sample("transaction_settlement_declined", "txn_ach_2")
        return [Sample("ach-return-r02", request)]

    @pytest.fixture
    def secrets(self) -> list[str]:
        return [PAIR["private_key"], OLD_PAIR["private_key"]]

    @pytest.fixture
    def decline_table(self) -> DeclineTable:
        return bt_decline_table()

    @pytest.fixture
    def scanned_paths(self) -> list[Path]:
        samples = Path(str(files("recoverkit_braintree") / "samples"))
        return [FIXTURES, CASSETTES, samples]

    @pytest.fixture
    def idempotency_cases(self) -> list[IdempotencyCase]:
        provider = make_provider(end_of_dunning_policy="cancel_subscription")
        notice = EndOfDunning(timestamp=NOW, invoice_id=INVOICE.invoice_id, recovered=False)
        result = RetryResults(
            timestamp=NOW,
            butter_id="b_1",
            invoice_id=INVOICE.invoice_id,
            psp_transactions=[PspTransaction(psp_transaction_id="txn_retry_2", success=True)],
            amount_collected=Decimal("49.99"),
            currency="USD",
            success=True,
        )

        def status() -> object:
            return provider.gateway.subscription.find("sub_demo_1").status

        return [
            IdempotencyCase(
                "cancel subscription at end of dunning",
                Capability.END_DUNNING,
                lambda: provider.end_dunning(
                    notice, INVOICE, EndOfDunningPolicy.CANCEL_SUBSCRIPTION
                ),
                status,
                lambda: cassette("conformance_end_dunning"),
            ),
            IdempotencyCase(
                "reconcile a successful retry",
                Capability.RECONCILE,
                lambda: provider.reconcile(result, INVOICE),
                status,
                lambda: cassette("reconcile", allow_playback_repeats=True),
            ),
        ]

    def unsigned(self, request: WebhookRequest) -> WebhookRequest:
        """Braintree's signature is a form field: drop ``bt_signature`` from the body."""
        fields = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        fields.pop("bt_signature")
        return WebhookRequest(
            urlencode(fields).encode(), dict(request.headers), request.received_at
        )
