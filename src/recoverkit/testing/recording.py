"""Cassettes for PSP API calls: replayed by default, re-recorded with ``RECOVERKIT_RECORD=1``.

Plugin tests replay vcrpy cassettes (``record_mode="none"``: a request not in the cassette fails).
:func:`cassette_vcr` builds that VCR; with ``RECOVERKIT_RECORD=1`` in the environment the same
VCR records every cassette afresh (``record_mode="all"``) against the PSP's test account whose keys
are in the environment, and every interaction passes the scrubbing filters before it is written:

- **keys and tokens**: the ``Authorization``, ``X-API-Key``, ``Cookie``, ``Set-Cookie`` and
  ``Proxy-Authorization`` headers become ``REDACTED``; API keys and webhook secrets in any body
  (``sk_test_…``, ``rk_live_…``, ``whsec_…``, a PaymentIntent's ``…_secret_…``) and the values of
  secret-like fields (``client_secret``, ``secret``, ``password``, ``api_key``, ``access_token``,
  ``refresh_token``, ``ephemeral_key``) are replaced;
- **card data**: card numbers (Luhn-valid digit runs) and security codes, by
  :func:`recoverkit.redact.scrub_text`, and the values of ``number``, ``cvc``, ``cvv`` fields;
- **personal data**: the values of name, email, phone and street-address fields (JSON, form and
  XML bodies alike) become fixed placeholders.

Object ids, amounts, currencies, statuses and decline codes are kept: the tests match on them.
``docs/recording.md`` says how to record per PSP.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from recoverkit.redact import scrub_text

__all__ = [
    "RECORD_ENV",
    "SECRET_HEADERS",
    "cassette_vcr",
    "credential",
    "recording",
    "scrub_body",
    "scrub_request",
    "scrub_response",
]

#: Set to ``1`` to record cassettes afresh instead of replaying them.
RECORD_ENV: Final = "RECOVERKIT_RECORD"
REDACTED: Final = "REDACTED"

#: Request and response headers that carry credentials; their values are replaced.
SECRET_HEADERS: Final = (
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "cookie",
    "set-cookie",
)

#: Field names (the last segment of a form key like ``card[number]``, a JSON key, an XML tag with
#: ``-`` read as ``_``) whose values are replaced, and by what.
_SECRET_FIELDS: Final = frozenset(
    {
        "client_secret",
        "secret",
        "password",
        "api_key",
        "access_token",
        "refresh_token",
        "ephemeral_key",
        "private_key",
    }
)
_CARD_FIELDS: Final = frozenset({"number", "cvc", "cvv", "cvv2", "card_number", "security_code"})
_PERSONAL_FIELDS: Final[Mapping[str, str]] = {
    "name": "Jane Doe",
    "first_name": "Jane",
    "last_name": "Doe",
    "cardholder_name": "Jane Doe",
    "holder_name": "Jane Doe",
    "holdername": "Jane Doe",
    "shopper_name": "Jane Doe",
    "email": "jane@example.com",
    "shopper_email": "jane@example.com",
    "shopperemail": "jane@example.com",
    "receipt_email": "jane@example.com",
    "phone": "+15555550100",
    "telephone_number": "+15555550100",
    "line1": "1 Example Street",
    "line2": "",
    "street_address": "1 Example Street",
    "extended_address": "",
    "street": "Example Street",
    "house_number_or_name": "1",
    "ip": "192.0.2.1",
    "shopper_ip": "192.0.2.1",
    "shopperip": "192.0.2.1",
}
#: Any other field ending so (``customer_email``, ``billing_phone`` …) is personal data too.
_PERSONAL_SUFFIXES: Final = (("email", "jane@example.com"), ("phone", "+15555550100"))
_SECRET_TEXT: Final = (
    (re.compile(r"\b((?:sk|rk|pk)_(?:live|test))_[A-Za-z0-9]{6,}"), r"\1_" + REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=]{6,}"), "whsec_" + REDACTED),
    (re.compile(r"\b((?:pi|seti|cs)_[A-Za-z0-9]+_secret)_[A-Za-z0-9]+"), r"\1_" + REDACTED),
)
_XML_FIELD: Final = re.compile(r"<([a-z][a-z0-9-]*)((?:\s[^>]*)?)>([^<]*)</\1>", re.IGNORECASE)


def recording(environ: Mapping[str, str] | None = None) -> bool:
    """True when ``RECOVERKIT_RECORD=1``: cassettes are recorded afresh instead of replayed."""
    env = os.environ if environ is None else environ
    return env.get(RECORD_ENV, "").strip() == "1"


def _field(name: str) -> str:
    last = name.rsplit("[", 1)[-1].rstrip("]")
    return last.replace("-", "_").lower()


def _replacement(name: str, value: str) -> str | None:
    field = _field(name)
    if field in _SECRET_FIELDS and value:
        return REDACTED
    if field in _CARD_FIELDS and value:
        return REDACTED
    if field in _PERSONAL_FIELDS and value:
        return _PERSONAL_FIELDS[field]
    for suffix, placeholder in _PERSONAL_SUFFIXES:
        if field.endswith(suffix) and value:
            return placeholder
    return None


def _scrub_json(value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _scrub_json(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_json(v, key) for v in value]
    if isinstance(value, str):
        replaced = _replacement(key, value)
        return replaced if replaced is not None else value
    if isinstance(value, int) and not isinstance(value, bool) and _field(key) in _CARD_FIELDS:
        return REDACTED
    return value


def _scrub_form(text: str) -> str:
    pairs = parse_qsl(text, keep_blank_values=True)
    scrubbed = []
    changed = False
    for name, value in pairs:
        replaced = _replacement(name, value)
        changed = changed or replaced is not None
        scrubbed.append((name, replaced if replaced is not None else value))
    return urlencode(scrubbed) if changed else text  # untouched bodies keep their bytes


def _scrub_xml(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        tag, attributes, value = match.group(1), match.group(2), match.group(3)
        replaced = _replacement(tag, value.strip())
        if replaced is None:
            return match.group(0)
        return f"<{tag}{attributes}>{replaced}</{tag}>"

    return _XML_FIELD.sub(one, text)


def scrub_body(text: str) -> str:
    """``text`` (JSON, form-encoded, XML or plain) with keys, tokens, card data and personal
    data replaced; what it cannot parse is still scrubbed as text."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        with contextlib.suppress(ValueError):  # not JSON after all: scrubbed as text below
            parsed = json.loads(text)
            scrubbed = _scrub_json(parsed)
            if scrubbed != parsed:  # untouched bodies keep their bytes
                text = json.dumps(scrubbed)
    elif stripped.startswith("<"):
        text = _scrub_xml(text)
    elif "=" in text and "\n" not in text.strip():
        text = _scrub_form(text)
    for pattern, replacement in _SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return scrub_text(text, event="recording", path="cassette")


