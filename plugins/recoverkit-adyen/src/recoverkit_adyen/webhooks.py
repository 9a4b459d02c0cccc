"""Adyen webhooks: HMAC verification, decoding into events, signing test requests.

Two families arrive at the same URL:

- **Standard notifications** ``{"live": "false", "notificationItems": [{"NotificationRequestItem":
  {…}}]}``. Each item carries its own signature in ``additionalData.hmacSignature``: base64
  HMAC-SHA256, under the hex-decoded key, of eight item fields joined by ``:`` (no escaping).
  ``Adyen.util.is_valid_hmac_notification`` checks only the first item and returns ``None`` when
  ``additionalData`` is missing, so every item is checked here instead.
- **Header-signed webhooks** (tokenization ``recurring.token.*`` and other families): the
  ``HmacSignature`` header is the base64 HMAC-SHA256 of the raw body.

A request with any item that fails verification is refused whole (nothing is stored), per the
project rule. Adyen's signature covers no timestamp, so there is no staleness check: Adyen
redelivers the same signed item for up to 30 days.

Only eight fields of a standard item are signed (:data:`SIGNED_FIELDS`). Everything else —
``additionalData``, ``eventDate``, ``reason`` — may have been changed after signing, so it is
decoded defensively: the body must be UTF-8 JSON nesting at most :data:`MAX_JSON_DEPTH` levels,
and an ``eventDate`` later than the request's receipt is clamped to the receipt time before it
orders anything. Typed webhooks the plugin does not handle (Management, Balance Platform …) are
still decoded into events, so that ``translate`` ignores them with a reason instead of refusing
them as malformed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from recoverkit.errors import MalformedWebhookError, SignatureError
from recoverkit.provider import MAX_JSON_DEPTH, ProviderEvent, WebhookRequest, decode_json

__all__ = [
    "HEADER",
    "MAX_JSON_DEPTH",
    "SIGNED_FIELDS",
    "check_basic_auth",
    "decode_body",
    "dedupe_key",
    "notification_items",
    "parse_request",
    "sign_body",
    "sign_item",
    "signing_string",
    "verify_request",
]

PROVIDER: Final = "adyen"
#: The header that carries the signature of header-signed webhook families.
HEADER: Final = "HmacSignature"
#: The item fields signed by a standard notification's HMAC, in order.
SIGNED_FIELDS: Final = (
    "pspReference",
    "originalReference",
    "merchantAccountCode",
    "merchantReference",
    "value",
    "currency",
    "eventCode",
    "success",
)


#: Longest event type and dedupe key stored (the inbox columns' sizes); longer is malformed.
_MAX_TYPE: Final = 128
_MAX_KEY: Final = 255
#: Typed-webhook ``data`` keys that name the object an event is about, in order of preference.
_OBJECT_KEYS: Final = ("storedPaymentMethodId", "pspReference", "id", "merchantId")


def _text(value: Any) -> str:
    # Adyen sends every signed field as a string except amount.value (an int). A missing or null
    # field is signed as "" (the SDK would sign a JSON null as "None"; Adyen never sends one).
    if value.__class__ is str:
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def signing_string(item: Mapping[str, Any]) -> str:
    """The string a standard notification item's HMAC is computed over."""
    get = item.get
    amount = get("amount")
    if amount.__class__ is not dict:
        amount = {}
    return (
        f"{_text(get('pspReference'))}:{_text(get('originalReference'))}:"
        f"{_text(get('merchantAccountCode'))}:{_text(get('merchantReference'))}:"
        f"{_text(amount.get('value'))}:{_text(amount.get('currency'))}:"
        f"{_text(get('eventCode'))}:{_text(get('success'))}"
    )


def _digest(key: bytes, message: bytes) -> bytes:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest())


def decode_keys(hex_keys: Iterable[str]) -> tuple[bytes, ...]:
    """Hex HMAC keys as bytes (settings already validated them)."""
    return tuple(binascii.a2b_hex(key) for key in hex_keys)


def _matches(keys: Sequence[bytes], message: bytes, signature: str) -> bool:
    given = signature.encode("ascii", "replace")
    if len(keys) == 1:
        return hmac.compare_digest(_digest(keys[0], message), given)
    ok = False
    for key in keys:  # no early exit: the time taken does not say which key matched
        ok |= hmac.compare_digest(_digest(key, message), given)
    return ok


