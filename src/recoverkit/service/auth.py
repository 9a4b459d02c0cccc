"""Credentials Recover presents on the merchant endpoints: basic auth or ``x-api-key``."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from recoverkit.config import EndpointAuth

__all__ = ["credentials_ok"]


def _equal(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def credentials_ok(auth: EndpointAuth, headers: Mapping[str, str]) -> bool:
    """True when the request carries one of the credentials configured for the endpoint.

    Comparisons are constant-time; an endpoint with nothing configured accepts nobody.
    """
    ok = False
    given_key = headers.get("x-api-key")
    if auth.api_key is not None and given_key is not None:
        ok = _equal(given_key, auth.api_key.get_secret_value()) or ok
    header = headers.get("authorization", "")
    if auth.username is not None and auth.password is not None and header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ok
        user, sep, password = decoded.partition(":")
        user_ok = _equal(user, auth.username)
        password_ok = _equal(password, auth.password.get_secret_value())
        ok = (bool(sep) and user_ok and password_ok) or ok
    return ok
