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
from recoverkit.provider import ProviderEvent, WebhookRequest

__all__ = [
    "HEADER",
    "SIGNED_FIELDS",
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


def _decode(request: WebhookRequest) -> Any:
    try:
        return json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedWebhookError(f"adyen: body is not valid JSON: {exc}") from None


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


def _timestamp(value: Any, what: str) -> datetime:
    if not isinstance(value, str):
        raise MalformedWebhookError(f"adyen: {what} is missing")
    try:
        parsed = datetime.fromisoformat(value)  # accepts "Z" since Python 3.11
    except ValueError:
        raise MalformedWebhookError(f"adyen: {what} {value!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        raise MalformedWebhookError(f"adyen: {what} {value!r} has no UTC offset")
    return parsed


def parse_request(request: WebhookRequest, decoded: Any = None) -> list[ProviderEvent]:
    """One event per notification item, or one for a tokenization webhook.

    ``decoded`` is the body as ``verify_request`` returned it, when available.
    """
    body = decoded if decoded is not None else _decode(request)
    if isinstance(body, dict) and "notificationItems" in body:
        events = []
        for item in notification_items(body):
            for required in ("pspReference", "eventCode", "eventDate"):
                if not isinstance(item.get(required), str) or not item[required]:
                    raise MalformedWebhookError(f"adyen: a notification item has no {required}")
            events.append(
                ProviderEvent(
                    provider=PROVIDER,
                    dedupe_key=dedupe_key(item),
                    type=item["eventCode"],
                    occurred_at=_timestamp(item["eventDate"], "eventDate"),
                    data=item,
                    object_id=item["pspReference"],
                )
            )
        return events
    if isinstance(body, dict) and isinstance(body.get("type"), str):
        event_id = body.get("eventId")
        if not isinstance(event_id, str) or not event_id:
            raise MalformedWebhookError(f"adyen: {body['type']} webhook has no eventId")
        data = body.get("data")
        object_id = data.get("storedPaymentMethodId") if isinstance(data, dict) else None
        return [
            ProviderEvent(
                provider=PROVIDER,
                dedupe_key=f"{body['type']}:{event_id}",
                type=body["type"],
                occurred_at=_timestamp(body.get("createdAt"), f"{body['type']} createdAt"),
                data=body,
                object_id=object_id if isinstance(object_id, str) else None,
            )
        ]
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
    except (ValueError, UnicodeDecodeError):
        decoded = None
    if isinstance(decoded, dict) and "notificationItems" in decoded:
        for item in notification_items(decoded):
            sign_item(item, key)
        return WebhookRequest(json.dumps(decoded).encode("utf-8"), headers)
    headers[HEADER] = _digest(key, body).decode("ascii")
    return WebhookRequest(body, headers)
