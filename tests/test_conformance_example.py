"""The conformance kit, run against the example provider in tests/support."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from example_provider import HERE, TEST_SECRET, ExampleProvider, sample_body

from recoverkit import (
    Capability,
    EndOfDunningPolicy,
    InvoiceRef,
    Provider,
    ProviderEvent,
    Translation,
)
from recoverkit.declines import DeclineTable, ResponseType
from recoverkit.schema import EndOfDunning, RetryResults
from recoverkit.testing import IdempotencyCase, ProviderConformance, Sample
from recoverkit.testing.scan import with_check_digit


class TestExampleConformance(ProviderConformance):
    signature_headers = ("Example-Signature",)

    @pytest.fixture
    def provider(self) -> Provider:
        return ExampleProvider.with_webhook_secret(TEST_SECRET)

    @pytest.fixture
    def wrong_secret_provider(self) -> Provider:
        return ExampleProvider.with_webhook_secret("another_secret")

    @pytest.fixture
    def samples(self, provider: Provider) -> list[Sample]:
        # Golden files: what `recoverkit translate` must print for each sample, line by line.
        out = []
        for expected in sorted((HERE / "example_expected").glob("*.jsonl")):
            body = (HERE / "example_samples" / f"{expected.stem}.json").read_bytes()
            lines = expected.read_text(encoding="utf-8").splitlines()
            out.append(
                Sample(
                    expected.stem,
                    provider.sign_test_webhook(body),
                    [json.loads(line) for line in lines],
                )
            )
        return out

    @pytest.fixture
    def secrets(self) -> list[str]:
        return [TEST_SECRET]

    @pytest.fixture
    def decline_table(self) -> DeclineTable:
        return DeclineTable.from_csv(HERE / "example_declines.csv")

    @pytest.fixture
    def do_not_try_again_samples(self, provider: Provider) -> list[Sample]:
        # Soft codes whose decline carries an explicit "do not try again": the PSP's own advice
        # field, and a raw Mastercard MAC 03 / 21.
        mastercard = {"payment_method": "pm_ex_1", "funding": "credit", "network": "mastercard"}
        cases = {
            "advice do_not_try_again": {"advice": "do_not_try_again"},
            "mastercard mac 03": {"advice_code": "03", "card": mastercard},
            "mastercard mac 21": {"advice_code": "21", "card": mastercard},
        }
        out = []
        for name, change in cases.items():
            payload = json.loads(sample_body("charge_failed"))
            payload["data"].update({"failure_code": "do_not_honor", **change})
            out.append(Sample(name, provider.sign_test_webhook(json.dumps(payload).encode())))
        return out

    @pytest.fixture
    def scanned_paths(self) -> list[Path]:
        return [HERE / "example_samples", HERE / "example_declines.csv"]

    @pytest.fixture
    def idempotency_cases(self, provider: Provider) -> list[IdempotencyCase]:
        ExampleProvider.ledger.clear()
        invoice = InvoiceRef(provider="example", invoice_id="in_ex_1")
        now = datetime(2026, 11, 30, tzinfo=UTC)
        result = RetryResults(timestamp=now, butter_id="104", invoice_id="in_ex_1", success=True)
        notice = EndOfDunning(timestamp=now, invoice_id="in_ex_1", recovered=False)

        def state() -> object:
            return repr(ExampleProvider.ledger)

        return [
            IdempotencyCase(
                "paid", Capability.RECONCILE, lambda: provider.reconcile(result, invoice), state
            ),
            IdempotencyCase(
                "uncollectible",
                Capability.END_DUNNING,
                lambda: provider.end_dunning(
                    notice, invoice, EndOfDunningPolicy.MARK_UNCOLLECTIBLE
                ),
                state,
            ),
        ]


class _Broken(ExampleProvider):
    """Accepts any signature: the kit must catch it."""

    def verify(self, request: object) -> None:  # type: ignore[override]
        return None


def test_kit_fails_a_provider_that_accepts_tampered_bodies() -> None:
    kit = TestExampleConformance()
    provider = _Broken.with_webhook_secret(TEST_SECRET)
    samples = [Sample("s", r) for r in provider.sample_webhooks()]
    with pytest.raises(pytest.fail.Exception, match="DID NOT RAISE"):
        kit.test_tampered_body_is_rejected(provider, samples)


def test_kit_fails_a_declared_capability_without_a_case() -> None:
    kit = TestExampleConformance()
    provider = ExampleProvider.with_webhook_secret(TEST_SECRET)
    with pytest.raises(AssertionError, match="add an IdempotencyCase"):
        kit.test_reconcile_is_idempotent(provider, [])


def test_kit_finds_a_card_number_in_fixtures(tmp_path: Path) -> None:
    leaked = tmp_path / "cassette.yaml"
    # A Luhn-valid number that is not a documented test card, built at run time.
    leaked.write_text(f'number: "{with_check_digit("453957876362148")}"\n', encoding="utf-8")
    kit = TestExampleConformance()
    with pytest.raises(AssertionError, match="card number"):
        kit.test_no_card_data_or_secrets_in_fixtures([leaked])


class _Softening(ExampleProvider):
    """Drops the advice and reports the decline soft: the kit must catch it."""

    def translate(self, event: ProviderEvent) -> Translation:
        translation = super().translate(event)
        messages = tuple(
            dataclasses.replace(
                m,
                decline=dataclasses.replace(
                    m.decline, advice=None, response_type=ResponseType.SOFT
                ),
            )
            if m.decline
            else m
            for m in translation.messages
        )
        return dataclasses.replace(translation, messages=messages)


def test_kit_fails_a_provider_that_softens_do_not_try_again() -> None:
    kit = TestExampleConformance()
    provider = _Softening.with_webhook_secret(TEST_SECRET)
    payload = json.loads(sample_body("charge_failed"))
    payload["data"]["advice"] = "do_not_try_again"
    sample = Sample("advised", provider.sign_test_webhook(json.dumps(payload).encode()))
    with pytest.raises(AssertionError, match="do-not-try-again gave soft_decline"):
        kit.test_do_not_try_again_samples_translate_to_hard_declines(provider, [sample])


def test_kit_fails_a_table_row_that_advises_do_not_try_again_but_says_soft() -> None:
    table = DeclineTable.from_text(
        "code,category,response_type,iso_response_code,advice,source\n"
        "no_retry,generic_soft,soft_decline,,do_not_try_again,https://docs.example.com/x\n",
        name="bad/declines.csv",
    )
    kit = TestExampleConformance()
    with pytest.raises(AssertionError, match=r"bad/declines.csv, line 2: code 'no_retry' advises"):
        kit.test_do_not_try_again_advice_is_hard_for_every_code(table)
