"""Verification and parsing of Adyen standard notifications and header-signed webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from adyen_helpers import (
    FIXTURES,
    OTHER_KEY,
    SDK_MOCK_KEY,
    events_of,
    item_of,
    load,
    settings,
    signed,
)
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from recoverkit_adyen import TEST_HMAC_KEY, AdyenProvider
from recoverkit_adyen.webhooks import HEADER, decode_keys, signing_string

from recoverkit.errors import ConfigurationError, MalformedWebhookError, SignatureError
from recoverkit.provider import WebhookRequest


def _two_items() -> dict[str, Any]:
    refused = load("authorisation_refused_not_enough_balance.json")
    other = item_of(load("authorisation_refused_mastercard_do_not_retry.json"))
    refused["notificationItems"].append({"NotificationRequestItem": other})
    return refused


@pytest.mark.parametrize("name", ["colon", "backslash", "forwardslash"])
def test_adyen_library_signed_mocks_verify_with_their_key(name: str) -> None:
    provider = AdyenProvider(settings(webhook_secrets=[SDK_MOCK_KEY]))
    body = (FIXTURES / f"sdk_{name}_notification.json").read_bytes()
    provider.verify(WebhookRequest(body))
    [event] = provider.parse(WebhookRequest(body))
    assert event.type == "AUTHORISATION"


def test_adyen_library_test_vector_matches_our_signing_string() -> None:
    # Adyen/adyen-python-api-library test/UtilTest.py
    item = {
        "pspReference": "7914073381342284",
        "merchantAccountCode": "TestMerchant",
        "merchantReference": "TestPayment-1407325143704",
        "amount": {"value": 1130, "currency": "EUR"},
        "eventCode": "AUTHORISATION",
        "success": "true",
    }
    key = decode_keys([TEST_HMAC_KEY])[0]
    digest = hmac.new(key, signing_string(item).encode(), hashlib.sha256).digest()
    assert base64.b64encode(digest).decode() == "coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="


def test_signing_string_has_empty_fields_and_no_escaping() -> None:
    item = item_of(load("sdk_colon_notification.json"))
    assert signing_string(item) == (
        "M8NB66SBZSGLNK82::AntoniStroinski::slashes are fun:1000:EUR:AUTHORISATION:true"
    )


def test_every_item_is_verified_not_only_the_first(provider: AdyenProvider) -> None:
    request = signed(_two_items())
    provider.verify(request)  # both signed: accepted
    body = json.loads(request.body)
    item_of(body, 1)["amount"]["value"] += 1  # the second item is forged
    with pytest.raises(SignatureError, match=r"notificationItems\[1\]"):
        provider.verify(WebhookRequest(json.dumps(body).encode()))


def test_item_without_additional_data_is_refused_not_ignored(provider: AdyenProvider) -> None:
    # Adyen.util.is_valid_hmac_notification returns None here; a caller testing `is False`
    # would accept the request.
    body = load("capture_failed.json")
    request = WebhookRequest(json.dumps(body).encode())
    with pytest.raises(SignatureError, match=r"carries no additionalData\.hmacSignature"):
        provider.verify(request)


def test_empty_hmac_signature_is_a_signature_error(provider: AdyenProvider) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    item_of(body)["additionalData"]["hmacSignature"] = ""
    with pytest.raises(SignatureError):
        provider.verify(WebhookRequest(json.dumps(body).encode()))


def test_any_configured_key_verifies_during_rotation() -> None:
    rotating = AdyenProvider(settings(webhook_secrets=[OTHER_KEY, TEST_HMAC_KEY]))
    rotating.verify(signed(load("authorisation_refused_not_enough_balance.json")))
    rotating.verify(signed(load("authorisation_refused_not_enough_balance.json"), OTHER_KEY))
    old_only = AdyenProvider(settings(webhook_secrets=[OTHER_KEY]))
    with pytest.raises(SignatureError):
        old_only.verify(signed(load("authorisation_refused_not_enough_balance.json")))


def test_header_signed_webhook_is_verified_over_the_raw_body(provider: AdyenProvider) -> None:
    body = json.dumps(load("token_updated.json")).encode()
    request = provider.sign_test_webhook(body)
    assert request.body == body
    assert request.header(HEADER)
    provider.verify(request)
    spaced = body.replace(b'":', b'": ')  # same JSON, other bytes: the signature no longer fits
    with pytest.raises(SignatureError, match=HEADER):
        provider.verify(WebhookRequest(spaced, dict(request.headers)))


def test_typed_webhook_without_header_is_refused(provider: AdyenProvider) -> None:
    body = json.dumps(load("token_updated.json")).encode()
    with pytest.raises(SignatureError, match=HEADER):
        provider.verify(WebhookRequest(body))


def test_no_key_configured_is_a_configuration_error() -> None:
    provider = AdyenProvider(settings(webhook_secrets=[]))
    with pytest.raises(ConfigurationError, match="WEBHOOK_SECRETS"):
        provider.verify(signed(load("authorisation_refused_not_enough_balance.json")))


def test_a_key_that_is_not_hex_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="not a hex HMAC key"):
        settings(webhook_secrets=["not-hex"])


def test_parse_gives_one_event_per_item_with_adyen_dedupe_keys(provider: AdyenProvider) -> None:
    events = events_of(provider, signed(_two_items()))
    assert [e.dedupe_key for e in events] == [
        "QFQTPCQ8HXSKGK82:AUTHORISATION:false",
        "LB2XJHXKZ6NNKF82:AUTHORISATION:false",
    ]
    assert events[0].occurred_at.utcoffset() is not None
    assert events[0].object_id == "QFQTPCQ8HXSKGK82"


def test_failure_and_later_success_of_one_reference_have_different_keys(
    provider: AdyenProvider,
) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    [failed] = events_of(provider, signed(body))
    item_of(body)["success"] = "true"
    [succeeded] = events_of(provider, signed(body))
    assert failed.dedupe_key != succeeded.dedupe_key


@pytest.mark.parametrize(
    ("event_type", "data", "key"),
    [
        # every Adyen key leads with the object: the token here, the pspReference elsewhere
        (
            "recurring.token.updated",
            {"storedPaymentMethodId": "M5N7TQ4TG5PFWR50"},
            "M5N7TQ4TG5PFWR50:recurring.token.updated:QBQQ9DLNRHHKGK38",
        ),
        (
            "recurring.token.created",
            {"storedPaymentMethodId": "TOKEN2"},
            "TOKEN2:recurring.token.created:QBQQ9DLNRHHKGK38",
        ),
        (
            "recurring.token.disabled",
            {"storedPaymentMethodId": "TOKEN3", "shopperReference": "cus_9"},
            "TOKEN3:recurring.token.disabled:QBQQ9DLNRHHKGK38",
        ),
        # no object id in the body: the type leads
        (
            "recurring.token.updated",
            {},
            "recurring.token.updated:recurring.token.updated:QBQQ9DLNRHHKGK38",
        ),
    ],
)
def test_tokenization_webhook_key_leads_with_the_token(
    provider: AdyenProvider, event_type: str, data: dict[str, str], key: str
) -> None:
    body = load("token_updated.json")
    body.update(type=event_type, data=data)
    request = provider.sign_test_webhook(json.dumps(body).encode())
    [event] = events_of(provider, request)
    assert event.dedupe_key == key
    assert event.object_id == data.get("storedPaymentMethodId")


def test_keys_of_one_object_sort_together_across_both_families(provider: AdyenProvider) -> None:
    token = load("token_updated.json")
    [typed] = events_of(provider, provider.sign_test_webhook(json.dumps(token).encode()))
    contract = load("recurring_contract.json")
    item_of(contract)["pspReference"] = "M5N7TQ4TG5PFWR50"  # RECURRING_CONTRACT: the token
    [standard] = events_of(provider, signed(contract))
    assert typed.dedupe_key.split(":")[0] == standard.dedupe_key.split(":")[0]


@pytest.mark.parametrize(
    "body",
    [
        # Management API webhook: no eventId, no storedPaymentMethodId
        {
            "createdAt": "2026-11-30T10:00:00+01:00",
            "data": {"merchantId": "RecoverkitDemoECOM", "status": "PreActive"},
            "environment": "test",
            "type": "merchant.created",
        },
        # Balance Platform style: an id in data, an eventId
        {
            "data": {"id": "BA00000000000000000001", "balancePlatform": "YOUR_BP"},
            "environment": "test",
            "eventId": "EVT1",
            "type": "balancePlatform.accountHolder.created",
        },
        # no createdAt, data not an object
        {"type": "some.future.family", "data": ["x"]},
    ],
)
def test_typed_webhook_the_plugin_does_not_handle_is_ignored_with_a_reason(
    provider: AdyenProvider, body: dict[str, Any]
) -> None:
    raw = json.dumps(body).encode()
    request = provider.sign_test_webhook(raw)  # a valid HmacSignature header
    [event] = events_of(provider, request)
    assert event.type == body["type"]
    assert event.dedupe_key.split(":")[1] == body["type"]
    translation = provider.translate(event)
    assert translation.messages == ()
    assert translation.ignored == f"{body['type']}: not an event Recover uses"
    # Adyen redelivers the same body: the same key, so it is stored once
    [again] = events_of(provider, provider.sign_test_webhook(raw))
    assert again.dedupe_key == event.dedupe_key


def test_unhandled_typed_webhook_still_needs_a_valid_signature(provider: AdyenProvider) -> None:
    body = json.dumps({"type": "merchant.created", "data": {}}).encode()
    with pytest.raises(SignatureError):
        provider.verify(WebhookRequest(body))
    with pytest.raises(SignatureError):
        provider.verify(WebhookRequest(body, {HEADER: "bm90IGl0"}))


@pytest.mark.parametrize(
    "body",
    [
        {"type": "recurring.token.updated", "createdAt": "2026-11-23T16:40:23+02:00"},
        {"type": "recurring.token.updated", "eventId": "E1"},
        {"type": "recurring.token.updated", "eventId": "E1", "createdAt": "yesterday"},
        {"type": "", "eventId": "E1"},
        {"type": 7, "eventId": "E1"},
    ],
)
def test_handled_typed_webhook_without_its_facts_is_malformed(
    provider: AdyenProvider, body: dict[str, Any]
) -> None:
    with pytest.raises(MalformedWebhookError):
        events_of(provider, provider.sign_test_webhook(json.dumps(body).encode()))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"live": "false", "notificationItems": []}',
        b'{"live": "false", "notificationItems": [{"Other": {}}]}',
        b"[]",
    ],
)
def test_undecodable_bodies_are_malformed(provider: AdyenProvider, body: bytes) -> None:
    with pytest.raises(MalformedWebhookError):
        provider.parse(WebhookRequest(body))


def test_item_without_event_date_is_malformed(provider: AdyenProvider) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    del item_of(body)["eventDate"]
    with pytest.raises(MalformedWebhookError, match="eventDate"):
        provider.parse(signed(body))


def test_receiver_acknowledges_with_accepted() -> None:
    assert AdyenProvider.webhook_ack == (200, "text/plain", b"[accepted]")


def test_parse_reuses_the_verified_body_only_for_the_same_bytes(provider: AdyenProvider) -> None:
    request = signed(load("authorisation_refused_not_enough_balance.json"))
    provider.verify(request)
    first = provider.parse(request)
    other = WebhookRequest(request.body.replace(b"Not enough balance", b"Expired Card"))
    provider.verify(request)
    [changed] = provider.parse(other)  # other bytes: decoded afresh, not the verified body
    assert changed.data["reason"] == "Expired Card"
    assert [e.dedupe_key for e in provider.parse(request)] == [e.dedupe_key for e in first]


@hypothesis_settings(database=None, max_examples=60)
@given(
    reference=st.text(max_size=80),
    value=st.integers(min_value=0, max_value=10**12),
    success=st.sampled_from(["true", "false"]),
)
def test_any_signed_item_verifies_and_any_change_to_a_signed_field_fails(
    reference: str, value: int, success: str
) -> None:
    provider = AdyenProvider(settings())
    body = load("authorisation_refused_not_enough_balance.json")
    item = item_of(body)
    item.update({"merchantReference": reference, "success": success})
    item["amount"]["value"] = value
    request = signed(body)
    provider.verify(request)
    forged = json.loads(request.body)
    item_of(forged)["amount"]["value"] = value + 1
    with pytest.raises(SignatureError):
        provider.verify(WebhookRequest(json.dumps(forged).encode()))


@pytest.mark.parametrize(
    ("field", "value"),
    [("eventCode", "X" * 129), ("pspReference", "P" * 250)],
)
def test_signed_item_with_a_type_or_key_too_long_to_store_is_malformed(
    provider: AdyenProvider, field: str, value: str
) -> None:
    body = load("authorisation_refused_not_enough_balance.json")
    item_of(body)[field] = value
    request = signed(body)
    provider.verify(request)  # signed: only the inbox's column sizes refuse it
    with pytest.raises(MalformedWebhookError, match="longer than"):
        provider.parse(request)