def notification_items(body: Any) -> list[dict[str, Any]]:
    """The ``NotificationRequestItem`` objects of a standard notification body."""
    if not isinstance(body, dict) or "notificationItems" not in body:
        raise MalformedWebhookError("adyen: body has no notificationItems")
    wrappers = body["notificationItems"]
    if not isinstance(wrappers, list) or not wrappers:
        raise MalformedWebhookError("adyen: notificationItems is empty or not a list")
    items: list[dict[str, Any]] = []
    for index, wrapper in enumerate(wrappers):
        item = wrapper.get("NotificationRequestItem") if isinstance(wrapper, dict) else None
        if not isinstance(item, dict):
            raise MalformedWebhookError(
                f"adyen: notificationItems[{index}] has no NotificationRequestItem object"
            )
        items.append(item)
    return items


def decode_body(body: bytes) -> Any:
    """The body as JSON; :class:`MalformedWebhookError` unless UTF-8 and ``MAX_JSON_DEPTH`` deep.

    The core's :func:`recoverkit.provider.decode_json`: a ``RecursionError`` never escapes.
    """
    return decode_json(body, provider=PROVIDER)


def _decode(request: WebhookRequest) -> Any:
    return decode_body(request.body)


def check_basic_auth(request: WebhookRequest, username: str, password: str) -> None:
    """Raise :class:`SignatureError` unless ``Authorization`` carries these basic credentials.

    Both parts are compared in constant time, with no early exit; the error never says which
    part was wrong or what is configured.
    """
    header = request.header("Authorization") or ""
    scheme, _, encoded = header.strip().partition(" ")
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        given = b""
    user, sep, secret = given.partition(b":")
    ok = hmac.compare_digest(user, username.encode("utf-8"))
    ok &= hmac.compare_digest(secret, password.encode("utf-8"))
    if not (ok and sep and scheme.lower() == "basic"):
        raise SignatureError(
            "adyen: HTTP basic auth of the webhook endpoint is missing or wrong (the "
            "Authorization header must carry the credentials set in the Customer Area)"
        )


def verify_request(request: WebhookRequest, keys: Sequence[bytes]) -> Any:
    """Raise :class:`SignatureError` unless every item (or the raw body) is signed by a key.

    Returns the decoded body of a standard notification (None for header-signed requests) so
    ``parse`` need not decode it again.
    """
    header = request.header(HEADER)
    if header is not None:
        if not _matches(keys, request.body, header.strip()):
            raise SignatureError(
                f"adyen: the {HEADER} header does not match the body under any configured HMAC "
                "key (check RECOVERKIT_ADYEN_WEBHOOK_SECRETS holds this endpoint's key)"
            )
        return None
    body = _decode(request)
    if not (isinstance(body, dict) and "notificationItems" in body):
        raise SignatureError(
            f"adyen: request carries no {HEADER} header and is not a standard notification "
            "with signed items: enable HMAC signing on the webhook endpoint"
        )
    for index, item in enumerate(notification_items(body)):
        ref = item.get("pspReference")
        ref = ref[:64] if isinstance(ref, str) else None
        additional = item.get("additionalData")
        signature = additional.get("hmacSignature") if isinstance(additional, dict) else None
        if not isinstance(signature, str) or not signature:
            raise SignatureError(
                f"adyen: notificationItems[{index}] (pspReference {ref!r}) carries no "
                "additionalData.hmacSignature: enable HMAC signing on the webhook endpoint"
            )
        if not _matches(keys, signing_string(item).encode("utf-8"), signature):
            raise SignatureError(
                f"adyen: notificationItems[{index}] (pspReference {ref!r}) has a wrong HMAC "
                "signature under every configured key; the whole request is refused"
            )
    return body


def dedupe_key(item: Mapping[str, Any]) -> str:
    """``pspReference:eventCode:success`` — a failure and a later success differ by ``success``."""
    return (
        f"{_text(item.get('pspReference'))}:{_text(item.get('eventCode'))}:"
        + _text(item.get("success")).lower()
    )


def typed_dedupe_key(object_id: str | None, event_type: str, event_id: str) -> str:
    """``<object>:<type>:<eventId>`` — led by the object (the token) like the standard keys.

    Keys of one stored payment method sort and group together, as ``pspReference`` keys do.
    Without an object the type leads.
    """
    return f"{object_id or event_type}:{event_type}:{event_id}"


