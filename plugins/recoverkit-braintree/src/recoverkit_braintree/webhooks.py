"""Braintree webhooks: form decoding, hostile-XML guards, signature checks through the SDK, signing.

A Braintree webhook is a form-encoded POST with ``bt_signature`` and ``bt_payload``. The payload
is base64 text (a newline every 76 characters) of an XML ``<notification>``; the signature is
``public_key|hex(HMAC-SHA1(key=SHA1(private_key), msg=bt_payload))``, several pairs joined by
``&``. Verification and parsing go through the SDK's ``webhook_notification.parse``; this module
adds what the SDK lacks: a size limit, a DTD refusal before the SDK's XML parser runs, clear
messages, key rotation, and a replay window on the signed timestamp.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus, urlencode

from braintree.exceptions.invalid_signature_error import InvalidSignatureError
from braintree.util.crypto import Crypto
from braintree.util.xml_util import XmlUtil
from braintree.webhook_notification import WebhookNotification

from recoverkit.errors import MalformedWebhookError, SignatureError

__all__ = [
    "FORM_CONTENT_TYPE",
    "SignedForm",
    "build_notification",
    "check_attributes",
    "check_fresh",
    "check_size",
    "decode_notification_xml",
    "dedupe_key",
    "form_body",
    "notification_attributes",
    "read_form",
    "sign_payload",
    "signature_public_keys",
    "unverified_notification_xml",
    "verify_with_sdk",
    "with_timestamp",
]

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

_BASE64_TEXT = re.compile(rb"[^A-Za-z0-9+=/\n]")
# A DTD is how entity expansion and external entities get in; Braintree never sends one.
_DTD = re.compile(rb"<!(?:DOCTYPE|ENTITY|ELEMENT|ATTLIST)", re.IGNORECASE)
_FIELDS = frozenset({"bt_signature", "bt_payload"})
#: The only characters of base64 text (and of ``public_key|hex``) a form encoder escapes.
_BASE64_ESCAPES = tuple((f"%{ord(c):02{case}}", c) for c in "\n+/=|" for case in ("X", "x"))
_TIMESTAMP = re.compile(rb"<timestamp([^>]*)>[^<]*</timestamp>")


@dataclass(frozen=True, slots=True)
class SignedForm:
    """The two form fields of a Braintree webhook, as received (payload still base64 text)."""

    signature: str
    payload: bytes


def read_form(body: bytes, *, max_bytes: int, need_signature: bool = True) -> SignedForm:
    """Decode the form body; refuse oversized bodies and bodies without the fields.

    Raises :class:`MalformedWebhookError` for a body that is too large, not a form, or without
    ``bt_payload``, and :class:`SignatureError` when ``bt_signature`` is missing and
    ``need_signature`` (verification) asks for it.
    """
    check_size(body, max_bytes)
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise MalformedWebhookError(
            "braintree: webhook body is not an ASCII form (expected "
            "application/x-www-form-urlencoded with bt_signature and bt_payload)"
        ) from None
    fields: dict[str, str] = {}
    for part in text.split("&", 8):  # a handful of fields at most; the rest is ignored
        name, _, value = part.partition("=")
        if name in _FIELDS and name not in fields:
            fields[name] = _form_value(value)
    signature = fields.get("bt_signature", "")
    payload = fields.get("bt_payload")
    if not payload:
        raise MalformedWebhookError(
            "braintree: webhook form lacks bt_payload; Braintree posts bt_signature and "
            "bt_payload (application/x-www-form-urlencoded)"
        )
    if need_signature and not signature:
        raise SignatureError(
            "braintree: webhook form lacks bt_signature; Braintree signs every notification"
        )
    try:
        return SignedForm(signature=signature, payload=payload.encode("ascii"))
    except UnicodeEncodeError:  # a percent-escape decoded to a non-ASCII character
        raise MalformedWebhookError("braintree: bt_payload is not base64 text") from None


def check_size(body: bytes, max_bytes: int) -> None:
    """Refuse a body over ``max_bytes`` before anything decodes it."""
    if len(body) > max_bytes:
        raise MalformedWebhookError(
            f"braintree: webhook body is {len(body)} bytes, over the {max_bytes}-byte limit "
            "(setting max_body_bytes); refused before decoding"
        )


def unverified_notification_xml(body: bytes, *, max_bytes: int) -> tuple[bytes, bytes]:
    """``(bt_payload, XML)`` from a body whose signature is not checked (``--no-verify``).

    Accepts the form body Braintree posts (``bt_signature`` may be absent) and a bare
    ``<notification>`` XML document such as the bundled samples; the XML's ``bt_payload`` is its
    base64 text as Braintree would encode it, so dedupe keys match the signed form. Anything
    else is :class:`MalformedWebhookError`.
    """
    check_size(body, max_bytes)
    stripped = body.lstrip(b"\xef\xbb\xbf \t\r\n")
    if stripped.startswith(b"<"):
        if _DTD.search(stripped):
            raise MalformedWebhookError(
                "braintree: notification XML carries a DTD (DOCTYPE/ENTITY); Braintree never "
                "sends one, so it is refused before parsing"
            )
        return base64.encodebytes(stripped), stripped
    if b"bt_payload=" not in body and b"bt_signature=" not in body:
        raise MalformedWebhookError(
            "braintree: body is neither a Braintree webhook form (bt_signature, bt_payload) nor "
            "a <notification> XML document"
        )
    form = read_form(body, max_bytes=max_bytes, need_signature=False)
    if b" " in form.payload or _BASE64_TEXT.search(form.payload):
        raise MalformedWebhookError("braintree: bt_payload is not base64 text")
    return form.payload, decode_notification_xml(form.payload)


def _form_value(value: str) -> str:
    """URL-decode one form value; a fast path for the escapes base64 text needs."""
    if "%" not in value and "+" not in value:
        return value
    quick = value.replace("+", " ")
    for escape, char in _BASE64_ESCAPES:
        quick = quick.replace(escape, char)
    # Anything else percent-encoded goes through the general decoder.
    return quick if "%" not in quick else unquote_plus(value)


def check_payload_text(payload: bytes) -> None:
    """Refuse payload text the SDK would reject, with a message that says why."""
    if b" " in payload:
        raise SignatureError(
            "braintree: bt_payload contains spaces; base64 has no spaces, so a '+' was decoded "
            "to a space (the form was URL-decoded twice, or '+' was not percent-encoded). "
            "Pass the raw request body to recoverkit."
        )
    if _BASE64_TEXT.search(payload):
        raise SignatureError("braintree: bt_payload is not base64 text; it was altered in transit")


def signature_public_keys(signature: str) -> list[str]:
    """The public keys named in ``bt_signature`` (``pk|sig&pk2|sig2``)."""
    return [pair.split("|", 1)[0] for pair in signature.split("&") if "|" in pair]


def decode_notification_xml(payload: bytes) -> bytes:
    """Base64-decode ``bt_payload`` and refuse any DTD before an XML parser sees it.

    The payload's size is already bounded by ``read_form``'s limit, so decoding here is cheap;
    refusing a DTD closes entity expansion and external entities whatever the XML parser does.
    """
    try:
        xml = base64.decodebytes(payload)
    except binascii.Error as exc:
        raise MalformedWebhookError(f"braintree: bt_payload is not valid base64: {exc}") from None
    if _DTD.search(xml):
        raise MalformedWebhookError(
            "braintree: notification XML carries a DTD (DOCTYPE/ENTITY); Braintree never sends "
            "one, so it is refused before parsing"
        )
    return xml


def notification_attributes(xml: bytes) -> dict[str, Any]:
    """The ``<notification>`` element as the SDK's attribute dict (hyphens → underscores)."""
    try:
        parsed: Any = XmlUtil.dict_from_xml(xml)
    except Exception as exc:  # expat errors, bad UTF-8, bad dates, RecursionError on deep nesting
        raise MalformedWebhookError(
            f"braintree: notification is not valid XML ({type(exc).__name__})"
        ) from None
    notification = parsed.get("notification") if isinstance(parsed, dict) else None
    if not isinstance(notification, dict):
        raise MalformedWebhookError("braintree: payload is not a <notification> with a <kind>")
    check_attributes(notification)
    return notification


