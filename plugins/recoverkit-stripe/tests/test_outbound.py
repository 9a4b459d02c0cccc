"""retry_status, execute_retry, reconcile, end_dunning, backfill, doctor and facts over cassettes.

Cassettes live in ``cassettes/stripe/`` (hand-written from the API reference, see their headers)
and replay through the SDK's real HTTP client with ``record_mode="none"``: a request that is not
in the cassette fails the test, and ``all_played`` proves every recorded call was made.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from recoverkit_stripe import StripeProvider, StripeSettings
from recoverkit_stripe.backfill import backfill

from recoverkit.declines import Advice, DeclineCategory
from recoverkit.errors import (
    ConfigurationError,
    MissingFactError,
    OutcomeUnknownError,
    RequestNotSentError,
)
from recoverkit.provider import EndOfDunningPolicy, InvoiceRef, RetryInstruction
from recoverkit.schema import EndOfDunning, PspTransaction, RetryResults
from recoverkit.testing.recording import cassette_vcr

from .conftest import CASSETTES, body, make_provider

#: Replays cassettes/stripe; RECOVERKIT_RECORD=1 records them afresh, scrubbed (docs/recording.md).
REPLAY = cassette_vcr(str(CASSETTES), filter_headers=["authorization"])
REF = InvoiceRef(
    provider="stripe",
    invoice_id="recover-inv-1",
    psp_invoice_id="in_RKdemo01",
    psp_subscription_id="sub_RKdemo01",
    psp_customer_id="cus_RKdemo01",
)
REF_PI = InvoiceRef(
    provider="stripe", invoice_id="merchant-inv-42", psp_transaction_id="ch_RKnofail01"
)
SUCCESS = RetryResults(
    timestamp=datetime(2025, 12, 3, tzinfo=UTC),
    butter_id="bt_RK1",
    invoice_id="recover-inv-1",
    transaction_id="rtx_1",
    success=True,
    psp_transactions=[PspTransaction(psp_transaction_id="ch_RKok01", success=True)],
    amount_collected=Decimal("20.00"),
    currency="USD",
    dunning_complete=True,
)
NOTICE = EndOfDunning(
    timestamp=datetime(2025, 12, 20, tzinfo=UTC), invoice_id="recover-inv-1", recovered=False
)


@pytest.fixture
def provider() -> StripeProvider:
    return make_provider(max_network_retries=0)


def test_cassettes_hold_no_authorization_header_and_say_how_they_were_made() -> None:
    files = sorted(CASSETTES.glob("*.yaml"))
    assert files
    for path in files:
        text = path.read_text()
        assert not re.search(r"(?im)^\s*authorization:", text), path.name
        assert "Bearer" not in text, path.name
        assert "sk_test_" not in text, path.name
        assert text.startswith("# Hand-written") or "localstripe" in text.splitlines()[0], path.name


# --- retry_status ----------------------------------------------------------------------------


def test_open_invoice_with_amount_remaining_may_be_retried(provider: StripeProvider) -> None:
    with REPLAY.use_cassette("retry_status_open.yaml") as cassette:
        status = provider.retry_status(REF)
        assert cassette.all_played
    assert status.retry is True
    assert status.amount == Decimal("20.00")


def test_paid_invoice_is_refused_with_a_reason(provider: StripeProvider) -> None:
    with REPLAY.use_cassette("retry_status_paid.yaml"):
        status = provider.retry_status(REF)
    assert status.retry is False
    assert status.reason == "invoice is already paid"


def test_invoice_of_a_cancelled_subscription_is_refused(provider: StripeProvider) -> None:
    with REPLAY.use_cassette("retry_status_subscription_canceled.yaml"):
        status = provider.retry_status(REF)
    assert (status.retry, status.reason) == (False, "subscription is canceled")


def test_non_invoice_payment_intent_status_uses_its_amount(provider: StripeProvider) -> None:
    with REPLAY.use_cassette("retry_status_payment_intent.yaml"):
        status = provider.retry_status(REF_PI)
    assert status.retry is True
    assert status.amount == Decimal("1500")  # JPY has no decimals at Stripe


# --- execute_retry -----------------------------------------------------------------------------


def _instruction(ref: InvoiceRef = REF, **kw: Any) -> RetryInstruction:
    values: dict[str, Any] = {
        "invoice": ref,
        "attempt": 2,
        "idempotency_key": "recoverkit:recover-inv-1:2",
        "amount": Decimal("20.00"),
        "currency": "USD",
    }
    values.update(kw)
    return RetryInstruction(**values)


def test_invoice_retry_pays_with_the_idempotency_key(provider: StripeProvider) -> None:
    with REPLAY.use_cassette("execute_retry_invoice_paid.yaml") as cassette:
        attempt = provider.execute_retry(_instruction())
        assert cassette.all_played
        pay = cassette.requests[0]
    assert pay.method == "POST"
    assert pay.path == "/v1/invoices/in_RKdemo01/pay"
    assert pay.headers["Idempotency-Key"] == "recoverkit:recover-inv-1:2"
    assert attempt.success is True
    assert attempt.psp_transaction_id == "ch_RKok01"
    assert attempt.network_transaction_id == "581123456789024"
    assert attempt.decline is None


def test_declined_invoice_retry_is_a_result_with_the_normalized_decline(
    provider: StripeProvider,
) -> None:
    with REPLAY.use_cassette("execute_retry_invoice_declined.yaml") as cassette:
        attempt = provider.execute_retry(_instruction())
        assert cassette.all_played
    assert attempt.success is False
    assert attempt.psp_transaction_id == "ch_RKfail01"
    assert attempt.decline is not None
    assert attempt.decline.category is DeclineCategory.INSUFFICIENT_FUNDS
    assert attempt.decline.advice is Advice.TRY_AGAIN_LATER
    assert attempt.decline.iso_response_code == "51"


def test_non_invoice_retry_confirms_the_payment_intent_off_session(
    provider: StripeProvider,
) -> None:
    instruction = _instruction(
        REF_PI,
        idempotency_key="recoverkit:merchant-inv-42:1",
        amount=Decimal("1500"),
        currency="JPY",
        payment_method_id="pm_RKnew01",
    )
    with REPLAY.use_cassette("execute_retry_payment_intent_succeeded.yaml") as cassette:
        attempt = provider.execute_retry(instruction)
        assert cassette.all_played
        confirm = cassette.requests[1]
    assert confirm.path == "/v1/payment_intents/pi_RKoneoff01/confirm"
    assert confirm.headers["Idempotency-Key"] == "recoverkit:merchant-inv-42:1"
    form = confirm.body.decode() if isinstance(confirm.body, bytes) else confirm.body
    assert "off_session=true" in form
    assert "payment_method=pm_RKnew01" in form
    assert attempt.success is True
    assert attempt.payment_method_id == "pm_RKnew01"


def test_card_error_without_a_charge_still_normalizes(provider: StripeProvider) -> None:
    instruction = _instruction(REF_PI, idempotency_key="recoverkit:merchant-inv-42:1")
    with REPLAY.use_cassette("execute_retry_payment_intent_declined.yaml"):
        attempt = provider.execute_retry(instruction)
    assert attempt.success is False
    assert attempt.decline is not None
    assert attempt.decline.category is DeclineCategory.LOST_STOLEN


# --- reconcile and end_dunning -------------------------------------------------------------------


def _twice(provider: StripeProvider, action: Any) -> None:
    action()
    provider.client.v1.invoices.retrieve("in_RKdemo01")
    action()
    provider.client.v1.invoices.retrieve("in_RKdemo01")


def test_reconcile_annotates_once(provider: StripeProvider) -> None:
    with REPLAY.use_cassette("reconcile_annotates_paid_invoice.yaml") as cassette:
        _twice(provider, lambda: provider.reconcile(SUCCESS, REF))
        assert cassette.all_played
        posts = [r for r in cassette.requests if r.method == "POST"]
    assert [p.path for p in posts] == ["/v1/invoices/in_RKdemo01"]
    form = posts[0].body.decode() if isinstance(posts[0].body, bytes) else posts[0].body
    assert "metadata[recover_butter_id]=bt_RK1" in form


def test_reconcile_pays_out_of_band_when_recover_collected_elsewhere(
    provider: StripeProvider,
) -> None:
    elsewhere = SUCCESS.model_copy(
        update={
            "psp_transactions": [PspTransaction(psp_transaction_id="adyen-PSP-8812", success=True)]
        }
    )
    with REPLAY.use_cassette("reconcile_pays_out_of_band.yaml") as cassette:
        _twice(provider, lambda: provider.reconcile(elsewhere, REF))
        assert cassette.all_played
        pay = [r for r in cassette.requests if r.path.endswith("/pay")]
    assert len(pay) == 1
    assert pay[0].headers["Idempotency-Key"] == "recoverkit:oob:bt_RK1"


def test_reconcile_annotates_a_failure(provider: StripeProvider) -> None:
    failed = RetryResults(
        timestamp=datetime(2025, 12, 3, tzinfo=UTC),
        butter_id="bt_RK2",
        invoice_id="recover-inv-1",
        success=False,
        dunning_complete=False,
    )
    with REPLAY.use_cassette("reconcile_annotates_failure.yaml") as cassette:
        provider.reconcile(failed, REF)
        assert cassette.all_played


@pytest.mark.parametrize(
    ("policy", "cassette_name", "write_path"),
    [
        (
            EndOfDunningPolicy.MARK_UNCOLLECTIBLE,
            "end_dunning_mark_uncollectible.yaml",
            "/v1/invoices/in_RKdemo01/mark_uncollectible",
        ),
        (EndOfDunningPolicy.VOID, "end_dunning_void.yaml", "/v1/invoices/in_RKdemo01/void"),
    ],
)
def test_end_dunning_acts_once(
    provider: StripeProvider, policy: EndOfDunningPolicy, cassette_name: str, write_path: str
) -> None:
    with REPLAY.use_cassette(cassette_name) as cassette:
        _twice(provider, lambda: provider.end_dunning(NOTICE, REF, policy))
        assert cassette.all_played
        writes = [r.path for r in cassette.requests if r.method != "GET"]
    assert writes == [write_path]


def test_end_dunning_cancels_the_subscription_once(provider: StripeProvider) -> None:
    policy = EndOfDunningPolicy.CANCEL_SUBSCRIPTION
    with REPLAY.use_cassette("end_dunning_cancel_subscription.yaml") as cassette:
        for _ in range(2):
            provider.end_dunning(NOTICE, REF, policy)
            provider.client.v1.subscriptions.retrieve("sub_RKdemo01")
        assert cassette.all_played
        writes = [(r.method, r.path) for r in cassette.requests if r.method != "GET"]
    assert writes == [("DELETE", "/v1/subscriptions/sub_RKdemo01")]


def test_end_dunning_none_or_recovered_touches_nothing() -> None:
    keyless = StripeProvider(StripeSettings())  # any API call would raise ConfigurationError
    keyless.end_dunning(NOTICE, REF, EndOfDunningPolicy.NONE)
    recovered = NOTICE.model_copy(update={"recovered": True})
    keyless.end_dunning(recovered, REF, EndOfDunningPolicy.VOID)
    with pytest.raises(ConfigurationError, match="RECOVERKIT_STRIPE_API_KEY"):
        keyless.end_dunning(NOTICE, REF, EndOfDunningPolicy.VOID)


# --- backfill ------------------------------------------------------------------------------------

SINCE, UNTIL = datetime(2025, 12, 1, tzinfo=UTC), datetime(2025, 12, 3, tzinfo=UTC)


def test_backfill_pages_through_charges_oldest_first(provider: StripeProvider) -> None:
    with REPLAY.use_cassette("backfill_charges.yaml") as cassette:
        got = list(provider.backfill(SINCE, UNTIL))
        assert cassette.all_played
    assert [event.object_id for event, _ in got] == ["ch_RKfail01", "ch_RKblock01", "ch_RKok00"]
    assert [cursor for _, cursor in got] == [
        "1764550800:ch_RKfail01",
        "1764550820:ch_RKblock01",
        "1764558000:ch_RKok00",
    ]
    assert {event.dedupe_key for event, _ in got} == {
        "backfill:ch_RKfail01",
        "backfill:ch_RKblock01",
        "backfill:ch_RKok00",
    }


class _Page:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items

    def auto_paging_iter(self) -> Iterator[Any]:
        for item in self.items:
            yield type("Obj", (), {"to_dict": lambda self, i=item: i})()


class _Charges:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.params: list[dict[str, Any]] = []

    def list(self, params: dict[str, Any]) -> _Page:
        self.params.append(params)
        lo, hi = params["created"]["gte"], params["created"]["lt"]
        return _Page([c for c in self.items if lo <= c["created"] < hi][::-1])


def test_backfill_resumes_after_the_cursor() -> None:
    charges = _Charges(
        [
            {"id": "ch_a", "created": 1764550800},
            {"id": "ch_b", "created": 1764550800},
            {"id": "ch_c", "created": 1764637300},
        ]
    )
    client: Any = type("C", (), {"v1": type("V1", (), {"charges": charges})()})()
    first = [cursor for _, cursor in backfill(client, SINCE, UNTIL)]
    assert first == ["1764550800:ch_a", "1764550800:ch_b", "1764637300:ch_c"]
    resumed = [cursor for _, cursor in backfill(client, SINCE, UNTIL, first[0])]
    assert resumed == first[1:]
    assert charges.params[-2]["created"]["gte"] == 1764550800  # starts at the cursor's second


def test_backfilled_charge_translates_like_its_webhook(provider: StripeProvider) -> None:
    with REPLAY.use_cassette("backfill_charges.yaml"):
        event = next(iter(provider.backfill(SINCE, UNTIL)))[0]
    with REPLAY.use_cassette("facts_backfilled_charge.yaml") as cassette:
        translation = provider.translate(event)
        assert cassette.all_played
    (message,) = translation.messages
    assert message.dedupe_key == "stripe:charge:ch_RKfail01"  # same key as the live webhook's
    assert message.body.invoice.id == "in_RKdemo01"  # type: ignore[union-attr]


# --- facts (enrichment) --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["basil", "legacy"])
def test_enrichment_fetches_each_object_once_then_serves_the_cache(
    provider: StripeProvider, shape: str
) -> None:
    request = provider.sign_test_webhook(body(f"invoice.payment_failed.{shape}"))
    (event,) = provider.parse(request)
    with REPLAY.use_cassette(f"facts_invoice_payment_failed_{shape}.yaml") as cassette:
        first = provider.translate(event)
        again = provider.translate(event)  # no recorded request left: must come from the cache
        assert cassette.all_played
        paths = [r.path for r in cassette.requests]
    assert first.to_json_lines() == again.to_json_lines()
    assert "/v1/subscriptions/sub_RKdemo01" in paths
    assert first.messages[0].body.transactions[0].id == "ch_RKfail01"  # type: ignore[union-attr]


def test_basil_charge_looks_its_invoice_up(provider: StripeProvider) -> None:
    (event,) = provider.parse(provider.sign_test_webhook(body("charge.failed.invoice.basil")))
    with REPLAY.use_cassette("facts_charge_invoice_lookup.yaml") as cassette:
        translation = provider.translate(event)
        assert cassette.all_played
    assert translation.ignored is not None
    assert "in_RKdemo01" in translation.ignored


def test_unreachable_api_names_the_object_it_needed() -> None:
    provider = make_provider(api_base=f"http://127.0.0.1:{_closed_port()}", max_network_retries=0)
    (event,) = provider.parse(provider.sign_test_webhook(body("invoice.payment_failed.legacy")))
    with pytest.raises(MissingFactError, match="ch_RKfail01") as info:
        provider.translate(event)
    assert "RECOVERKIT_STRIPE_API_BASE" in str(info.value)


def test_doctor_reports_missing_event_subscriptions_and_the_smart_retries_steps(
    provider: StripeProvider,
) -> None:
    with REPLAY.use_cassette("doctor_webhook_endpoints.yaml"):
        checks = provider.doctor()
    by_name = {check.name: check for check in checks}
    assert by_name["stripe: webhook endpoint we_RKall"].ok is True
    partial = by_name["stripe: webhook endpoint we_RKsome"]
    assert partial.ok is False
    assert "payment_method.automatically_updated" in partial.detail
    assert "invoice.payment_failed," not in partial.detail
    assert not any("we_RKoff" in name for name in by_name)  # disabled endpoints are skipped
    smart = by_name["stripe: Smart Retries off (manual check)"]
    assert "Revenue recovery" in smart.detail
    assert "Smart Retries off" in smart.detail


def test_doctor_without_api_key_says_so() -> None:
    checks = StripeProvider(StripeSettings()).doctor()
    assert checks[0].ok is False
    assert "RECOVERKIT_STRIPE_API_KEY" in checks[0].detail


# --- network failures: not sent vs outcome unknown ------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_is_request_not_sent() -> None:
    provider = make_provider(api_base=f"http://127.0.0.1:{_closed_port()}", max_network_retries=0)
    with pytest.raises(RequestNotSentError, match="in_RKdemo01"):
        provider.execute_retry(_instruction())


class _Server:
    """A loopback HTTP server answering every request with one behaviour."""

    def __init__(self, behaviour: str) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.hits += 1
                if behaviour == "hang_up":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                status = {"500": 500, "429": 429}[behaviour]
                payload = b'{"error": {"type": "api_error", "message": "boom"}}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.hits = 0
        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize(
    ("behaviour", "error"),
    [
        ("hang_up", OutcomeUnknownError),
        ("500", OutcomeUnknownError),
        ("429", RequestNotSentError),
    ],
)
def test_failures_after_sending_are_told_apart(behaviour: str, error: type[Exception]) -> None:
    server = _Server(behaviour)
    with server as base:
        provider = make_provider(api_base=base, max_network_retries=0)
        with pytest.raises(error, match="in_RKdemo01"):
            provider.execute_retry(_instruction())
    assert server.hits == 1
