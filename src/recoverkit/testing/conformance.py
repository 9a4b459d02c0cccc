"""``ProviderConformance``: the tests every provider plugin inherits.

Subclass it in your plugin's tests (the class name must start with ``Test``) and override the
fixtures below; see ``docs/writing-a-plugin.md``. Tests for capabilities your provider does not
declare are skipped with a reason; a capability declared without a test case fails.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest

from recoverkit import redact
from recoverkit.declines import Advice, DeclineCategory, NormalizedDecline, ResponseType, normalize
from recoverkit.errors import SignatureError, WebhookError
from recoverkit.provider import Capability, Provider, ProviderEvent, WebhookRequest
from recoverkit.rules import Verdict, may_retry
from recoverkit.schema import parse
from recoverkit.testing.scan import scan_paths, scan_text

__all__ = ["IdempotencyCase", "ProviderConformance", "Sample"]


@dataclass(frozen=True, slots=True)
class Sample:
    """A signed webhook as the PSP sends it, and optionally what ``translate`` must print for it.

    ``expected`` is the list of JSON lines ``recoverkit translate`` prints, each parsed to a dict.
    """

    name: str
    request: WebhookRequest
    expected: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class IdempotencyCase:
    """One ``reconcile`` or ``end_dunning`` call to run twice.

    ``action`` performs the call; ``state`` reads the PSP-side state it changes. After the first
    and after the second call ``state()`` must be equal, and the second call must not raise.
    ``context`` wraps both calls, e.g. in a vcrpy cassette or against a local emulator.
    """

    name: str
    capability: Capability
    action: Callable[[], None]
    state: Callable[[], object]
    context: Callable[[], AbstractContextManager[object]] = field(default=nullcontext)


def _tamper(body: bytes) -> bytes:
    """Change one digit near the middle of the body, keeping it decodable."""
    middle = len(body) // 2
    order = list(range(middle, len(body))) + list(range(middle - 1, -1, -1))
    for i in order:
        if 48 <= body[i] <= 57:
            changed = 48 + (body[i] - 48 + 1) % 10
            return body[:i] + bytes([changed]) + body[i + 1 :]
    raise AssertionError("no digit to tamper with in the sample body: override `tampered`")


class ProviderConformance:
    """Base class of a provider plugin's conformance tests."""

    #: Header names that carry the signature; ``unsigned`` drops them. Override or set.
    signature_headers: ClassVar[tuple[str, ...]] = ()
    #: False for PSPs whose signature covers no timestamp (the stale-timestamp test then skips).
    signs_timestamp: ClassVar[bool] = True
    #: How old a timestamp must be to count as stale for this provider.
    stale_after: ClassVar[timedelta] = timedelta(hours=1)
    #: PSP names besides Butter's list that the provider's messages may carry.
    extra_psp_names: ClassVar[frozenset[str]] = frozenset()

    # -- fixtures a plugin overrides ---------------------------------------------------------

    @pytest.fixture
    def provider(self) -> Provider:
        """The provider under test, configured with the test webhook secret."""
        raise NotImplementedError("override the `provider` fixture")

    @pytest.fixture
    def wrong_secret_provider(self) -> Provider:
        """The same provider configured with a different webhook secret."""
        raise NotImplementedError("override the `wrong_secret_provider` fixture")

    @pytest.fixture
    def samples(self, provider: Provider) -> list[Sample]:
        """Signed sample webhooks, one per event type the provider translates."""
        return [Sample(f"sample-{i}", r) for i, r in enumerate(provider.sample_webhooks())]

    @pytest.fixture
    def secrets(self) -> list[str]:
        """Secret values configured in ``provider``; they must never appear in output."""
        return []

    @pytest.fixture
    def decline_table(self) -> Any:
        """The plugin's decline table (``recoverkit.declines.DeclineTable``), or None."""
        return None

    @pytest.fixture
    def do_not_try_again_samples(self, provider: Provider) -> list[Sample]:
        """Signed webhooks whose decline carries the PSP's explicit "do not try again".

        That is Stripe's ``advice_code: do_not_try_again``, a raw Mastercard MAC 03 or 21, or the
        PSP's own equivalent, on a code whose usual type is soft where possible. Every decline
        they translate to must be hard with a "never" retry verdict. Empty by default: the
        table check (:meth:`test_do_not_try_again_advice_is_hard_for_every_code`) still runs.
        """
        return []

    @pytest.fixture
    def scanned_paths(self) -> list[Path]:
        """Fixture and cassette folders to scan for card numbers, CVCs and secrets."""
        return []

    @pytest.fixture
    def idempotency_cases(self) -> list[IdempotencyCase]:
        """``reconcile`` / ``end_dunning`` calls to run twice."""
        return []

    def tampered(self, request: WebhookRequest) -> WebhookRequest:
        """The request with its body changed after signing (override when the default misses)."""
        return WebhookRequest(_tamper(request.body), dict(request.headers), request.received_at)

    def unsigned(self, request: WebhookRequest) -> WebhookRequest:
        """The request without its signature."""
        if not self.signature_headers:
            raise NotImplementedError("set `signature_headers` or override `unsigned`")
        drop = {name.lower() for name in self.signature_headers}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in drop}
        return WebhookRequest(request.body, headers, request.received_at)

    # -- helpers -----------------------------------------------------------------------------

    def _events(self, provider: Provider, request: WebhookRequest) -> list[ProviderEvent]:
        provider.verify(request)
        return provider.parse(request)

    def _translated_lines(self, provider: Provider, request: WebhookRequest) -> list[str]:
        lines: list[str] = []
        for event in self._events(provider, request):
            lines.extend(provider.translate(event).to_json_lines())
        return lines

    @staticmethod
    def _need(provider: Provider, capability: Capability) -> None:
        if not provider.supports(capability):
            pytest.skip(f"{provider.name} does not declare the {capability} capability")

    # -- tests -------------------------------------------------------------------------------

    def test_provider_name_is_a_lowercase_identifier(self, provider: Provider) -> None:
        assert provider.name.isidentifier()
        assert provider.name == provider.name.lower()

    def test_there_are_samples(self, samples: list[Sample]) -> None:
        assert samples, "provide signed samples (override `samples` or `sample_webhooks`)"

    def test_valid_signature_is_accepted(self, provider: Provider, samples: list[Sample]) -> None:
        for sample in samples:
            provider.verify(sample.request)

    def test_tampered_body_is_rejected(self, provider: Provider, samples: list[Sample]) -> None:
        for sample in samples:
            with pytest.raises(SignatureError):
                provider.verify(self.tampered(sample.request))

    def test_wrong_secret_is_rejected(
        self, wrong_secret_provider: Provider, samples: list[Sample]
    ) -> None:
        for sample in samples:
            with pytest.raises(SignatureError):
                wrong_secret_provider.verify(sample.request)

    def test_missing_signature_is_rejected(self, provider: Provider, samples: list[Sample]) -> None:
        for sample in samples:
            with pytest.raises(SignatureError):
                provider.verify(self.unsigned(sample.request))

    def test_stale_timestamp_is_rejected(self, provider: Provider, samples: list[Sample]) -> None:
        if not self.signs_timestamp:
            pytest.skip(f"{provider.name} signs no timestamp")
        self._need(provider, Capability.SIGN_TEST_WEBHOOK)
        old = datetime.now(UTC) - self.stale_after - timedelta(minutes=5)
        fresh = provider.sign_test_webhook(samples[0].request.body)
        provider.verify(fresh)
        with pytest.raises(SignatureError):
            provider.verify(provider.sign_test_webhook(samples[0].request.body, timestamp=old))

    def test_malformed_body_is_a_webhook_error(self, provider: Provider) -> None:
        request = WebhookRequest(b"\x00\xff{not a webhook", {"content-type": "application/json"})
        with pytest.raises(WebhookError):
            self._events(provider, request)

    def test_samples_translate_to_valid_wire_messages(
        self, provider: Provider, samples: list[Sample]
    ) -> None:
        context = {"extra_psp_names": self.extra_psp_names}
        produced = 0
        for sample in samples:
            for event in self._events(provider, sample.request):
                translation = provider.translate(event)
                for message in translation.messages:
                    wire = json.loads(message.to_json())
                    assert wire["endpoint"] == message.endpoint
                    parse(type(message.body), wire["body"], context=context)
                    produced += 1
                if translation.ignored is not None:
                    assert translation.ignored.strip(), f"{sample.name}: give a reason to ignore"
        assert produced, "no sample produced a Recover message"

    def test_golden_outputs_survive_the_card_data_scrubber(
        self, provider: Provider, samples: list[Sample]
    ) -> None:
        """The store writes (and Recover receives) each message after :mod:`recoverkit.redact`:
        scrubbed, it must still be a valid wire message with the same invoice id, and
        scrubbing again changes nothing (docs/security.md)."""
        context = {"extra_psp_names": self.extra_psp_names}
        for sample in samples:
            for event in self._events(provider, sample.request):
                for message in provider.translate(event).messages:
                    text = message.to_json()
                    scrubbed = redact.scrub_json(text, event=sample.name)
                    assert redact.scrub_json(scrubbed) == scrubbed, sample.name
                    wire, original = json.loads(scrubbed), json.loads(text)
                    parse(type(message.body), wire["body"], context=context)
                    invoice = original["body"].get("invoice", {}).get("id")
                    assert wire["body"].get("invoice", {}).get("id") == invoice, sample.name

    def test_samples_translate_to_expected_output(
        self, provider: Provider, samples: list[Sample]
    ) -> None:
        checked = [s for s in samples if s.expected is not None]
        if not checked:
            pytest.skip("no sample declares expected output")
        for sample in checked:
            lines = self._translated_lines(provider, sample.request)
            assert [json.loads(line) for line in lines] == sample.expected, sample.name

    def test_dedupe_keys_are_stable_across_reparsing(
        self, provider: Provider, samples: list[Sample]
    ) -> None:
        for sample in samples:
            first = [e.dedupe_key for e in self._events(provider, sample.request)]
            again = [e.dedupe_key for e in self._events(provider, sample.request)]
            assert first == again, sample.name
            assert all(key.strip() for key in first), f"{sample.name}: empty dedupe key"
            messages = [
                m.dedupe_key
                for e in self._events(provider, sample.request)
                for m in provider.translate(e).messages
            ]
            messages_again = [
                m.dedupe_key
                for e in self._events(provider, sample.request)
                for m in provider.translate(e).messages
            ]
            assert messages == messages_again, sample.name

    def test_decline_table_rows_map_to_categories(self, decline_table: Any) -> None:
        if decline_table is None:
            pytest.skip("the plugin declares no decline table")
        decline_table.validate()
        rows = list(decline_table.rows)
        assert rows, "the decline table is empty"
        for row in rows:
            assert DeclineCategory(row.category)
            assert ResponseType(row.response_type)

    def test_do_not_try_again_advice_is_hard_for_every_code(self, decline_table: Any) -> None:
        """Every code of the table, and one it lacks, with an explicit do-not-try-again: hard."""
        if decline_table is None:
            pytest.skip("the plugin declares no decline table")
        now = datetime.now(UTC)
        rows = list(decline_table.rows)
        wrong = [
            f"{decline_table.name}, line {row.line}: code {row.code!r} advises "
            f"{Advice.DO_NOT_TRY_AGAIN.value} but its response_type is {row.response_type.value}"
            f" (must be {ResponseType.HARD.value})"
            for row in rows
            if row.advice is Advice.DO_NOT_TRY_AGAIN and row.response_type is not ResponseType.HARD
        ]
        assert not wrong, "\n".join(wrong)
        unknown = "recoverkit-conformance-unknown-code"
        for code in [row.code for row in rows] + [unknown]:
            for advised in (
                {"advice": Advice.DO_NOT_TRY_AGAIN},
                {"mastercard_advice_code": "03", "network": "mastercard"},
                {"mastercard_advice_code": "21", "network": "mastercard"},
            ):
                decline = normalize(decline_table, code, **advised)
                self._assert_never_again(decline, now, f"{decline_table.name}: {code!r} {advised}")

    def test_do_not_try_again_samples_translate_to_hard_declines(
        self, provider: Provider, do_not_try_again_samples: list[Sample]
    ) -> None:
        if not do_not_try_again_samples:
            pytest.skip(f"{provider.name}: no do_not_try_again_samples (the table check still ran)")
        now = datetime.now(UTC)
        for sample in do_not_try_again_samples:
            found = 0
            for event in self._events(provider, sample.request):
                for message in provider.translate(event).messages:
                    if message.decline is None:
                        continue
                    found += 1
                    self._assert_never_again(message.decline, now, sample.name)
                    wire = json.loads(message.to_json())["body"]
                    types = [
                        t["outcome"].get("response_type")
                        for t in wire.get("transactions", [])
                        if not t.get("success")
                    ]
                    assert types, f"{sample.name}: the declined transaction is not in the body"
                    assert set(types) == {ResponseType.HARD.value}, (
                        f"{sample.name}: Recover was told {types}, not {ResponseType.HARD.value}"
                    )
            assert found, f"{sample.name}: translated to no decline"

    @staticmethod
    def _assert_never_again(decline: NormalizedDecline, now: datetime, where: str) -> None:
        assert decline.response_type is ResponseType.HARD, (
            f"{where}: do-not-try-again gave {decline.response_type.value}"
        )
        assert decline.advice is Advice.DO_NOT_TRY_AGAIN, f"{where}: advice {decline.advice}"
        verdict = may_retry(decline, [], now=now, payment_method_changed_since_decline=True)
        assert verdict.verdict is Verdict.NEVER, f"{where}: may_retry said {verdict.verdict}"

    def _run_idempotency(
        self, provider: Provider, cases: list[IdempotencyCase], capability: Capability
    ) -> None:
        self._need(provider, capability)
        mine = [case for case in cases if case.capability == capability]
        assert mine, f"{provider.name} declares {capability}: add an IdempotencyCase for it"
        for case in mine:
            with case.context():
                case.action()
                after_first = case.state()
                case.action()
                assert case.state() == after_first, case.name

    def test_reconcile_is_idempotent(
        self, provider: Provider, idempotency_cases: list[IdempotencyCase]
    ) -> None:
        self._run_idempotency(provider, idempotency_cases, Capability.RECONCILE)

    def test_end_dunning_is_idempotent(
        self, provider: Provider, idempotency_cases: list[IdempotencyCase]
    ) -> None:
        self._run_idempotency(provider, idempotency_cases, Capability.END_DUNNING)

    def test_no_card_data_or_secrets_in_fixtures(self, scanned_paths: list[Path]) -> None:
        if not scanned_paths:
            pytest.skip("the plugin names no fixture or cassette folders to scan")
        missing = [str(p) for p in scanned_paths if not p.exists()]
        assert not missing, f"scanned paths do not exist: {missing}"
        findings = scan_paths(scanned_paths)
        assert not findings, "\n".join(str(f) for f in findings)

    def test_secrets_never_appear_in_output(
        self, provider: Provider, samples: list[Sample], secrets: list[str]
    ) -> None:
        if not secrets:
            pytest.skip("the plugin names no configured secrets")
        texts = [repr(provider), repr(provider.settings), str(provider.settings)]
        for sample in samples:
            texts.append(repr(sample.request))
            texts.extend(self._translated_lines(provider, sample.request))
        for text in texts:
            for secret in secrets:
                assert secret not in text
            assert not scan_text(text), text[:200]
