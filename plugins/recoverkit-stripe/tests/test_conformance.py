"""The core's conformance kit, run against the Stripe provider."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from recoverkit_stripe import StripeProvider
from recoverkit_stripe.codes import decline_table as stripe_decline_table

from recoverkit.declines import DeclineTable
from recoverkit.provider import Capability, EndOfDunningPolicy, Provider
from recoverkit.testing import IdempotencyCase, ProviderConformance, Sample
from recoverkit.testing.recording import cassette_vcr

from .conftest import (
    CASSETTES,
    FIXTURES,
    OTHER_SECRET,
    SECRET,
    body,
    event_names,
    load,
    make_provider,
    seed,
)
from .test_outbound import NOTICE, REF, SUCCESS

#: Replays cassettes/stripe; RECOVERKIT_RECORD=1 records them afresh, scrubbed (docs/recording.md).
REPLAY = cassette_vcr(str(CASSETTES), filter_headers=["authorization"])
SAMPLES_DIR = Path(__file__).resolve().parents[1] / "src" / "recoverkit_stripe" / "samples"


def expected(name: str) -> list[dict[str, Any]] | None:
    """Reviewed golden output for a few fixtures (``fixtures/expected/<name>.jsonl``)."""
    path = FIXTURES / "expected" / f"{name}.jsonl"
    if not path.exists():
        return None
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class TestStripeConformance(ProviderConformance):
    signature_headers = ("Stripe-Signature",)

    @pytest.fixture
    def provider(self) -> Provider:
        provider = make_provider(SECRET, max_network_retries=0)
        seed(provider)  # facts the fixtures refer to, as if fetched after each event
        return provider

    @pytest.fixture
    def wrong_secret_provider(self) -> Provider:
        return make_provider(OTHER_SECRET)

    @pytest.fixture
    def secrets(self) -> list[str]:
        return [SECRET, "sk_test_recoverkit"]

    @pytest.fixture
    def samples(self, provider: Provider) -> list[Sample]:
        # Every fixture (all event types, both invoice shapes) plus the bundled demo samples.
        fixtures = [
            Sample(name, provider.sign_test_webhook(body(name)), expected(name))
            for name in event_names()
        ]
        bundled = [
            Sample(f"bundled-{i}", request) for i, request in enumerate(provider.sample_webhooks())
        ]
        return fixtures + bundled

    @pytest.fixture
    def decline_table(self) -> DeclineTable:
        return stripe_decline_table()

    @pytest.fixture
    def do_not_try_again_samples(self, provider: Provider) -> list[Sample]:
        # The invoice attempt's charge declined generic_decline (soft in the table) with
        # advice_code do_not_try_again, in both invoice shapes; the non-invoice fixture carries
        # the advice on its PaymentIntent's error.
        objects = load("objects")
        for charge in [*objects["charge"], *objects["charges_of"][0]["data"]]:
            if charge["id"] == "ch_RKfail01":
                charge["outcome"].update(reason="generic_decline", advice_code="do_not_try_again")
        assert isinstance(provider, StripeProvider)
        seed(provider, objects)
        names = ["invoice.payment_failed.legacy", "invoice.payment_failed.basil"]
        names.append("charge.failed.non_invoice")
        return [Sample(name, provider.sign_test_webhook(body(name))) for name in names]

    @pytest.fixture
    def scanned_paths(self) -> list[Path]:
        return [FIXTURES, CASSETTES, SAMPLES_DIR]

    @pytest.fixture
    def idempotency_cases(self, provider: Any) -> list[IdempotencyCase]:
        def read_invoice() -> object:
            return provider.client.v1.invoices.retrieve("in_RKdemo01").to_dict()

        def read_subscription() -> object:
            return provider.client.v1.subscriptions.retrieve("sub_RKdemo01").to_dict()

        def cassette(name: str) -> Any:
            return lambda: REPLAY.use_cassette(name)

        return [
            IdempotencyCase(
                "reconcile success on a paid invoice",
                Capability.RECONCILE,
                lambda: provider.reconcile(SUCCESS, REF),
                read_invoice,
                cassette("reconcile_annotates_paid_invoice.yaml"),
            ),
            IdempotencyCase(
                "end_dunning mark_uncollectible",
                Capability.END_DUNNING,
                lambda: provider.end_dunning(NOTICE, REF, EndOfDunningPolicy.MARK_UNCOLLECTIBLE),
                read_invoice,
                cassette("end_dunning_mark_uncollectible.yaml"),
            ),
            IdempotencyCase(
                "end_dunning void",
                Capability.END_DUNNING,
                lambda: provider.end_dunning(NOTICE, REF, EndOfDunningPolicy.VOID),
                read_invoice,
                cassette("end_dunning_void.yaml"),
            ),
            IdempotencyCase(
                "end_dunning cancel_subscription",
                Capability.END_DUNNING,
                lambda: provider.end_dunning(NOTICE, REF, EndOfDunningPolicy.CANCEL_SUBSCRIPTION),
                read_subscription,
                cassette("end_dunning_cancel_subscription.yaml"),
            ),
        ]
