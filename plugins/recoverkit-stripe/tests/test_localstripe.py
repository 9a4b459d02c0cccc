"""End to end against localstripe (a stateful fake Stripe server, run out of process).

What localstripe lacks, and so what this test cannot cover (cassettes cover it instead): it sends
no ``invoice.payment_failed`` webhook for a card decline (only for asynchronous methods such as
SEPA), so that event is rendered from localstripe's failed invoice and signed with the SDK;
``/v1/invoices/{id}/pay`` takes no parameters (no ``payment_method``, ``paid_out_of_band``,
``expand``) and charges the customer's default payment method; no ``mark_uncollectible``,
``invoice_payments`` or ``webhook_endpoints``; ``GET /v1/charges`` has no ``payment_intent``
filter; prices are plans; charges carry no ``outcome`` nor ``payment_method_details`` (so no
funding, network, issuer country or network transaction id); invoices come in the pre-basil shape
only, and a charge paying an invoice has ``invoice: null``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import stripe
from recoverkit_stripe import StripeProvider, StripeSettings

from recoverkit.declines import DeclineCategory
from recoverkit.provider import InvoiceRef, RetryInstruction, WebhookRequest
from recoverkit.schema import PaymentEvent, PspTransaction, RetryResults

SECRET = "whsec_localstripe_test"
API_KEY = "sk_test_recoverkit"
# localstripe binds every interface and pickles its store to /tmp on each write: this launcher
# binds loopback only and keeps the store in memory.
LAUNCHER = """
import socket, sys
from aiohttp import web
from localstripe import resources, server
resources.store.dump_to_disk = lambda: None
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
web.run_app(server.app, sock=sock, print=None, access_log=None)
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def localstripe_url() -> Iterator[str]:
    try:
        import localstripe  # noqa: F401
    except ImportError:
        pytest.skip("localstripe is not installed (pip install 'recoverkit-stripe[test]')")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                err = (
                    process.stderr.read().decode(errors="replace")[-500:] if process.stderr else ""
                )
                pytest.skip(f"localstripe exited at start-up: {err}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.skip("localstripe did not answer within 20 s")
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


class _Receiver:
    """A loopback endpoint that keeps every webhook exactly as delivered."""

    def __init__(self) -> None:
        received: list[WebhookRequest] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                received.append(WebhookRequest(self.rfile.read(length), dict(self.headers)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.httpd = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/webhooks/stripe"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, event_type: str, timeout: float = 15) -> WebhookRequest:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for request in self.received:
                if json.loads(request.body).get("type") == event_type:
                    return request
            time.sleep(0.1)
        raise AssertionError(f"no {event_type} webhook within {timeout} s")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_failed_renewal_is_translated_retried_and_reconciled(localstripe_url: str) -> None:
    receiver = _Receiver()
    try:
        _run(localstripe_url, receiver)
    finally:
        receiver.close()


def _run(base: str, receiver: _Receiver) -> None:
    # localstripe's /_config route is not part of the Stripe API: plain HTTP via the SDK's deps.
    import requests

    requests.post(
        f"{base}/_config/webhooks/recoverkit",
        data={"url": receiver.url, "secret": SECRET},
        timeout=5,
    ).raise_for_status()
    client = stripe.StripeClient(API_KEY, base_addresses={"api": base})
    customer = client.v1.customers.create(params={"email": "dunning@example.com"})
    failing = _card(client, customer.id, "4000000000000341")  # attaches, then fails to charge
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": failing}}
    )
    product = client.v1.products.create(params={"name": "Gold"})
    plan = client.v1.plans.create(
        params={"product": product.id, "amount": 2000, "currency": "usd", "interval": "month"}
    )
    subscription = client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": plan.id}]}
    )
    invoice_id = str(subscription.latest_invoice)

    provider = StripeProvider(
        StripeSettings(
            api_key=API_KEY,
            api_base=base,
            webhook_secrets=["whsec_rotated_out", SECRET],
            max_network_retries=0,
        )
    )
    # 1a. localstripe signs its own webhooks: ours verify with the SDK helper
    delivered = receiver.wait_for("invoice.created")
    provider.verify(delivered)
    assert provider.parse(delivered)[0].object_id == invoice_id
    # 1b. localstripe never emits invoice.payment_failed for a card decline (its /pay confirms
    # the PaymentIntent with a no-op failure callback), so the event is built from its own
    # failed invoice exactly as Stripe renders a snapshot event, signed the SDK's way.
    failed_invoice = client.v1.invoices.retrieve(invoice_id).to_dict()
    assert failed_invoice["status"] == "open"
    snapshot = {
        "id": f"evt_{invoice_id}_payment_failed",
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "type": "invoice.payment_failed",
        "livemode": False,
        "data": {"object": failed_invoice},
    }
    webhook = provider.sign_test_webhook(json.dumps(snapshot).encode())
    provider.verify(webhook)
    (event,) = provider.parse(webhook)
    translation = provider.translate(event)  # facts (charge, intent, subscription) via the API
    (message,) = translation.messages
    assert isinstance(message.body, PaymentEvent)
    assert message.body.invoice.id == invoice_id
    assert message.body.subscription.id == subscription.id
    (transaction,) = message.body.transactions
    assert transaction.success is False
    assert transaction.amount == Decimal("20.00")
    assert transaction.payment_method_id == failing
    assert message.decline is not None
    assert message.decline.raw_code == "card_declined"
    assert message.decline.category is DeclineCategory.GENERIC_SOFT

    ref = InvoiceRef(
        provider="stripe",
        invoice_id=f"recover-{invoice_id}",
        psp_invoice_id=invoice_id,
        psp_subscription_id=subscription.id,
        psp_customer_id=customer.id,
    )
    # 2. the customer switches to a good card; the retry succeeds
    good = _card(client, customer.id, "4242424242424242")
    client.v1.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": good}}
    )
    attempt = provider.execute_retry(
        RetryInstruction(
            invoice=ref,
            attempt=2,
            idempotency_key=f"recoverkit:{invoice_id}:2",
            amount=Decimal("20.00"),
            currency="USD",
        )
    )
    assert attempt.success is True
    assert attempt.decline is None
    assert attempt.psp_transaction_id is not None
    assert attempt.psp_transaction_id != transaction.psp_transaction_id

    # 3. Recover's Retry Results come back: the invoice stays paid and carries Recover's ids
    result = RetryResults(
        timestamp=datetime.now(UTC),
        butter_id="bt_localstripe",
        invoice_id=ref.invoice_id,
        success=True,
        psp_transactions=[
            PspTransaction(psp_transaction_id=attempt.psp_transaction_id, success=True)
        ],
    )
    provider.reconcile(result, ref)
    provider.reconcile(result, ref)  # idempotent
    after = client.v1.invoices.retrieve(invoice_id).to_dict()
    assert after["status"] == "paid"
    assert (after.get("metadata") or {}).get("recover_butter_id") == "bt_localstripe"
    status = provider.retry_status(ref)
    assert (status.retry, status.reason) == (False, "invoice is already paid")


def _card(client: stripe.StripeClient, customer: str, number: str) -> str:
    method = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(method.id, params={"customer": customer})
    return str(method.id)
