"""A connection dropped during retry_charge / sale is OutcomeUnknownError (issue 10 item 7).

No mocks: the SDK talks HTTP to a local socket server that answers ``subscription.find`` and
closes the connection in the middle of the charge request, the way a proxy or a network fault
does. The double-charge guard must still hold: the next attempt looks the charge up.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import yaml
from bt_support import CASSETTES, make_provider
from recoverkit_braintree.claims import Claim, MemoryClaims
from recoverkit_braintree.provider import BraintreeProvider

from recoverkit.errors import OutcomeUnknownError, RequestNotSentError
from recoverkit.provider import InvoiceRef, RetryInstruction

SUB_INVOICE = InvoiceRef(
    provider="braintree",
    invoice_id="sub_demo_1:2026-11-30",
    psp_subscription_id="sub_demo_1",
    amount=Decimal("49.99"),
    currency="USD",
)
ONE_OFF = InvoiceRef(
    provider="braintree",
    invoice_id="inv_77",
    payment_method_id="pm_card_demo_1",
    amount=Decimal("20.00"),
    currency="USD",
)


def _instruction(invoice: InvoiceRef) -> RetryInstruction:
    assert invoice.amount is not None
    return RetryInstruction(
        invoice=invoice, attempt=2, idempotency_key="k-2", amount=invoice.amount, currency="USD"
    )


def _cassette_body(name: str, index: int) -> bytes:
    data = yaml.safe_load((CASSETTES / f"{name}.yaml").read_text(encoding="utf-8"))
    body: str = data["interactions"][index]["response"]["body"]["string"]
    return body.encode("utf-8")


@dataclass
class _Script:
    """What the fake Braintree answers; ``posts`` counts charge requests that arrived."""

    subscription_xml: bytes
    mid_request: bool = False  # close after the headers, before reading the body
    posts: int = 0
    charged: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        conn: socket.socket = self.request
        reader = conn.makefile("rb")
        request_line = reader.readline().decode("latin-1")
        length = 0
        while True:
            line = reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        script = self.server.script
        method, path = request_line.split(" ")[:2]
        if method == "POST":
            with script.lock:
                script.posts += 1
                script.charged = True  # Braintree got the request and charged the card
            if not script.mid_request:
                reader.read(length)
            # Drop the connection without an answer (RST rather than FIN where possible).
            conn.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            conn.close()
            return
        reader.read(length)
        body = self.server.script.subscription_xml
        if script.charged and path.endswith("/subscriptions/sub_demo_1"):
            body = self.server.charged_xml
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nConnection: close\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, script: _Script, charged_xml: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.script = script
        self.charged_xml = charged_xml


@pytest.fixture
def fake_braintree(request: pytest.FixtureRequest) -> Iterator[tuple[_Script, str]]:
    mid_request = bool(getattr(request, "param", False))
    # Past Due subscription; after the charge it also lists the retry's transaction.
    past_due = _cassette_body("retry_charge_after_crash", 0)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    # Braintree did create the charge before the connection dropped: txn_retry_1, created now.
    charged = past_due.replace(b"2026-12-03T10:00:00Z", now)
    assert charged != past_due
    script = _Script(subscription_xml=past_due, mid_request=mid_request)
    server = _Server(script, charged)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _provider(base_url: str) -> BraintreeProvider:
    provider = make_provider(api_base_url=base_url, timeout=10)
    assert isinstance(provider, BraintreeProvider)
    return provider


@pytest.mark.parametrize("fake_braintree", [False, True], indirect=True, ids=["after", "during"])
def test_dropped_retry_charge_is_outcome_unknown_and_never_charged_twice(
    fake_braintree: tuple[_Script, str],
) -> None:
    script, base_url = fake_braintree
    claims = MemoryClaims()
    provider = BraintreeProvider(_provider(base_url).settings, claims=claims)
    with pytest.raises(OutcomeUnknownError, match="look the outcome up"):
        provider.execute_retry(_instruction(SUB_INVOICE))
    assert script.posts == 1
    claim = claims.get("sub_demo_1")
    assert claim is not None
    assert claim.transaction_id is None  # kept: the outcome is unknown
    # The next attempt finds the charge in the subscription's transactions; no second POST.
    again = BraintreeProvider(_provider(base_url).settings, claims=claims)
    attempt = again.execute_retry(_instruction(SUB_INVOICE))
    assert script.posts == 1, "a second charge was sent after a dropped connection"
    assert attempt.psp_transaction_id == "txn_retry_1"
    assert claims.get("sub_demo_1") == Claim(
        "sub_demo_1", claim.idempotency_key, claim.claimed_at, "txn_retry_1"
    )


def test_dropped_sale_is_outcome_unknown(fake_braintree: tuple[_Script, str]) -> None:
    script, base_url = fake_braintree
    provider = _provider(base_url)
    # The SDK wraps requests' exceptions only when asked to.
    assert provider.gateway.config.wrap_http_exceptions is True
    with pytest.raises(OutcomeUnknownError, match="look the outcome up"):
        provider.execute_retry(_instruction(ONE_OFF))
    assert script.posts == 1


def test_refused_connection_is_request_not_sent() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port any more: the connection is refused before any byte is sent.
    with pytest.raises(RequestNotSentError, match="nothing was sent"):
        _provider(f"http://127.0.0.1:{port}").execute_retry(_instruction(ONE_OFF))