def _as_text(body: Any) -> tuple[str | None, bool]:
    if body is None:
        return None, False
    if isinstance(body, bytes):
        try:
            return body.decode("utf-8"), True
        except UnicodeDecodeError:
            return None, True
    if isinstance(body, str):
        return body, False
    return None, False


def _scrub_url(uri: str) -> str:
    base, sep, query = uri.partition("?")
    if not sep:
        return uri
    return f"{base}?{_scrub_form(query)}"


def scrub_request(request: Any) -> Any:
    """vcrpy ``before_record_request``: headers, query and body of a request, scrubbed."""
    for header in list(request.headers):
        if header.lower() in SECRET_HEADERS:
            request.headers[header] = REDACTED
    request.uri = _scrub_url(request.uri)
    text, was_bytes = _as_text(request.body)
    if text is not None:
        scrubbed = scrub_body(text)
        request.body = scrubbed.encode("utf-8") if was_bytes else scrubbed
    return request


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """vcrpy ``before_record_response``: headers and body of a response, scrubbed."""
    headers = response.get("headers") or {}
    for header in list(headers):
        if header.lower() in SECRET_HEADERS:
            headers[header] = [REDACTED]
    body = response.get("body") or {}
    text, was_bytes = _as_text(body.get("string"))
    if text is not None:
        scrubbed = scrub_body(text)
        body["string"] = scrubbed.encode("utf-8") if was_bytes else scrubbed
    return response


def cassette_vcr(
    library_dir: str,
    *,
    environ: Mapping[str, str] | None = None,
    before_record_request: Callable[[Any], Any] | None = None,
    **options: Any,
) -> Any:
    """A ``vcr.VCR`` over ``library_dir``: replay only, or (``RECOVERKIT_RECORD=1``) record every
    cassette afresh through the scrubbing filters. ``options`` go to ``vcr.VCR`` (``match_on``…);
    ``before_record_request`` runs before the scrubbing."""
    import vcr

    def request_filter(request: Any) -> Any:
        if before_record_request is not None:
            request = before_record_request(request)
            if request is None:
                return None
        return scrub_request(request)

    options.setdefault("decode_compressed_response", True)
    return vcr.VCR(
        cassette_library_dir=library_dir,
        record_mode="all" if recording(environ) else "none",
        before_record_request=request_filter,
        before_record_response=scrub_response,
        **options,
    )


def credential(variable: str, replay_value: str, environ: Mapping[str, str] | None = None) -> str:
    """The value a test uses for a PSP credential: ``replay_value`` when replaying; when recording,
    the test account's credential from ``variable`` (a clear error when it is not set)."""
    env = os.environ if environ is None else environ
    if not recording(env):
        return replay_value
    value = env.get(variable, "").strip()
    if not value:
        raise RuntimeError(
            f"{RECORD_ENV}=1 records against the PSP's test account: set {variable} "
            "(see docs/recording.md)"
        )
    return value
