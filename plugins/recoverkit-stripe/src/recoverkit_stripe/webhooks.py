"""``Stripe-Signature`` verification and snapshot-event decoding (no network).

Verification goes through the SDK's :meth:`stripe.WebhookSignature.verify_header`, once per
configured endpoint secret (rotation: several secrets are valid at once, and Stripe then sends one
``v1`` signature per secret — the SDK accepts a header when *any* ``v1`` matches). The SDK only
reads ``v1``: a header carrying nothing but a test-mode ``v0`` signature is rejected.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import stripe

from recoverkit.errors import MalformedWebhookError, SignatureError
from recoverkit.provider import ProviderEvent, WebhookRequest, decode_json

__all__ = ["SIGNATURE_HEADER", "parse_events", "sign", "verify_signature"]

SIGNATURE_HEADER = "Stripe-Signature"

# Bound once: the SDK resolves its top-level names lazily, about 1 µs per lookup per webhook.
_verify_header = stripe.WebhookSignature.verify_header


def verify_signature(
    body: bytes,
    header: str | None,
    secrets: Sequence[str],
    tolerance: int,
    *,
    now: float | None = None,
) -> None:
    """Raise :class:`SignatureError` unless ``header`` signs ``body`` with one of ``secrets``.

    The SDK checks the signature; ``tolerance`` (seconds, Stripe's default 300) then bounds the
    signed timestamp both ways around ``now`` (unix seconds, the receipt time; the clock when
    omitted): older is stale, and more than that ahead is refused too, which the SDK's own check
    lets through. A body that is not UTF-8 is :class:`MalformedWebhookError`: Stripe only sends
    JSON text.
    """
    if not header:
        raise SignatureError(f"stripe: the {SIGNATURE_HEADER} header is missing")
    if not secrets:
        raise SignatureError(
            "stripe: no webhook secret configured; set RECOVERKIT_STRIPE_WEBHOOK_SECRETS"
        )
    try:
        payload = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedWebhookError("stripe: the webhook body is not UTF-8") from None
    last: stripe.SignatureVerificationError | None = None
    for secret in secrets:
        try:
            # tolerance=None: the SDK checks the signature only; the age is checked below,
            # against the receipt time and in both directions.
            _verify_header(payload, header, secret, None)
        except stripe.SignatureVerificationError as exc:
            last = exc
            continue
        _check_timestamp(header, tolerance, time.time() if now is None else now)
        return
    # The SDK's message says which check failed (no v1, mismatch, too old); never the secret.
    detail = last.user_message if last is not None else "no secret matched"
    raise SignatureError(
        f"stripe: {SIGNATURE_HEADER} did not verify against any of the {len(secrets)} "
        f"configured secret(s): {detail}"
    )


def _check_timestamp(header: str, tolerance: int, now: float) -> None:
    # Read `t` exactly as the SDK does (the first `t` item), so it is the timestamp it verified.
    items = [item.split("=", 2) for item in header.split(",")]
    signed_at = int(next(item[1] for item in items if item[0] == "t"))
    # No numbers in the messages: a 401 must not tell a caller how our clock is set.
    if signed_at < now - tolerance:
        raise SignatureError(
            f"stripe: the {SIGNATURE_HEADER} timestamp is older than the tolerance; "
            "a replayed webhook needs a fresh signature"
        )
    if signed_at > now + tolerance:
        raise SignatureError(
            f"stripe: the {SIGNATURE_HEADER} timestamp is more than the tolerance in the future"
        )


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """A ``t=…,v1=…`` header for ``body``, built by the SDK's own signer."""
    return str(
        stripe.WebhookSignature.generate_signature_header(
            body.decode("utf-8"),
            secret,
            timestamp=int(time.time()) if timestamp is None else timestamp,
        )
    )


def _decode(body: bytes) -> dict[str, Any]:
    data = decode_json(body, provider="stripe")  # bad UTF-8, bad JSON, deep nesting: malformed
    if not isinstance(data, dict):
        raise MalformedWebhookError("stripe: body is not a JSON object")
    if data.get("object") == "v2.core.event":
        raise MalformedWebhookError(
            "stripe: this is a thin event notification; point a snapshot (classic) event "
            "destination at recoverkit instead"
        )
    if data.get("object") != "event":
        raise MalformedWebhookError(f"stripe: expected an event object, got {data.get('object')!r}")
    return data


def parse_events(request: WebhookRequest) -> list[ProviderEvent]:
    """The one snapshot event in a verified request; the dedupe key is the event id.

    ``ProviderEvent.data`` is the whole Stripe event (not only ``data.object``): translation needs
    its ``created`` time, ``api_version`` and ``data.previous_attributes``.
    """
    data = _decode(request.body)
    event_id, event_type = data.get("id"), data.get("type")
    container = data.get("data")
    obj = container.get("object") if isinstance(container, dict) else None
    if not isinstance(event_id, str) or not event_id:
        raise MalformedWebhookError("stripe: event has no id")
    if not isinstance(event_type, str) or not isinstance(obj, dict):
        raise MalformedWebhookError(f"stripe: event {event_id} has no type or data.object")
    created = data.get("created")
    if not isinstance(created, int):
        raise MalformedWebhookError(f"stripe: event {event_id} has no integer 'created'")
    object_id = obj.get("id")
    return [
        ProviderEvent(
            provider="stripe",
            dedupe_key=event_id,
            type=event_type,
            occurred_at=datetime.fromtimestamp(created, UTC),
            data=data,
            object_id=object_id if isinstance(object_id, str) else None,
        )
    ]
