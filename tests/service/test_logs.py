"""The logs of a full run of a real server process tell the story and leak nothing.

One run: webhooks forwarded, a Recover outage and its end, a dead letter, a translation failure,
RetryStatus, Retry Results and End of Dunning. The log must hold one line for each of those (in
JSON, every line parses) and no configured secret nor any Luhn-valid card number, although a
webhook carried one.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fake_provider import charge_event, signed
from service_standin import RecoverStandIn, free_port

from recoverkit.signing import signed_headers
from recoverkit.store import make_engine, upgrade

HERE = Path(__file__).parent


def luhn_number(prefix: str = "411111111111111") -> str:
    """A Luhn-valid card-like number, built at run time (no card number in the source)."""
    total = 0
    for i, char in enumerate(reversed(prefix)):
        n = int(char) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return prefix + str((10 - total % 10) % 10)


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def card_like(text: str) -> list[str]:
    """Luhn-valid runs of 12-19 digits, plain or grouped by spaces/dashes, standing alone."""
    found = []
    for match in re.finditer(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){11,18}(?![0-9A-Za-z])", text):
        digits = re.sub(r"[ -]", "", match.group())
        if luhn_valid(digits):
            found.append(match.group())
    return found


def wait_for(what: str, condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.parametrize(("fmt", "access_log"), [("json", True), ("text", False)])
def test_a_full_run_logs_every_decision_and_no_secret(
    fmt: str, access_log: bool, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'logs.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    secret = {
        "recover_api_key": "rk_live_" + secrets.token_hex(16),
        "merchant_key": "mk_" + secrets.token_hex(16),
        "eod_password": "pw_" + secrets.token_hex(12),
        "butter_signing": "bs_" + secrets.token_hex(16),
        "fake_webhook": "whsec_" + secrets.token_hex(16),
    }
    pan = luhn_number()
    log_path = tmp_path / "server.log"
    with RecoverStandIn() as recover:
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RECOVERKIT_")},
            "PYTHONPATH": str(HERE),
            "RECOVERKIT_LOAD_PLUGINS": "",
            "RECOVERKIT_DATABASE_URL": url,
            "RECOVERKIT_RECOVER_BASE_URL": recover.base_url,
            "RECOVERKIT_RECOVER_API_KEY": secret["recover_api_key"],
            "RECOVERKIT_RETRY_STATUS__API_KEY": secret["merchant_key"],
            "RECOVERKIT_RETRY_RESULTS__API_KEY": secret["merchant_key"],
            "RECOVERKIT_END_OF_DUNNING__USERNAME": "butter",
            "RECOVERKIT_END_OF_DUNNING__PASSWORD": secret["eod_password"],
            "RECOVERKIT_BUTTER_SIGNING_SECRETS": json.dumps([secret["butter_signing"]]),
            "RECOVERKIT_FAKE_WEBHOOK_SECRET": secret["fake_webhook"],
            "RECOVERKIT_LOG_FORMAT": fmt,
            "RECOVERKIT_ACCESS_LOG": str(access_log).lower(),
            "RECOVERKIT_WORKER_POLL_INTERVAL": "0.1",
            "RECOVERKIT_OUTBOX_BACKOFF_BASE": "0.1",
            "RECOVERKIT_OUTBOX_BACKOFF_CAP": "0.3",
            "RECOVERKIT_RECOVER_BREAKER_COOLDOWN": "0.2",
            "RECOVERKIT_RECOVER_BREAKER_COOLDOWN_CAP": "0.5",
            "RECOVERKIT_INBOX_MAX_ATTEMPTS": "2",
        }
        cmd = [sys.executable, "-m", "recoverkit.service", "--port", str(port)]
        cmd += ["--plugin", "fake_provider:plugin"]
        with log_path.open("ab") as out:
            server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        log = log_path.read_text

        def up() -> bool:
            assert server.poll() is None, f"server exited: {log()[-3000:]}"
            try:
                return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        try:
            wait_for("the server", up)
            with httpx.Client(base_url=base, timeout=10) as http:

                def deliver(body: dict[str, object]) -> None:
                    raw, headers = signed(body, secret=secret["fake_webhook"])
                    r = http.post("/webhooks/fake", content=raw, headers=headers)
                    assert r.status_code == 200, r.text

                for n in range(3):  # one carries a card number in a free-text field
                    deliver(charge_event(f"evt_{n}", invoice=f"inv_{n}", note=f"card {pan}"))
                wait_for("forwarding", lambda: len(recover.invoices) == 3)

                recover.status = 503  # Recover goes down
                for n in range(3, 8):
                    deliver(charge_event(f"evt_{n}", invoice=f"inv_{n}"))
                wait_for("the outage line", lambda: "Recover unreachable" in log())
                recover.status = 200  # and comes back
                wait_for("the backlog", lambda: len(recover.invoices) == 8)
                wait_for("the recovery line", lambda: "Recover back" in log())

                recover.refuse.add("inv_dead")
                deliver(charge_event("evt_dead", invoice="inv_dead"))
                wait_for("the dead letter line", lambda: "dead letter" in log())
                deliver(charge_event("evt_broken", invoice="inv_x", fail_translate=True))
                wait_for("the translation failure", lambda: "giving up" in log())

                key = {"x-api-key": secret["merchant_key"]}
                assert http.post("/retry/inv_1", headers=key).status_code == 200
                result = {
                    "timestamp": "2025-01-22T22:31:08.893377",
                    "butter_id": "1040432066964226052",
                    "invoice_id": "inv_1",
                    "success": False,
                    "currency": "USD",
                    "dunning_complete": False,
                }
                raw = json.dumps(result).encode()
                headers = signed_headers(
                    raw,
                    secret=secret["butter_signing"],
                    expiry=int(time.time()) + 3600,
                    dedupe_id="dd-results-1",
                )
                r = http.post("/webhooks/retry-results", content=raw, headers={**headers, **key})
                assert r.status_code == 200, r.text
                eod = {"timestamp": "2025-04-05T19:41:01.396550", "invoice_id": "inv_2"}
                raw = json.dumps({**eod, "recovered": False}).encode()
                headers = signed_headers(
                    raw,
                    secret=secret["butter_signing"],
                    expiry=int(time.time()) + 3600,
                    dedupe_id="dd-eod-1",
                )
                creds = base64.b64encode(f"butter:{secret['eod_password']}".encode()).decode()
                r = http.post(
                    "/webhooks/end-of-dunning",
                    content=raw,
                    headers={**headers, "authorization": f"Basic {creds}"},
                )
                assert r.status_code == 200, r.text
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
    text = log_path.read_text()
    print(text)

    # Nothing secret, no card number — not even the one a webhook carried.
    for name, value in secret.items():
        assert value not in text, f"the {name} secret is in the logs"
    assert creds not in text
    assert card_like(text) == [], "a card number is in the logs"

    # One line per thing an operator needs.
    if fmt == "json":
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
        events = {r.get("event") for r in records}
        (startup,) = [r for r in records if r.get("event") == "startup"]
        assert startup["providers"] == "fake"
        assert startup["database"].startswith("sqlite ")
        assert startup["recover"] == f"http://127.0.0.1:{recover.port}"
        assert startup["worker"] == "in-process"
        assert sum(1 for r in records if r.get("event") == "recover_unreachable") == 1
        decisions = [r for r in records if r.get("event") in {"retry_results", "end_of_dunning"}]
        assert {(r["invoice_id"], r["dedupe_id"]) for r in decisions} == {
            ("inv_1", "dd-results-1"),
            ("inv_2", "dd-eod-1"),
        }
        loggers = {r["logger"] for r in records}
        assert "uvicorn.access" in loggers  # access log opted in
    else:
        events = set(re.findall(r"\bevent=(\w+)", text))
        assert "uvicorn.access" not in text  # access log off by default
        assert text.count("Recover unreachable") == 1  # a state change, not a line per call
    assert {
        "startup",
        "recover_unreachable",
        "recover_back",
        "dead_letter",
        "translation_failed",
        "retry_status",
        "retry_results",
        "end_of_dunning",
    } <= events
