"""Butter webhook signatures: verify what Recover sends, sign what the sandbox and tests send.

The scheme (``research/butter-recover-api.md`` §9, decisions in ``docs/RECOVER_API.md``):

- ``X-Butter-Webhook-Signature`` is HMAC-SHA256, lower-case hex, keyed with the signing secret
  Butter shares, over ``<json payload> + "+" + <expiry>``;
- the expiry travels in ``X-Butter-Webhook-Expiration`` (newer pages) or
  ``X-Butter-Webhook-Expires`` (older pages): both are accepted, ``-Expiration`` is sent;
- "json payload" is the raw body in the newer docs and a compact re-serialisation of the parsed
  body in the older ones. We check the raw bytes first and, when the ``butter_signature_fallback``
  setting is on, the compact forms (with and without ASCII escaping) — Butter probably sends
  compact JSON, in which case both readings agree;
- a webhook whose expiry is more than ``butter_clock_skew`` seconds in the past is refused, and
  one whose expiry is more than ``butter_max_expiry_ahead`` seconds in the future too (a captured
  body signed with a far expiry would otherwise replay for years).

Error messages name what is wrong but never the server's clock, the configured secrets or how
many there are: they may be returned to the caller.

Comparisons are constant-time (:func:`hmac.compare_digest`); Butter's samples are not.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from recoverkit.errors import ConfigurationError, SignatureError

__all__ = [
    "DEDUPE_HEADER",
    "EXPIRY_HEADERS",
    "SIGNATURE_HEADER",
    "TYPE_HEADER",
    "VerifiedButterWebhook",
    "sign",
    "signed_headers",
    "verify",
]

SIGNATURE_HEADER = "X-Butter-Webhook-Signature"
#: Accepted expiry header spellings, the one we send first.
EXPIRY_HEADERS = ("X-Butter-Webhook-Expiration", "X-Butter-Webhook-Expires")
DEDUPE_HEADER = "X-Butter-Webhook-Deduplication-ID"
TYPE_HEADER = "X-Butter-Webhook-Type"


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def sign(body: bytes | str, expiry: int | str, secret: str | bytes) -> str:
    """``hex(HMAC_SHA256(secret, body + "+" + expiry))``, the value of the signature header."""
    payload = body if isinstance(body, bytes) else body.encode("utf-8")
    message = payload + b"+" + str(expiry).encode("ascii")
    return hmac.new(_secret_bytes(secret), message, hashlib.sha256).hexdigest()


def signed_headers(
    body: bytes | str,
    *,
    secret: str | bytes,
    expiry: int,
    dedupe_id: str | None = None,
    event_type: str | None = None,
) -> dict[str, str]:
    """The headers Recover sends with a webhook (what the sandbox and tests send)."""
    headers = {
        "Content-Type": "application/json",
        EXPIRY_HEADERS[0]: str(expiry),
        SIGNATURE_HEADER: sign(body, expiry, secret),
    }
    if dedupe_id is not None:
        headers[DEDUPE_HEADER] = dedupe_id
    if event_type is not None:
        headers[TYPE_HEADER] = event_type
    return headers


@dataclass(frozen=True, slots=True)
class VerifiedButterWebhook:
    """What :func:`verify` learned: the expiry and which payload form matched."""

    expiry: int
    matched: str  # "raw" or "compact"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _compact_forms(body: bytes) -> list[bytes]:
    """Compact re-serialisations of ``body`` as Butter's older samples compute them."""
    try:
        parsed = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return []  # not JSON (or nested too deep to re-serialise): only the raw form can match
    forms: list[bytes] = []
    for ascii_only in (True, False):  # Python's default escapes non-ASCII, JSON.stringify doesn't
        try:
            text = json.dumps(parsed, separators=(",", ":"), ensure_ascii=ascii_only).encode()
        except (RecursionError, ValueError):
            return []
        if text != body and text not in forms:
            forms.append(text)
    return forms


def verify(
    body: bytes,
    headers: Mapping[str, str],
    secrets: Iterable[str | bytes],
    *,
    now: float,
    clock_skew: float = 60,
    fallback: bool = True,
    max_ahead: float | None = None,
) -> VerifiedButterWebhook:
    """Check a Recover webhook's signature and expiry; raise :class:`SignatureError` otherwise.

    ``secrets`` may hold several values during a rotation; any one matching is enough.
    ``now`` is the receive time in epoch seconds (the caller reads the clock). ``max_ahead``
    bounds how far in the future the expiry may be (None: unbounded).
    """
    keys = [_secret_bytes(s) for s in secrets]
    if not keys:
        raise ConfigurationError("no Butter signing secret is configured (butter_signing_secrets)")
    signature = _header(headers, SIGNATURE_HEADER)
    if not signature:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    expiry_text = next(
        (v for v in (_header(headers, h) for h in EXPIRY_HEADERS) if v is not None), None
    )
    if expiry_text is None:
        raise SignatureError(f"missing {EXPIRY_HEADERS[0]} (or {EXPIRY_HEADERS[1]}) header")
    try:
        expiry = int(expiry_text.strip())
    except ValueError:
        raise SignatureError("expiry header is not epoch seconds") from None
    if expiry < now - clock_skew:
        raise SignatureError("webhook expired (its expiry header is in the past)")
    if max_ahead is not None and expiry > now + max_ahead:
        raise SignatureError("webhook expiry is too far in the future")
    candidate = signature.strip().lower().encode("ascii", "replace")
    forms: list[tuple[str, bytes]] = [("raw", body)]
    if fallback:
        forms += [("compact", form) for form in _compact_forms(body)]
    matched: str | None = None
    for label, payload in forms:
        for key in keys:
            expected = sign(payload, expiry_text.strip(), key).encode("ascii")
            # Check every combination so timing does not reveal which secret or form matched.
            if hmac.compare_digest(expected, candidate) and matched is None:
                matched = label
    if matched is None:
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body")
    return VerifiedButterWebhook(expiry=expiry, matched=matched)
