"""Signature verification (through the SDK), parsing and settings."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import UTC, datetime, timedelta

import pytest
import stripe
from pydantic import ValidationError
from recoverkit_stripe import StripeProvider, StripeSettings
from recoverkit_stripe.provider import TEST_WEBHOOK_SECRET

from recoverkit.errors import MalformedWebhookError, SignatureError
from recoverkit.provider import EndOfDunningPolicy, WebhookRequest

from .conftest import OTHER_SECRET, SECRET, body, make_provider


def _v1(payload: bytes, secret: str, ts: int) -> str:
    return hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()


def test_header_signed_by_the_sdk_verifies() -> None:
    payload = body("invoice.payment_failed.basil")
    header = stripe.WebhookSignature.generate_signature_header(payload.decode(), SECRET)
    make_provider(SECRET).verify(WebhookRequest(payload, {"Stripe-Signature": header}))


def test_any_of_several_configured_secrets_verifies() -> None:
    payload = body("invoice.payment_failed.basil")
    header = stripe.WebhookSignature.generate_signature_header(payload.decode(), OTHER_SECRET)
    make_provider(SECRET, OTHER_SECRET).verify(
        WebhookRequest(payload, {"stripe-signature": header})
    )
    with pytest.raises(SignatureError, match="1 configured secret"):
        make_provider(SECRET).verify(WebhookRequest(payload, {"stripe-signature": header}))


def test_header_with_one_v1_per_rolled_secret_verifies_with_either() -> None:
    payload, ts = body("invoice.payment_failed.basil"), int(time.time())
    header = f"t={ts},v1={_v1(payload, 'whsec_old', ts)},v1={_v1(payload, 'whsec_new', ts)}"
    for secret in ("whsec_old", "whsec_new"):
        make_provider(secret).verify(WebhookRequest(payload, {"Stripe-Signature": header}))


def test_v0_signature_alone_is_rejected_even_when_it_matches() -> None:
    payload, ts = body("invoice.payment_failed.basil"), int(time.time())
    header = f"t={ts},v0={_v1(payload, SECRET, ts)}"
    with pytest.raises(SignatureError, match="v1"):
        make_provider(SECRET).verify(WebhookRequest(payload, {"Stripe-Signature": header}))


def test_v0_beside_a_valid_v1_does_not_matter() -> None:
    payload, ts = body("invoice.payment_failed.basil"), int(time.time())
    header = f"t={ts},v1={_v1(payload, SECRET, ts)},v0=deadbeef"
    make_provider(SECRET).verify(WebhookRequest(payload, {"Stripe-Signature": header}))


def test_tolerance_setting_bounds_the_timestamp_age() -> None:
    payload = body("invoice.payment_failed.basil")
    ts = int(time.time()) - 400
    request = WebhookRequest(payload, {"Stripe-Signature": f"t={ts},v1={_v1(payload, SECRET, ts)}"})
    with pytest.raises(SignatureError, match=r"tolerance|older|Timestamp"):
        make_provider(SECRET).verify(request)  # default 300 s
    make_provider(SECRET, webhook_tolerance=600).verify(request)


@pytest.mark.parametrize(
    ("ahead", "tolerance", "accepted"),
    [
        (240, 300, True),  # clock skew within the tolerance
        (360, 300, False),  # beyond it: refused like a stale one
        (3600 * 24 * 365 * 10, 300, False),  # ten years ahead
        (360, 600, True),  # the same setting bounds both ways
    ],
)
def test_a_timestamp_from_the_future_is_refused_beyond_the_tolerance(
    ahead: int, tolerance: int, accepted: bool
) -> None:
    payload = body("invoice.payment_failed.basil")
    received = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    ts = int(received.timestamp()) + ahead
    request = WebhookRequest(
        payload, {"Stripe-Signature": f"t={ts},v1={_v1(payload, SECRET, ts)}"}, received
    )
    provider = make_provider(SECRET, webhook_tolerance=tolerance)
    if accepted:
        provider.verify(request)
    else:
        with pytest.raises(SignatureError, match="in the future") as refused:
            provider.verify(request)
        assert str(ts) not in str(refused.value)  # the message does not echo our clock
        assert str(ahead) not in str(refused.value)


def test_a_future_timestamp_is_judged_against_the_receipt_time() -> None:
    # Verification on replay uses when the webhook arrived, not when it is looked at again.
    payload = body("invoice.payment_failed.basil")
    now = datetime.now(UTC)
    ts = int(now.timestamp()) + 30
    header = {"Stripe-Signature": f"t={ts},v1={_v1(payload, SECRET, ts)}"}
    make_provider(SECRET).verify(WebhookRequest(payload, header, now))
    with pytest.raises(SignatureError, match="in the future"):
        make_provider(SECRET).verify(WebhookRequest(payload, header, now - timedelta(hours=1)))


def test_a_body_that_is_not_utf8_is_malformed_not_a_bad_signature() -> None:
    request = make_provider(SECRET).sign_test_webhook(b'{"id": "evt_1"}')
    broken = WebhookRequest(b'{"id": "\xff"}', dict(request.headers))
    with pytest.raises(MalformedWebhookError, match="UTF-8"):
        make_provider(SECRET).verify(broken)


def test_missing_header_and_missing_secret_are_signature_errors() -> None:
    payload = body("invoice.payment_failed.basil")
    with pytest.raises(SignatureError, match="missing"):
        make_provider(SECRET).verify(WebhookRequest(payload, {}))
    provider = StripeProvider(StripeSettings())
    signed = make_provider(SECRET).sign_test_webhook(payload)
    with pytest.raises(SignatureError, match="no webhook secret"):
        provider.verify(signed)


def test_sign_test_webhook_without_secrets_uses_the_documented_demo_secret() -> None:
    request = StripeProvider(StripeSettings()).sign_test_webhook(b'{"a":1}')
    make_provider(TEST_WEBHOOK_SECRET).verify(request)


def test_sign_test_webhook_honours_the_timestamp() -> None:
    old = datetime.now(UTC) - timedelta(minutes=10)
    request = make_provider(SECRET).sign_test_webhook(b'{"a":1}', timestamp=old)
    assert request.header(
        "Stripe-Signature",
    ).startswith(f"t={int(old.timestamp())},v1=")
    with pytest.raises(SignatureError):
        make_provider(SECRET).verify(request)


def test_dedupe_key_is_the_event_id() -> None:
    provider = make_provider(SECRET)
    (event,) = provider.parse(provider.sign_test_webhook(body("invoice.payment_failed.legacy")))
    assert event.dedupe_key == "evt_RKlegacy_ipf"
    assert event.type == "invoice.payment_failed"
    assert event.object_id == "in_RKdemo01"
    assert event.occurred_at == datetime.fromtimestamp(1764550805, UTC)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"not json", "not valid JSON"),
        (b"[]", "not a JSON object"),
        (b'{"object": "v2.core.event", "id": "evt_1"}', "thin event"),
        (b'{"object": "invoice", "id": "in_1"}', "expected an event"),
        (b'{"object": "event", "type": "x", "data": {"object": {}}, "created": 1}', "no id"),
    ],
)
def test_undecodable_bodies_are_malformed(payload: bytes, match: str) -> None:
    with pytest.raises(MalformedWebhookError, match=match):
        make_provider(SECRET).parse(WebhookRequest(payload, {}))


def test_secrets_come_comma_separated_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERKIT_STRIPE_WEBHOOK_SECRETS", "whsec_new, whsec_old")
    monkeypatch.setenv("RECOVERKIT_STRIPE_API_BASE", "http://127.0.0.1:8420")
    monkeypatch.setenv("RECOVERKIT_STRIPE_END_OF_DUNNING_POLICY", "void")
    settings = StripeSettings()
    assert [s.get_secret_value() for s in settings.webhook_secrets] == ["whsec_new", "whsec_old"]
    assert settings.api_base == "http://127.0.0.1:8420"
    assert settings.end_of_dunning_policy is EndOfDunningPolicy.VOID
    assert settings.webhook_tolerance == 300
    assert settings.api_version == stripe.api_version
    assert "whsec_new" not in repr(settings)


def test_disable_token_policy_is_refused_for_stripe() -> None:
    with pytest.raises(ValidationError, match="not disable_token"):
        StripeSettings(end_of_dunning_policy=EndOfDunningPolicy.DISABLE_TOKEN)


def test_client_uses_the_configured_base_url_and_pinned_version() -> None:
    provider = make_provider(SECRET, api_base="http://127.0.0.1:9", api_version="2024-06-20")
    client = provider.client
    requestor = client._requestor  # the SDK keeps its options here
    assert requestor.base_addresses["api"] == "http://127.0.0.1:9"
    assert requestor._options.stripe_version == "2024-06-20"
