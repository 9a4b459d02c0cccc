"""Malformed and hostile input into verify / parse / translate, the CLI and the service route.

Issue 10 items 10, 12, 13 for Adyen: bad input is a clear refusal (``WebhookError`` → HTTP 4xx,
CLI exit 2/3), never an unhandled exception (CLI exit 1, HTTP 500), and nothing is stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from adyen_helpers import item_of, load, settings, signed
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from recoverkit_adyen import TEST_HMAC_KEY, AdyenProvider
from recoverkit_adyen.webhooks import MAX_JSON_DEPTH, decode_keys, sign_item
from test_service import _Loop, make_loop

from recoverkit.cli import main
from recoverkit.errors import (
    MalformedWebhookError,
    MissingFactError,
    WebhookError,
    WireValidationError,
)
from recoverkit.provider import WebhookRequest

#: Outcomes that are answers, not bugs: refused input, or an event held for missing facts.
ANSWERS = (WebhookError, WireValidationError, MissingFactError)
BOUNDED = hypothesis_settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KEY = decode_keys([TEST_HMAC_KEY])[0]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _signed_with_raw_additional(raw_value: str) -> bytes:
    """A correctly signed item whose unsigned ``additionalData.deep`` is ``raw_value`` (raw JSON).

    The HMAC covers eight fields only, so the item still verifies whatever ``deep`` holds.
    """
    body = load("authorisation_refused_not_enough_balance.json")
    item = item_of(body)
    sign_item(item, KEY)
    item["additionalData"]["deep"] = "@DEEP@"
    return json.dumps(body).encode().replace(b'"@DEEP@"', raw_value.encode())


def _run(provider: AdyenProvider, request: WebhookRequest) -> str:
    """verify, parse and translate; the name of the answer, or raises what is a bug."""
    try:
        provider.verify(request)
        events = provider.parse(request)
        for event in events:
            provider.translate(event)
    except ANSWERS as exc:
        return type(exc).__name__
    return "ok"


# -- deep nesting ----------------------------------------------------------------------------


def test_signed_item_with_100000_nested_arrays_is_malformed_not_a_recursion_error(
    provider: AdyenProvider,
) -> None:
    request = WebhookRequest(_signed_with_raw_additional(_nested(100_000)))
    with pytest.raises(MalformedWebhookError, match="deeper than"):
        provider.verify(request)
    with pytest.raises(MalformedWebhookError, match="deeper than"):
        provider.parse(request)


@pytest.mark.parametrize(
    ("depth", "accepted"),
    [
        (MAX_JSON_DEPTH - 5, True),  # body, notificationItems, wrapper, item, additionalData
        (MAX_JSON_DEPTH - 4, False),
        (900, False),  # under the interpreter's recursion limit: refused by the depth check
        (5_000, False),  # over it: json raises RecursionError, refused all the same
    ],
)
def test_nesting_limit_is_exact(provider: AdyenProvider, depth: int, accepted: bool) -> None:
    request = WebhookRequest(_signed_with_raw_additional(_nested(depth)))
    if accepted:
        [event] = provider.parse(request)
        provider.verify(request)
        assert event.object_id == "QFQTPCQ8HXSKGK82"
    else:
        with pytest.raises(MalformedWebhookError, match=f"deeper than {MAX_JSON_DEPTH}"):
            provider.verify(request)


def test_deep_header_signed_body_is_malformed(provider: AdyenProvider) -> None:
    body = b'{"type":"merchant.created","data":' + _nested(10_000).encode() + b"}"
    request = provider.sign_test_webhook(body)
    provider.verify(request)  # the signature is over the bytes: it matches
    with pytest.raises(MalformedWebhookError, match="deeper than"):
        provider.parse(request)


# -- size ------------------------------------------------------------------------------------


def test_body_over_the_limit_is_refused_before_parsing(provider: AdyenProvider) -> None:
    # 16 MiB of valid JSON: refused for its size, not decoded
    filler = "x" * (16 * 1024 * 1024)
    body = json.loads(signed(load("authorisation_refused_not_enough_balance.json")).body)
    item_of(body)["additionalData"]["filler"] = filler
    request = WebhookRequest(json.dumps(body).encode())
    with pytest.raises(MalformedWebhookError, match="over the 1048576-byte limit"):
        provider.verify(request)
    with pytest.raises(MalformedWebhookError, match="over the 1048576-byte limit"):
        provider.parse(request)


def test_body_size_limit_is_a_setting() -> None:
    small = AdyenProvider(settings(max_body_bytes=1024))
    request = signed(load("authorisation_refused_not_enough_balance.json"))
    assert len(request.body) > 1024
    with pytest.raises(MalformedWebhookError, match="1024-byte limit"):
        small.verify(request)
    AdyenProvider(settings(max_body_bytes=len(request.body))).verify(request)


# -- encodings -------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "latin-1", "cp1252"])
def test_body_that_is_not_utf8_is_malformed(provider: AdyenProvider, encoding: str) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    item_of(body)["reason"] = "Refusé"
    text = json.dumps(json.loads(signed(body).body), ensure_ascii=False)
    assert "Refusé" in text
    request = WebhookRequest(text.encode(encoding))
    with pytest.raises(MalformedWebhookError, match=r"not UTF-8|not valid JSON"):
        provider.verify(request)
    with pytest.raises(MalformedWebhookError):
        provider.parse(request)


# -- properties ------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
_ITEM_FIELDS = (
    "pspReference",
    "originalReference",
    "merchantAccountCode",
    "merchantReference",
    "amount",
    "eventCode",
    "eventDate",
    "success",
    "reason",
    "paymentMethod",
    "additionalData",
)


@BOUNDED
@given(body=st.binary(max_size=2048))
def test_random_bytes_are_refused_never_crash(provider: AdyenProvider, body: bytes) -> None:
    assert _run(provider, WebhookRequest(body)) != "ok"
    assert _run(provider, provider.sign_test_webhook(body)) in {
        "ok",
        "MalformedWebhookError",
    }


@BOUNDED
@given(cut=st.integers(min_value=0), sample=st.sampled_from(["refused", "token", "mc"]))
def test_truncated_bodies_are_refused_never_crash(
    provider: AdyenProvider, cut: int, sample: str
) -> None:
    if sample == "token":
        full = provider.sign_test_webhook(json.dumps(load("token_updated.json")).encode())
    else:
        name = {
            "refused": "authorisation_refused_not_enough_balance.json",
            "mc": "authorisation_refused_mastercard_do_not_retry.json",
        }[sample]
        full = signed(load(name))
    cut %= len(full.body)
    assert _run(provider, WebhookRequest(full.body[:cut], dict(full.headers))) != "ok"


@BOUNDED
@given(field=st.sampled_from(_ITEM_FIELDS), value=_JSON, resign=st.booleans())
def test_wrong_json_types_in_any_item_field_are_answered_never_crash(
    provider: AdyenProvider, field: str, value: Any, resign: bool
) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    item = item_of(body)
    item[field] = value
    if resign and isinstance(item.get("additionalData", {}), dict):
        sign_item(item, KEY)  # a valid signature over whatever the signed fields now hold
    _run(provider, WebhookRequest(json.dumps(body).encode()))


_ADDITIONAL_KEYS = sorted(
    item_of(load("authorisation_refused_not_enough_balance.json"))["additionalData"]
)


@BOUNDED
@given(key=st.sampled_from(_ADDITIONAL_KEYS) | st.text(max_size=30), value=_JSON)
def test_wrong_json_types_in_additional_data_of_a_signed_item_never_crash(
    provider: AdyenProvider, key: str, value: Any
) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    item = item_of(body)
    item["additionalData"][key] = value
    sign_item(item, KEY)
    _run(provider, WebhookRequest(json.dumps(body).encode()))


@BOUNDED
@given(
    path=st.lists(st.sampled_from(["data", "eventId", "createdAt", "type", "x"]), max_size=3),
    value=_JSON,
)
def test_wrong_json_types_in_typed_webhooks_never_crash(
    provider: AdyenProvider, path: list[str], value: Any
) -> None:
    body: dict[str, Any] = load("token_updated.json")
    target: Any = body
    for step in path[:-1]:
        nxt = target.get(step) if isinstance(target, dict) else None
        if not isinstance(nxt, dict):
            break
        target = nxt
    if path and isinstance(target, dict):
        target[path[-1]] = value
    _run(provider, provider.sign_test_webhook(json.dumps(body).encode()))


@BOUNDED
@given(
    body=st.one_of(
        _JSON.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=512),
        st.sampled_from([b"", b"{}", b'{"notificationItems": {}}', b"[" * 3000]),
    ),
    signature=st.sampled_from([None, "header", "garbage"]),
)
def test_any_body_into_verify_parse_translate_is_answered(
    provider: AdyenProvider, body: bytes, signature: str | None
) -> None:
    if signature == "header":
        request = provider.sign_test_webhook(body)
    elif signature == "garbage":
        request = WebhookRequest(body, {"HmacSignature": "AAAA"})
    else:
        request = WebhookRequest(body)
    _run(provider, request)


# -- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no recoverkit.toml of the machine running the tests
    monkeypatch.delenv("RECOVERKIT_CONFIG", raising=False)
    monkeypatch.setenv("RECOVERKIT_ADYEN_ACQUIRER_COUNTRY", "NL")
    return tmp_path


@pytest.mark.parametrize(
    ("name", "body", "code"),
    [
        ("deep", _signed_with_raw_additional(_nested(100_000)), 2),
        ("oversize", b'{"notificationItems":[' + b" " * (17 * 1024 * 1024) + b"]}", 2),
        ("not-utf8", b"\xff\xfe{}", 2),
        ("truncated", signed(load("authorisation_refused_not_enough_balance.json")).body[:90], 2),
        ("unsigned", json.dumps(load("authorisation_refused_not_enough_balance.json")).encode(), 3),
        ("good", signed(load("authorisation_refused_not_enough_balance.json")).body, 0),
    ],
)
def test_cli_translate_answers_bad_input_with_exit_2_or_3(
    cli_env: Path, capsys: pytest.CaptureFixture[str], name: str, body: bytes, code: int
) -> None:
    path = cli_env / f"{name}.json"
    path.write_bytes(body)
    assert main(["translate", "adyen", str(path), "--secret", TEST_HMAC_KEY]) == code
    err = capsys.readouterr().err
    if code:
        assert "error" in err
        assert "Traceback" not in err
        assert "RecursionError" not in err


def test_cli_translate_ignores_an_unhandled_typed_webhook_with_a_reason(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    provider = AdyenProvider(settings())
    request = provider.sign_test_webhook(b'{"type":"merchant.created","data":{"merchantId":"M"}}')
    path = cli_env / "merchant_created.json"
    path.write_bytes(request.body)
    code = main(
        [
            "translate",
            "adyen",
            str(path),
            "--secret",
            TEST_HMAC_KEY,
            "-H",
            f"HmacSignature: {request.header('HmacSignature')}",
        ]
    )
    assert code == 0
    [line] = capsys.readouterr().out.splitlines()
    assert json.loads(line) == {
        "ignored": "merchant.created",
        "reason": "merchant.created: not an event Recover uses",
    }


# -- the service route -----------------------------------------------------------------------


@pytest.fixture
def loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Loop]:
    yield from make_loop(tmp_path, monkeypatch, AdyenProvider(settings()))


def test_service_refuses_deep_nesting_with_400_and_stores_nothing(loop: _Loop) -> None:
    answer = loop.post(WebhookRequest(_signed_with_raw_additional(_nested(100_000))))
    assert answer.status_code == 400
    assert "deeper than" in answer.text
    assert loop.inbox() == []


def test_service_stores_an_unhandled_typed_webhook_and_ignores_it(loop: _Loop) -> None:
    provider = AdyenProvider(settings())
    request = provider.sign_test_webhook(b'{"type":"merchant.created","data":{"merchantId":"M"}}')
    assert loop.post(request).status_code == 200
    assert loop.post(request).status_code == 200  # redelivered: stored once
    loop.drain()
    [(state, _)] = loop.inbox()
    assert state == "ignored"
    assert loop.sent == []


@hypothesis_settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.one_of(
        st.binary(max_size=512),
        _JSON.map(lambda v: json.dumps(v).encode()),
        st.integers(min_value=0, max_value=3000).map(
            lambda n: _signed_with_raw_additional(_nested(n))
        ),
        st.integers(min_value=1, max_value=400).map(
            lambda n: signed(load("authorisation_refused_not_enough_balance.json")).body[:n]
        ),
        st.sampled_from(["utf-16", "utf-32"]).map(
            lambda e: (
                signed(load("authorisation_refused_not_enough_balance.json"))
                .body.decode()
                .encode(e)
            )
        ),
    ),
    header=st.sampled_from([None, "sign", "garbage"]),
)
def test_service_route_answers_any_body_with_2xx_or_4xx(
    loop: _Loop, body: bytes, header: str | None
) -> None:
    if header == "sign":
        request = AdyenProvider(settings()).sign_test_webhook(body)
    elif header == "garbage":
        request = WebhookRequest(body, {"HmacSignature": "AAAA"})
    else:
        request = WebhookRequest(body)
    before = len(loop.inbox())
    answer = loop.post(request)
    assert 200 <= answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert len(loop.inbox()) == before  # nothing stored for a refused request
