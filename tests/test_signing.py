"""Butter webhook signatures: the research test vector, both header spellings, fallback, expiry."""

from __future__ import annotations

import json

import pytest

from recoverkit import ConfigurationError, SignatureError
from recoverkit.signing import EXPIRY_HEADERS, SIGNATURE_HEADER, sign, signed_headers, verify

SECRET = "example_signing_secret"
EXPIRY = 1743925261
PAYLOAD = (
    b'{"timestamp":"2025-04-05T19:41:01.396550","invoice_id":"inv_12345",'
    b'"recovered":true,"custom":null}'
)
VECTOR = "1608251e08d8fee8314168870017101e41fa9581caf7b3b16de6e69903b86792"


def test_research_test_vector_9_5() -> None:
    assert sign(PAYLOAD, EXPIRY, SECRET) == VECTOR


@pytest.mark.parametrize("expiry_header", EXPIRY_HEADERS)
def test_both_expiry_header_spellings_verify(expiry_header: str) -> None:
    headers = {SIGNATURE_HEADER: VECTOR, expiry_header: str(EXPIRY)}
    result = verify(PAYLOAD, headers, [SECRET], now=EXPIRY - 10)
    assert result.matched == "raw"
    assert result.expiry == EXPIRY


def test_header_names_are_case_insensitive_and_signature_case_too() -> None:
    headers = {
        "x-butter-webhook-signature": VECTOR.upper(),
        "x-butter-webhook-expires": str(EXPIRY),
    }
    verify(PAYLOAD, headers, [SECRET], now=EXPIRY)


def test_signed_headers_send_expiration_spelling() -> None:
    headers = signed_headers(PAYLOAD, secret=SECRET, expiry=EXPIRY, dedupe_id="d1")
    assert headers["X-Butter-Webhook-Expiration"] == str(EXPIRY)
    assert "X-Butter-Webhook-Expires" not in headers
    assert headers[SIGNATURE_HEADER] == VECTOR
    assert headers["X-Butter-Webhook-Deduplication-ID"] == "d1"


def test_pretty_printed_body_verifies_through_compact_fallback() -> None:
    pretty = json.dumps(json.loads(PAYLOAD), indent=2).encode()
    headers = {SIGNATURE_HEADER: VECTOR, EXPIRY_HEADERS[0]: str(EXPIRY)}
    assert verify(pretty, headers, [SECRET], now=EXPIRY).matched == "compact"
    with pytest.raises(SignatureError, match="does not match"):
        verify(pretty, headers, [SECRET], now=EXPIRY, fallback=False)


def test_non_ascii_body_signed_by_json_stringify_verifies() -> None:
    # JSON.stringify keeps "é" literal; Python's json.dumps default escapes it. Both are tried.
    body_obj = {"invoice_id": "inv_é", "recovered": False}
    js_compact = json.dumps(body_obj, separators=(",", ":"), ensure_ascii=False).encode()
    signature = sign(js_compact, EXPIRY, SECRET)
    pretty = json.dumps(body_obj, indent=1).encode()
    headers = {SIGNATURE_HEADER: signature, EXPIRY_HEADERS[1]: str(EXPIRY)}
    assert verify(pretty, headers, [SECRET], now=EXPIRY).matched == "compact"


def test_rotation_any_configured_secret_matches() -> None:
    headers = {SIGNATURE_HEADER: VECTOR, EXPIRY_HEADERS[0]: str(EXPIRY)}
    verify(PAYLOAD, headers, ["new_secret", SECRET], now=EXPIRY)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({EXPIRY_HEADERS[0]: str(EXPIRY)}, "missing X-Butter-Webhook-Signature"),
        ({SIGNATURE_HEADER: VECTOR}, "missing X-Butter-Webhook-Expiration"),
        ({SIGNATURE_HEADER: VECTOR, EXPIRY_HEADERS[0]: "soon"}, "not epoch seconds"),
        ({SIGNATURE_HEADER: "0" * 64, EXPIRY_HEADERS[0]: str(EXPIRY)}, "does not match"),
        ({SIGNATURE_HEADER: "ab", EXPIRY_HEADERS[0]: str(EXPIRY)}, "does not match"),
    ],
)
def test_bad_headers_are_refused(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(PAYLOAD, headers, [SECRET], now=EXPIRY)


def test_tampered_body_and_wrong_secret_are_refused() -> None:
    headers = {SIGNATURE_HEADER: VECTOR, EXPIRY_HEADERS[0]: str(EXPIRY)}
    with pytest.raises(SignatureError):
        verify(PAYLOAD.replace(b"true", b"false"), headers, [SECRET], now=EXPIRY)
    with pytest.raises(SignatureError):
        verify(PAYLOAD, headers, ["other"], now=EXPIRY)


def test_no_secret_configured_is_refused_with_the_setting_name() -> None:
    # Missing configuration, not a bad signature: the service answers 503, not 401.
    with pytest.raises(ConfigurationError, match="butter_signing_secrets"):
        verify(PAYLOAD, {}, [], now=EXPIRY)


def test_expiry_within_clock_skew_passes_beyond_it_fails() -> None:
    headers = {SIGNATURE_HEADER: VECTOR, EXPIRY_HEADERS[0]: str(EXPIRY)}
    verify(PAYLOAD, headers, [SECRET], now=EXPIRY + 60, clock_skew=60)
    with pytest.raises(SignatureError, match="expired"):
        verify(PAYLOAD, headers, [SECRET], now=EXPIRY + 61, clock_skew=60)
