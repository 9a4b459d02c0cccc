"""Optional encryption at rest of stored PSP payloads (``payload_encryption_keys``).

When keys are configured, each inbox payload is written as ``enc:v1:<Fernet token>``
(``cryptography``'s Fernet: AES-128-CBC + HMAC-SHA256) with the first key; any listed key
decrypts, so a rotation is: put the new key first, keep the old ones, run
``recoverkit rotate-keys`` (re-encrypts every payload with the first key), then drop the old keys.
Plain JSON payloads (written before encryption was switched on) stay readable and are encrypted
by ``rotate-keys``.

The keys are process-wide (:func:`configure`): a process serves one settings file.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from recoverkit.errors import ConfigurationError

__all__ = ["PREFIX", "configure", "decrypt", "enabled", "encrypt", "generate_key", "rotate"]

PREFIX = "enc:v1:"

_lock = threading.Lock()
_state: dict[str, MultiFernet | None] = {"cipher": None}


def configure(keys: Sequence[str]) -> None:
    """Use ``keys`` (Fernet keys, newest first) from now on; an empty list switches it off."""
    try:
        cipher = MultiFernet([Fernet(k.strip().encode("ascii")) for k in keys]) if keys else None
    except (ValueError, UnicodeEncodeError):
        raise ConfigurationError(
            "payload_encryption_keys: each key must be a Fernet key (32 url-safe base64 bytes; "
            "make one with `recoverkit rotate-keys --new-key`)"
        ) from None
    with _lock:
        _state["cipher"] = cipher


def enabled() -> bool:
    """True when payloads are being encrypted."""
    return _state["cipher"] is not None


def generate_key() -> str:
    """A new random Fernet key."""
    return Fernet.generate_key().decode("ascii")


def encrypt(text: str) -> str:
    """``text`` as stored: encrypted when keys are configured, unchanged otherwise."""
    cipher = _state["cipher"]
    if cipher is None:
        return text
    return PREFIX + cipher.encrypt(text.encode("utf-8")).decode("ascii")


def decrypt(stored: str) -> str:
    """The payload text of a stored value (plain values are returned as they are)."""
    if not stored.startswith(PREFIX):
        return stored
    cipher = _state["cipher"]
    if cipher is None:
        raise ConfigurationError(
            "a stored payload is encrypted but no payload_encryption_keys are configured"
        )
    try:
        return cipher.decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise ConfigurationError(
            "a stored payload cannot be decrypted with any of payload_encryption_keys"
        ) from None


def rotate(stored: str) -> str | None:
    """``stored`` re-encrypted with the first key (plain text encrypted); None if unchanged."""
    cipher = _state["cipher"]
    if cipher is None:
        raise ConfigurationError("rotate-keys needs payload_encryption_keys")
    if not stored.startswith(PREFIX):
        return encrypt(stored)
    token = stored[len(PREFIX) :].encode("ascii")
    try:
        rotated = cipher.rotate(token)
    except InvalidToken:
        raise ConfigurationError(
            "a stored payload cannot be decrypted with any of payload_encryption_keys"
        ) from None
    return PREFIX + rotated.decode("ascii")