def check_attributes(notification: dict[str, Any]) -> None:
    """Refuse a notification the SDK's ``WebhookNotification`` would trip over."""
    kind = notification.get("kind")
    if not isinstance(kind, str) or not kind.strip():
        raise MalformedWebhookError("braintree: notification has no <kind>")
    subject = notification.get("subject")
    if not isinstance(subject, dict) or not subject:
        raise MalformedWebhookError(f"braintree: {kind} notification has an empty <subject>")
    stamp = notification.get("timestamp")
    if stamp is not None and not isinstance(stamp, datetime):
        raise MalformedWebhookError(
            f"braintree: {kind} notification's <timestamp> is not a datetime"
        )


def build_notification(gateway: Any, attributes: dict[str, Any]) -> Any:
    """The SDK's ``WebhookNotification`` for checked attributes; bad shapes are malformed."""
    check_attributes(attributes)
    try:
        return WebhookNotification(gateway, attributes)
    except (AttributeError, TypeError, KeyError, ValueError, RecursionError) as exc:
        raise MalformedWebhookError(
            f"braintree: {attributes.get('kind')} notification's <subject> has an unexpected "
            f"shape ({type(exc).__name__})"
        ) from None


def verify_with_sdk(form: SignedForm, gateways: Sequence[tuple[str, Any]]) -> Any:
    """Verify and parse through ``gateway.webhook_notification.parse`` with every matching key pair.

    ``gateways`` pairs each configured public key with a ``BraintreeGateway`` holding that pair.
    Returns the SDK's ``WebhookNotification``; raises :class:`SignatureError` naming the cause.
    """
    check_payload_text(form.payload)
    named = signature_public_keys(form.signature)
    candidates = [gateway for public_key, gateway in gateways if public_key in named]
    if not candidates:
        configured = ", ".join(pk for pk, _ in gateways) or "none"
        raise SignatureError(
            f"braintree: bt_signature is for public key(s) {', '.join(named) or 'none'}, but the "
            f"configured key pairs are for {configured}; add the pair to key_pairs or check the "
            "webhook's merchant account"
        )
    decode_notification_xml(form.payload)  # refuse a DTD before the SDK's parser sees it
    for gateway in candidates:
        try:
            notification = gateway.webhook_notification.parse(form.signature, form.payload)
        except InvalidSignatureError:
            continue
        except Exception as exc:
            # The SDK checks the signature before it decodes: this payload is authentic but
            # not a notification it can read (bad UTF-8, deep nesting, an empty subject, ...).
            raise MalformedWebhookError(
                f"braintree: signed notification cannot be read ({type(exc).__name__}); "
                "it is not a Braintree notification"
            ) from None
        check_attributes(
            {name: getattr(notification, name, None) for name in ("kind", "subject", "timestamp")}
        )
        return notification
    raise SignatureError(
        "braintree: bt_signature does not match bt_payload for any configured key pair; the "
        "payload was modified or signed with another private key"
    )