def _event(
    event_type: str, key: str, occurred_at: datetime, data: Any, object_id: str | None
) -> ProviderEvent:
    if len(event_type) > _MAX_TYPE or len(key) > _MAX_KEY:
        raise MalformedWebhookError(
            f"adyen: event type or key longer than {_MAX_TYPE}/{_MAX_KEY} characters "
            f"({event_type[:40]!r}…); Adyen's are far shorter"
        )
    return ProviderEvent(
        provider=PROVIDER,
        dedupe_key=key,
        type=event_type,
        occurred_at=occurred_at,
        data=data,
        object_id=object_id,
    )


def _timestamp(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise MalformedWebhookError(f"adyen: {what} is missing")
    try:
        parsed = datetime.fromisoformat(value)  # accepts "Z" since Python 3.11
    except ValueError:
        raise MalformedWebhookError(f"adyen: {what} {value[:40]!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        raise MalformedWebhookError(f"adyen: {what} {value[:40]!r} has no UTC offset")
    return parsed


def _not_after(moment: datetime, received_at: datetime) -> datetime:
    """``eventDate`` is not signed: a time after the request's receipt is clamped to it."""
    return received_at if moment > received_at else moment


def _typed_event(request: WebhookRequest, body: dict[str, Any]) -> ProviderEvent:
    kind: str = body["type"]
    data = body.get("data")
    data = data if data.__class__ is dict else {}
    object_id = next((v for k in _OBJECT_KEYS if isinstance(v := data.get(k), str) and v), None)
    event_id = body.get("eventId")
    created = body.get("createdAt")
    if kind.startswith("recurring.token."):  # handled: its facts must be there
        if not isinstance(event_id, str) or not event_id:
            raise MalformedWebhookError(f"adyen: {kind[:60]} webhook has no eventId")
        occurred = _timestamp(created, f"{kind} createdAt")
    else:
        # Not an event this plugin uses (Management, Balance Platform …): stored and ignored
        # with a reason by translate, never refused for lacking what only handled types need.
        if not isinstance(event_id, str) or not event_id:
            event_id = "sha256-" + hashlib.sha256(request.body).hexdigest()[:32]
        try:
            occurred = _timestamp(created, f"{kind} createdAt")
        except MalformedWebhookError:
            occurred = request.received_at
    return _event(
        kind,
        typed_dedupe_key(object_id, kind, event_id),
        _not_after(occurred, request.received_at),
        body,
        object_id,
    )


def parse_request(request: WebhookRequest, decoded: Any = None) -> list[ProviderEvent]:
    """One event per notification item, or one for a typed (header-signed) webhook.

    ``decoded`` is the body as ``verify_request`` returned it, when available.
    """
    body = decoded if decoded is not None else _decode(request)
    if isinstance(body, dict) and "notificationItems" in body:
        events = []
        received_at = request.received_at
        for item in notification_items(body):
            for required in ("pspReference", "eventCode", "eventDate"):
                value = item.get(required)
                if value.__class__ is not str or not value:
                    raise MalformedWebhookError(f"adyen: a notification item has no {required}")
            events.append(
                _event(
                    item["eventCode"],
                    dedupe_key(item),
                    _not_after(_timestamp(item["eventDate"], "eventDate"), received_at),
                    item,
                    item["pspReference"],
                )
            )
        return events
    if isinstance(body, dict) and isinstance(body.get("type"), str) and body["type"].strip():
        return [_typed_event(request, body)]
    raise MalformedWebhookError(
        "adyen: body is neither a standard notification (notificationItems) nor a typed webhook"
    )


def sign_item(item: dict[str, Any], key: bytes) -> None:
    """Set ``additionalData.hmacSignature`` of a standard notification item, in place."""
    signature = _digest(key, signing_string(item).encode("utf-8")).decode("ascii")
    additional = item.setdefault("additionalData", {})
    additional["hmacSignature"] = signature


def sign_body(body: bytes, key: bytes) -> WebhookRequest:
    """A request as Adyen would send ``body``: items signed in place, or an ``HmacSignature``."""
    headers = {"content-type": "application/json"}
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        decoded = None
    if isinstance(decoded, dict) and "notificationItems" in decoded:
        try:
            items = notification_items(decoded)
        except MalformedWebhookError:
            items = []  # not a usable standard notification: signed as raw bytes below
        for item in items:
            sign_item(item, key)
        if items:
            return WebhookRequest(json.dumps(decoded).encode("utf-8"), headers)
    headers[HEADER] = _digest(key, body).decode("ascii")
    return WebhookRequest(body, headers)
