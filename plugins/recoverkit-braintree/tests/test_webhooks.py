"""Inbound: form decoding, signatures through the SDK, hostile XML, dedupe keys, test signing."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode

import pytest
from bt_support import OLD_PAIR, PAIR, fixture_xml, make_provider, sdk_sample
from recoverkit_braintree import webhooks
from recoverkit_braintree.provider import BraintreeProvider

from recoverkit.errors import MalformedWebhookError, SignatureError
from recoverkit.provider import WebhookRequest


def _fields(request: WebhookRequest) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.body.decode("ascii")).items()}


def _form(signature: str, payload: str) -> WebhookRequest:
    return WebhookRequest(urlencode({"bt_signature": signature, "bt_payload": payload}).encode())


def test_sdk_signed_sample_is_accepted_and_parsed(provider: BraintreeProvider) -> None:
    request = sdk_sample("subscription_went_past_due", "sub_demo_1")
    provider.verify(request)
    [event] = provider.parse(request)
    assert event.type == "subscription_went_past_due"
    assert event.object_id == "sub_demo_1"
    assert event.occurred_at.tzinfo is not None


def test_webhook_signed_with_the_previous_key_pair_is_accepted(provider: BraintreeProvider) -> None:
    provider.verify(sdk_sample("subscription_canceled", "sub_demo_1", pair=OLD_PAIR))


def test_signature_listing_a_foreign_key_first_still_verifies(provider: BraintreeProvider) -> None:
    fields = _fields(sdk_sample("subscription_canceled", "sub_demo_1"))
    request = _form("pk_other|" + "0" * 40 + "&" + fields["bt_signature"], fields["bt_payload"])
    provider.verify(request)


def test_foreign_public_key_is_rejected_with_the_keys_named(provider: BraintreeProvider) -> None:
    foreign = {"public_key": "pk_elsewhere", "private_key": "x"}
    request = sdk_sample("subscription_canceled", "sub_demo_1", pair=foreign)
    with pytest.raises(SignatureError, match=r"pk_elsewhere.*pk_test_current"):
        provider.verify(request)


def test_wrong_private_key_for_a_known_public_key_is_rejected(provider: BraintreeProvider) -> None:
    forged = {"public_key": PAIR["public_key"], "private_key": "not_the_private_key"}
    with pytest.raises(SignatureError, match="does not match"):
        provider.verify(sdk_sample("subscription_canceled", "sub_demo_1", pair=forged))


def test_plus_decoded_to_space_is_rejected_with_an_explanation(provider: BraintreeProvider) -> None:
    # Find a sample whose base64 payload has a '+', then simulate a double URL-decode.
    for n in range(200):
        fields = _fields(sdk_sample("subscription_canceled", f"sub_{n}"))
        if "+" in fields["bt_payload"]:
            break
    else:
        pytest.fail("no sample payload contained '+'")
    request = _form(fields["bt_signature"], fields["bt_payload"].replace("+", " "))
    with pytest.raises(SignatureError, match=r"'\+' was decoded to a space"):
        provider.verify(request)


def test_tampered_payload_is_rejected(provider: BraintreeProvider) -> None:
    fields = _fields(sdk_sample("subscription_canceled", "sub_demo_1"))
    payload = fields["bt_payload"]
    swapped = payload[:40] + ("A" if payload[40] != "A" else "B") + payload[41:]
    with pytest.raises(SignatureError, match="does not match"):
        provider.verify(_form(fields["bt_signature"], swapped))


def test_missing_signature_is_a_signature_error(provider: BraintreeProvider) -> None:
    fields = _fields(sdk_sample("subscription_canceled", "sub_demo_1"))
    del fields["bt_signature"]
    with pytest.raises(SignatureError, match="bt_signature"):
        provider.verify(WebhookRequest(urlencode(fields).encode()))


def test_missing_payload_is_bad_input_not_a_signature_failure(
    provider: BraintreeProvider,
) -> None:
    # Issue 10 item 11: nothing was signed wrongly; the body is not a Braintree webhook.
    fields = _fields(sdk_sample("subscription_canceled", "sub_demo_1"))
    del fields["bt_payload"]
    for call in (provider.verify, provider.parse):
        with pytest.raises(MalformedWebhookError, match="bt_payload"):
            call(WebhookRequest(urlencode(fields).encode()))


def test_non_form_body_is_malformed(provider: BraintreeProvider) -> None:
    with pytest.raises(MalformedWebhookError):
        provider.verify(WebhookRequest('{"kind": "ünïcode"}'.encode()))


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
def test_dtd_is_refused_before_the_sdk_parses(
    provider: BraintreeProvider, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = provider.sign_test_webhook(fixture_xml(name))  # correctly signed
    seen: list[object] = []
    for _, gateway in provider._gateways:
        monkeypatch.setattr(gateway.webhook_notification, "parse", lambda *a: seen.append(a))
    with pytest.raises(MalformedWebhookError, match="DTD"):
        provider.verify(request)
    assert seen == []


def test_oversized_body_is_refused_before_decoding() -> None:
    provider = make_provider(max_body_bytes=4096)
    xml = fixture_xml("account_updater_daily_report.xml").replace(
        b"</notification>", b"<pad>" + b"x" * 8000 + b"</pad></notification>"
    )
    with pytest.raises(MalformedWebhookError, match="4096-byte limit"):
        provider.verify(_signed_unchecked(xml))


def _signed_unchecked(xml: bytes) -> WebhookRequest:
    form = webhooks.sign_payload(
        webhooks.with_timestamp(xml, datetime.now(UTC)), PAIR["public_key"], PAIR["private_key"]
    )
    return WebhookRequest(webhooks.form_body(form))


def test_stale_notification_is_rejected_as_a_replay(provider: BraintreeProvider) -> None:
    xml = fixture_xml("account_updater_daily_report.xml")
    old = provider.sign_test_webhook(xml, timestamp=datetime.now(UTC) - timedelta(hours=27))
    with pytest.raises(SignatureError, match="webhook_tolerance"):
        provider.verify(old)
    provider.verify(
        provider.sign_test_webhook(xml, timestamp=datetime.now(UTC) - timedelta(hours=23))
    )


def test_dedupe_key_is_a_hash_of_bt_payload(provider: BraintreeProvider) -> None:
    request = sdk_sample("subscription_canceled", "sub_demo_1")
    payload = _fields(request)["bt_payload"].encode()
    [event] = provider.parse(request)
    expected = "braintree:" + hashlib.sha256(payload.replace(b"\n", b"")).hexdigest()
    assert event.dedupe_key == expected
    assert make_provider().parse(request)[0].dedupe_key == expected


def test_redelivery_of_the_same_payload_has_the_same_key(provider: BraintreeProvider) -> None:
    request = provider.sign_test_webhook(fixture_xml("account_updater_daily_report.xml"))
    fields = _fields(request)
    rewrapped = _form(fields["bt_signature"], fields["bt_payload"])
    assert provider.parse(request)[0].dedupe_key == provider.parse(rewrapped)[0].dedupe_key


def test_known_payload_with_a_bad_signature_is_still_rejected(provider: BraintreeProvider) -> None:
    request = sdk_sample("subscription_canceled", "sub_demo_1")
    provider.verify(request)  # now cached
    fields = _fields(request)
    bad = fields["bt_signature"][:-1] + ("0" if fields["bt_signature"][-1] != "0" else "1")
    with pytest.raises(SignatureError):
        provider.verify(_form(bad, fields["bt_payload"]))


def test_sign_test_webhook_signs_the_sdk_way(provider: BraintreeProvider) -> None:
    request = provider.sign_test_webhook(fixture_xml("account_updater_daily_report.xml"))
    fields = _fields(request)
    gateway = provider._gateways[0][1]
    notification = gateway.webhook_notification.parse(fields["bt_signature"], fields["bt_payload"])
    assert notification.kind == "account_updater_daily_report"


def test_sign_test_webhook_re_signs_a_form_body(provider: BraintreeProvider) -> None:
    original = sdk_sample("subscription_canceled", "sub_demo_1")
    resigned = provider.sign_test_webhook(original.body)
    [event] = provider.parse(resigned)
    assert event.type == "subscription_canceled"


def test_sample_webhooks_are_signed_with_the_test_pair_when_none_is_configured() -> None:
    requests = make_provider(key_pairs=[]).sample_webhooks()
    assert len(requests) == 3
    test_pair = {"public_key": "recoverkit_test_public", "private_key": "recoverkit_test_private"}
    signed = make_provider(key_pairs=[test_pair])
    for request in requests:
        signed.verify(request)
