"""The local secret that keys learned-policy model files (issue 11 item 11).

Model files are pickles, and unpickling runs code. :meth:`SuccessModel.save` therefore prefixes
the pickle with an HMAC-SHA256 tag keyed by a secret of this machine, and ``load`` refuses a file
whose tag does not match *before* unpickling it: a model file someone else wrote (or changed)
is never executed.

The key comes from ``RECOVERKIT_MODEL_KEY`` (the secret itself), else from the file named by
``RECOVERKIT_MODEL_KEY_FILE``, else from ``$XDG_CONFIG_HOME/recoverkit/model.key`` (default
``~/.config/recoverkit/model.key``), created with 32 random bytes and mode 0600 on first use.
To share a model between machines, share the key the same way you share other secrets; to
rotate it, replace the key and retrain (old models then refuse to load).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["KEY_ENV", "KEY_FILE_ENV", "key_path", "model_key", "sign", "verify"]

KEY_ENV = "RECOVERKIT_MODEL_KEY"
KEY_FILE_ENV = "RECOVERKIT_MODEL_KEY_FILE"
_MAGIC = b"recoverkit-model hmac-sha256 "


def key_path() -> Path:
    """Where the key file is (whether or not it exists yet)."""
    named = os.environ.get(KEY_FILE_ENV)
    if named:
        return Path(named)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "recoverkit" / "model.key"


def model_key() -> bytes:
    """The key: from the environment, or the key file (created on first use)."""
    value = os.environ.get(KEY_ENV)
    if value:
        return value.encode("utf-8")
    path = key_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
    return path.read_text(encoding="ascii").strip().encode("ascii")


def sign(data: bytes) -> bytes:
    """``data`` with its integrity tag in front."""
    tag = hmac.new(model_key(), data, hashlib.sha256).hexdigest().encode("ascii")
    return _MAGIC + tag + b"\n" + data


def verify(blob: bytes, what: str) -> bytes:
    """The data after the tag; :class:`ValueError` when the tag is missing or wrong."""
    if not blob.startswith(_MAGIC):
        raise ValueError(
            f"{what} is not a recoverkit success model with an integrity tag "
            "(models saved by an older recoverkit must be trained again)"
        )
    tag, _, data = blob[len(_MAGIC) :].partition(b"\n")
    expected = hmac.new(model_key(), data, hashlib.sha256).hexdigest().encode("ascii")
    if not hmac.compare_digest(tag, expected):
        raise ValueError(
            f"{what} was not written with this machine's model key ({KEY_ENV} or "
            f"{key_path()}); refusing to load it (a pickle can run code)"
        )
    return data