def dedupe_key(payload: bytes) -> str:
    """Braintree sends no notification id: the key is a hash of ``bt_payload`` (newlines dropped).

    Newlines are dropped so a payload re-wrapped by a proxy still deduplicates.
    """
    return "braintree:" + hashlib.sha256(payload.replace(b"\n", b"")).hexdigest()


def sign_payload(xml: bytes, public_key: str, private_key: str) -> SignedForm:
    """Encode and sign notification XML exactly as the SDK's ``WebhookTesting`` does."""
    payload = base64.encodebytes(xml)
    digest = Crypto.sha1_hmac_hash(private_key, payload)
    return SignedForm(signature=f"{public_key}|{digest}", payload=payload)


def form_body(form: SignedForm) -> bytes:
    """The form-encoded body Braintree posts (``+`` percent-encoded, as a browser would)."""
    return urlencode({"bt_signature": form.signature, "bt_payload": form.payload}).encode("ascii")


def with_timestamp(xml: bytes, timestamp: datetime) -> bytes:
    """``xml`` with its ``<timestamp>`` set to ``timestamp`` (UTC, whole seconds)."""
    stamp = timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ").encode("ascii")
    replaced, count = _TIMESTAMP.subn(
        lambda m: b"<timestamp" + m.group(1) + b">" + stamp + b"</timestamp>", xml, count=1
    )
    if count == 0:
        raise ValueError("notification XML has no <timestamp> element")
    return replaced


def check_fresh(
    occurred_at: datetime,
    received_at: datetime,
    tolerance: timedelta,
    max_skew: timedelta = timedelta(minutes=5),
) -> None:
    """Refuse a notification whose signed timestamp is older than ``tolerance`` (a replay) or
    more than ``max_skew`` ahead of ``received_at`` (no genuine notification is from the future).
    """
    age = received_at - occurred_at
    if age > tolerance:
        raise SignatureError(
            f"braintree: notification timestamp {occurred_at.isoformat()} is {age} old, over "
            f"the webhook_tolerance of {tolerance}; a replay, or redelivered past Braintree's "
            "24-hour retry window"
        )
    if -age > max_skew:
        raise SignatureError(
            f"braintree: notification timestamp {occurred_at.isoformat()} is {-age} ahead of "
            f"this server's clock, over the webhook_max_clock_skew of {max_skew}; refused (check "
            "the server's clock if this is a genuine Braintree notification)"
        )
