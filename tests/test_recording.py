"""``RECOVERKIT_RECORD=1`` records cassettes through vcrpy with filters that scrub keys, tokens,
card data and personal data: proven on a real recording of planted secrets (a loopback server
echoes them back, vcrpy writes the cassette, the test reads the file)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from recoverkit.testing.recording import RECORD_ENV, cassette_vcr, recording, scrub_body


def _planted() -> dict[str, str]:
    """Secrets built at run time (no live-looking literal sits in the source)."""
    return {
        "api_key": "sk_" + "live_" + "51Hq8PlantedKeyValue0123456789",
        "webhook_secret": "whsec_" + "PlantedWebhookSecret0123",
        "client_secret": "pi_3Planted_secret_" + "PlantedClientSecret99",
        "card": "4000" + "0566" + "5566" + "5556",  # Luhn-valid test card
        "cvc": "737",
        "email": "victim.person@planted.example",
        "name": "Victoria Planted",
        "phone": "+33 6 12 34 56 78",
        "street": "221B Planted Street",
    }


class _Echo(BaseHTTPRequestHandler):
    """Answers every POST with JSON and XML-ish fields full of the planted values."""

    secrets: ClassVar[dict[str, str]] = {}

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        s = self.secrets
        body = json.dumps(
            {
                "id": "ch_keep_this_id",
                "amount": 1999,
                "client_secret": s["client_secret"],
                "billing_details": {
                    "email": s["email"],
                    "name": s["name"],
                    "phone": s["phone"],
                    "address": {"line1": s["street"]},
                },
                "payment_method_details": {"card": {"number": s["card"], "cvc": s["cvc"]}},
                "note": f"key {s['api_key']} and secret {s['webhook_secret']}",
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", f"session={s['api_key']}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture
def echo_url() -> Iterator[str]:
    _Echo.secrets = _planted()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_recording_scrubs_every_planted_secret(echo_url: str, tmp_path: Path) -> None:
    s = _planted()
    recorder = cassette_vcr(str(tmp_path), environ={RECORD_ENV: "1"})
    form = {
        "card[number]": s["card"],
        "card[cvc]": s["cvc"],
        "billing_details[email]": s["email"],
        "billing_details[name]": s["name"],
        "amount": "1999",
    }
    with recorder.use_cassette("planted.yaml"):
        response = httpx.post(
            f"{echo_url}/v1/payment_intents?customer_email={s['email']}",
            data=form,
            headers={"Authorization": f"Bearer {s['api_key']}", "X-API-Key": s["api_key"]},
        )
        xml = (
            f"<customer><id>cust_keep</id><email>{s['email']}</email><first-name>Victoria"
            f"</first-name><phone>{s['phone']}</phone><credit-card><number>{s['card']}</number>"
            f"<cvv>{s['cvc']}</cvv></credit-card></customer>"
        )
        httpx.post(f"{echo_url}/merchants/m/customers", content=xml.encode())
    assert response.status_code == 200
    assert response.json()["client_secret"] == s["client_secret"]  # the live answer is untouched

    cassette = (tmp_path / "planted.yaml").read_text()
    leaked = [name for name, value in s.items() if value in cassette]
    assert not leaked, f"planted {leaked} reached the cassette"
    for kept in ("ch_keep_this_id", "cust_keep", "1999", "/v1/payment_intents"):
        assert kept in cassette
    for placeholder in ("REDACTED", "jane@example.com", "Jane Doe", "1 Example Street"):
        assert placeholder in cassette


def test_replay_is_the_default(tmp_path: Path) -> None:
    assert recording({}) is False
    assert recording({RECORD_ENV: "1"}) is True
    assert cassette_vcr(str(tmp_path), environ={}).record_mode == "none"
    assert cassette_vcr(str(tmp_path), environ={RECORD_ENV: "1"}).record_mode == "all"


def test_scrub_body_keeps_what_tests_match_on() -> None:
    body = "amount=2000&currency=usd&customer=cus_123&payment_method=pm_card_visa"
    assert scrub_body(body) == body
    assert json.loads(scrub_body('{"id": "in_1", "status": "open"}')) == {
        "id": "in_1",
        "status": "open",
    }
