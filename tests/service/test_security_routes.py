"""Issue 11 "Done means": hostile input to every route of the service (hypothesis).

Every answer is 2xx/3xx/4xx, never 5xx; a refused request stores nothing; and no card number
sent in — anywhere in a body, signed or not — reaches the SQLite file or what Recover received.
Card-like numbers are built at run time from random stems (``with_check_digit``).
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from fake_provider import fake_signature
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from service_support import FakeRecover, Service, build_service, call, make_settings
from sqlalchemy import Engine, func, select
from test_security_redact import LeakyProvider

from recoverkit import redact
from recoverkit.signing import signed_headers
from recoverkit.store.tables import butter_webhooks, inbox, ledger, outbox
from recoverkit.testing.scan import with_check_digit

SECRET = "example_signing_secret"
FAKE_SECRET = "whsec_fake_test_secret"
PANS: set[str] = set()  # every card number any example sent in

ROUTES = [
    ("POST", "/webhooks/fake"),
    ("POST", "/webhooks/fake"),
    ("POST", "/webhooks/fake"),
    ("PUT", "/webhooks/fake"),
    ("POST", "/webhooks/unknown-psp"),
    ("POST", "/webhooks/retry-results"),
    ("POST", "/webhooks/retry-results"),
    ("POST", "/webhooks/end-of-dunning"),
    ("POST", "/webhooks/end-of-dunning"),
    ("POST", "/retry/inv_1"),
    ("POST", "/retry/%00%2F..%2F"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]


@st.composite
def pans(draw: st.DrawFn) -> str:
    length = draw(st.integers(min_value=12, max_value=19))
    stem = draw(st.text("0123456789", min_size=length - 1, max_size=length - 1))
    pan = with_check_digit(stem)
    PANS.add(pan)
    style = draw(st.sampled_from(["plain", "spaced", "dashed"]))
    if style == "plain":
        return pan
    sep = " " if style == "spaced" else "-"
    return sep.join(pan[i : i + 4] for i in range(0, len(pan), 4))


def _free_text(draw: st.DrawFn) -> str:
    pan = draw(pans())
    cvc = draw(st.sampled_from(["cvc", "CVV", "cvv2", "cid", "security code"]))
    return draw(
        st.sampled_from(
            [
                f"Refused: card {pan}",
                f"{pan}",
                f"card {pan} {cvc} {draw(st.integers(100, 9999))}",
                f"note: {draw(st.text(max_size=20))} {pan}",
            ]
        )
    )


json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)


def _fake_event(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 30))
    return {
        "id": f"evt_h{n}",
        "type": draw(st.sampled_from(["charge.failed", "charge.succeeded", "other.thing"])),
        "created": int(time.time()),
        "data": {
            "invoice": draw(st.sampled_from(["inv_1", f"inv_h{n}"])),
            "charge": f"ch_h{n}",
            "customer": "cus_1",
            "subscription": "sub_1",
            "amount": draw(st.integers(1, 10**6)),
            "currency": "usd",
            "success": draw(st.booleans()),
            "payment_method": "pm_1",
            "note": _free_text(draw),
            "metadata": {"text": _free_text(draw), _free_text(draw): [_free_text(draw)]},
        },
    }


RESULT = {
    "timestamp": "2025-01-22T22:31:08.893377",
    "butter_id": "1040432066964226052",
    "invoice_id": "inv_1",
    "success": True,
    "original_amount": 10.0,
    "amount_collected": 10.0,
    "currency": "USD",
    "dunning_complete": True,
    "custom": {},
}
EOD = {"timestamp": "2025-04-05T19:41:01.396550", "invoice_id": "inv_1", "recovered": False}


@st.composite
def hostile_json(draw: st.DrawFn, path: str) -> Any:
    """Valid-looking Recover/fake bodies with card data, wrong types and extra fields."""
    fitting = "result" if "retry-results" in path else "eod" if "dunning" in path else "fake"
    kind = draw(st.sampled_from([fitting, fitting, fitting, "fake", "result", "eod", "batch"]))
    if kind == "fake":
        body: dict[str, Any] = _fake_event(draw)
    elif kind == "batch":
        body = {"events": [_fake_event(draw) for _ in range(draw(st.integers(0, 3)))]}
    else:
        body = dict(RESULT if kind == "result" else EOD)
        body["custom"] = {"note": _free_text(draw), "n": draw(st.integers())}
    if draw(st.integers(0, 3)) == 0:  # sometimes: wrong types and stray fields
        for _ in range(draw(st.integers(1, 3))):
            key = draw(st.sampled_from([*body, "custom", "data", "events", "invoice_id"]))
            body[key] = draw(
                st.one_of(
                    json_leaves,
                    st.lists(json_leaves, max_size=3),
                    st.dictionaries(st.text(max_size=8), json_leaves, max_size=3),
                )
            )
    return body


@st.composite
def bodies(draw: st.DrawFn, path: str) -> bytes:
    kind = draw(
        st.sampled_from(["bytes", "json", "json", "json", "deep", "truncated", "encoding", "empty"])
    )
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "empty":
        return b""
    if kind == "deep":
        depth = draw(st.integers(1_000, 50_000))
        opener = draw(st.sampled_from(["[", '{"a":']))
        closer = "]" if opener == "[" else "}"
        return (opener * depth + closer * depth).encode()
    text = json.dumps(draw(hostile_json(path)))
    if kind == "truncated":
        return text.encode()[: draw(st.integers(0, max(0, len(text) - 1)))]
    if kind == "encoding":
        return text.encode(
            draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252"])), "replace"
        )
    return text.encode()


def _headers(draw: st.DrawFn, path: str, body: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    media = draw(
        st.sampled_from(["application/json", "application/json", "text/plain", "", "a/b; x"])
    )
    if media:
        headers["content-type"] = media
    right = "basic" if "end-of-dunning" in path else "key"
    auth = draw(st.sampled_from([right, right, right, "key", "basic", "wrong", "none"]))
    if auth == "key":
        headers["x-api-key"] = "merchant-key"
    elif auth == "basic":
        headers["authorization"] = "Basic " + base64.b64encode(b"butter:s3cret").decode()
    elif auth == "wrong":
        headers["authorization"] = draw(st.sampled_from(["Basic !!!", "Basic ", "Bearer x"]))
        headers["x-api-key"] = draw(
            st.text(max_size=10).map(lambda t: t.encode("ascii", "ignore").decode())
        )
    sign = draw(st.sampled_from(["valid", "valid", "valid", "garbage", "none", "far-expiry"]))
    if sign == "valid" or sign == "far-expiry":
        ahead = 10 * 365 * 86400 if sign == "far-expiry" else 600
        headers |= signed_headers(
            body,
            secret=SECRET,
            expiry=int(time.time()) + ahead,
            dedupe_id=draw(st.sampled_from([None, "d-1", "d-2"])),
        )
        headers["X-Fake-Signature"] = fake_signature(body, FAKE_SECRET, int(time.time()))
        headers["content-type"] = media or "application/json"
    elif sign == "garbage":
        headers["X-Butter-Webhook-Signature"] = draw(
            st.text(max_size=70).map(lambda t: t.encode("ascii", "ignore").decode())
        )
        headers["X-Butter-Webhook-Expiration"] = draw(st.sampled_from(["", "x", "-1", "9" * 40]))
        headers["X-Fake-Signature"] = draw(st.sampled_from(["", "t=,v1=", "t=1,v1=00", "garbage"]))
    return headers


def _counts(engine: Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (inbox, butter_webhooks, outbox, ledger)
        )


@pytest.fixture
def hostile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Service:
    from recoverkit.store import make_engine, upgrade

    monkeypatch.setenv("RECOVERKIT_RETRY_STATUS__API_KEY", "merchant-key")
    monkeypatch.setenv("RECOVERKIT_RETRY_RESULTS__API_KEY", "merchant-key")
    monkeypatch.setenv("RECOVERKIT_END_OF_DUNNING__USERNAME", "butter")
    monkeypatch.setenv("RECOVERKIT_END_OF_DUNNING__PASSWORD", "s3cret")
    monkeypatch.setenv("RECOVERKIT_BUTTER_SIGNING_SECRETS", f'["{SECRET}"]')
    engine = make_engine(f"sqlite:///{tmp_path / 'rk.db'}")
    upgrade(engine)
    svc = build_service(make_settings(tmp_path), engine, FakeRecover())
    provider = LeakyProvider()
    svc.app.state.service.providers._instances["fake"] = provider
    svc.worker.providers._instances["fake"] = provider
    return svc


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_input_to_every_route_is_never_a_5xx_and_refusals_store_nothing(
    hostile: Service, data: st.DataObject
) -> None:
    method, path = data.draw(st.sampled_from(ROUTES), label="route")
    body = data.draw(bodies(path), label="body")
    headers = _headers(data.draw, path, body)
    before = _counts(hostile.engine)
    response = call(hostile.app, method, path, content=body, headers=headers)
    event(f"{path} -> {response.status_code}")
    assert response.status_code < 500, (path, response.status_code, response.text[:300])
    if response.status_code >= 400:
        assert _counts(hostile.engine) == before, (path, response.status_code)
    hostile.drain()  # whatever was accepted goes through translation and out to "Recover"


def test_no_card_number_reaches_the_database_file_or_recover(
    hostile: Service, tmp_path: Path
) -> None:
    """After accepted webhooks full of card data are translated and forwarded."""
    pan_texts = []
    for n in range(20):
        pan = with_check_digit(f"4{n:03d}00987654321"[:15])
        PANS.add(pan)
        spaced = " ".join(pan[i : i + 4] for i in range(0, 16, 4))
        pan_texts.append(f"Refused {spaced} cvc {100 + n}")
        event = {
            "id": f"evt_card_{n}",
            "type": "charge.failed",
            "created": int(time.time()),
            "data": {
                "invoice": f"inv_c{n}",
                "charge": f"ch_c{n}",
                "customer": "cus_1",
                "subscription": "sub_1",
                "amount": 1000 + n,
                "currency": "usd",
                "success": False,
                "payment_method": "pm_1",
                "note": pan_texts[-1],
                "metadata": {"pan": pan, pan: [int(pan)]},
            },
        }
        raw = json.dumps(event).encode()
        headers = {
            "X-Fake-Signature": fake_signature(raw, FAKE_SECRET, int(time.time())),
            "content-type": "application/json",
        }
        response = call(hostile.app, "POST", "/webhooks/fake", content=raw, headers=headers)
        assert response.status_code == 200, response.text
    hostile.drain()
    received = b"".join(body for _, body in hostile.recover.accepted)
    assert len(hostile.recover.accepted) == 20
    assert redact.REDACTED_CARD.encode() in received  # the leaky plugin did try to forward them
    _assert_no_pan(received)
    assert redact.card_numbers(received.decode()) == []
    hostile.engine.dispose()
    _assert_no_pan(b"".join(p.read_bytes() for p in sorted(tmp_path.glob("rk.db*"))))


def _assert_no_pan(blob: bytes) -> None:
    for pan in PANS:
        for form in (pan, " ".join(pan[i : i + 4] for i in range(0, len(pan), 4))):
            assert form.encode() not in blob, "a card number was stored or sent"
        dashed = "-".join(pan[i : i + 4] for i in range(0, len(pan), 4))
        assert dashed.encode() not in blob
