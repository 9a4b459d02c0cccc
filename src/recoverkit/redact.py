"""The card-data scrubber: every free-text value recoverkit stores or sends passes through here.

recoverkit never needs a card number (PAN) or a card security code (CVC). PSPs sometimes put one
in free text anyway — a refusal reason, a description, metadata, ``custom`` — so before anything
is written to the store (inbox payloads, outbox bodies for Recover, ledger extras, error texts)
the store calls :func:`scrub_json` or :func:`scrub_text`:

- a run of 12-19 digits, optionally separated by single spaces or dashes, that passes the Luhn
  check becomes ``[redacted card number]`` — published test card numbers included;
- 3-4 digits after ``cvc``, ``cvv``, ``cvv2``, ``cid`` or ``security code`` (and a value of 3-4
  digits under a key with one of those names) become ``[redacted]``.

A value made only of digits (no separators) under a key that names an identifier, an amount or a
time (``id``, ``…_id``, ``…Id``, ``…reference``, ``amount``, ``value``, ``…_at``, ``…time…``,
``…date…``, ``created``) is left alone: Adyen's 16-digit ``pspReference`` is Luhn-valid one time in
ten, and rewriting an id would break deduplication and reconciliation.

Each redaction is counted (:class:`RedactionCollector`, ``recoverkit_redactions_total``) and logged
as a warning naming the event and the field path — never the value.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any, Final

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "REDACTED_CARD",
    "REDACTED_CVC",
    "RedactionCollector",
    "card_numbers",
    "luhn_valid",
    "redaction_counts",
    "scrub_json",
    "scrub_object",
    "scrub_text",
]

log = logging.getLogger(__name__)

REDACTED_CARD: Final = "[redacted card number]"
REDACTED_CVC: Final = "[redacted]"

#: A maximal run of digits joined by at most one space or dash between two digits.
_RUN: Final = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9])*(?![0-9])")
_GROUP_SEP: Final = re.compile(r"[ -]")
#: Cheap pre-checks (a linear character-class scan and substring tests, no backtracking):
#: nothing card-like can be present without a long digit run or one of the keywords.
_DIGIT_RUN: Final = re.compile(r"[0-9][0-9 \-]{11,}")
_KEYWORDS: Final = ("cvc", "cvv", "cid", "cvn", "security", "card_validation")
_CVC_TEXT: Final = re.compile(
    r"(\b(?:cvc|cvv2?|cid|security[ _-]?code)\b[\s:=#\"'\-]*(?:is\s+)?)([0-9]{3,4})(?![0-9])",
    re.IGNORECASE,
)
_CVC_KEYS: Final = frozenset(
    {"cvc", "cvv", "cvv2", "cid", "securitycode", "cardvalidationnumber", "cvccode", "cvn"}
)
_TOKEN: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+')


def _candidate(text: str) -> bool:
    for match in _DIGIT_RUN.finditer(text):
        run = match.group()
        if len(run) - run.count(" ") - run.count("-") >= 12:
            return True
    low = text.lower()
    return any(word in low for word in _KEYWORDS)


def _candidate_starts(text: str) -> list[int]:
    """Sorted positions where card data may start (long digit runs, keywords)."""
    starts = [
        m.start()
        for m in _DIGIT_RUN.finditer(text)
        if len(m.group()) - m.group().count(" ") - m.group().count("-") >= 12
    ]
    low = text.lower()
    for word in _KEYWORDS:
        at = low.find(word)
        while at >= 0:
            starts.append(at)
            at = low.find(word, at + 1)
    return sorted(starts)


_lock = threading.Lock()
_counts: dict[str, int] = {"card_number": 0, "cvc": 0}


def luhn_valid(digits: str) -> bool:
    """True when ``digits`` passes the Luhn check that every card number passes."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = ord(char) - 48
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def _is_pan(digits: str) -> bool:
    return 12 <= len(digits) <= 19 and luhn_valid(digits)


def _card_spans(text: str) -> list[tuple[int, int]]:
    """Where card numbers are in ``text`` (start, end), in order."""
    spans: list[tuple[int, int]] = []
    for match in _RUN.finditer(text):
        run = match.group()
        digits = _GROUP_SEP.sub("", run)
        if len(digits) < 12:
            continue
        if _is_pan(digits):
            spans.append(match.span())
            continue
        # A longer run may hold a card number between separators: try runs of whole groups.
        groups = [
            (m.start() + match.start(), m.end() + match.start()) for m in _DIGITS.finditer(run)
        ]
        i = 0
        while i < len(groups):
            found = False
            for j in range(len(groups) - 1, i - 1, -1):
                candidate = "".join(text[a:b] for a, b in groups[i : j + 1])
                if _is_pan(candidate):
                    spans.append((groups[i][0], groups[j][1]))
                    i = j + 1
                    found = True
                    break
            if not found:
                i += 1
    return spans


_DIGITS: Final = re.compile(r"[0-9]+")


def card_numbers(text: str) -> list[str]:
    """The card numbers :func:`scrub_text` would redact in ``text`` (digits only)."""
    return [_GROUP_SEP.sub("", text[a:b]) for a, b in _card_spans(text)]


def _count(kind: str, n: int) -> None:
    if n:
        with _lock:
            _counts[kind] += n


def redaction_counts() -> dict[str, int]:
    """Redactions made by this process so far, by kind (``card_number``, ``cvc``)."""
    with _lock:
        return dict(_counts)


def _scrub(text: str) -> tuple[str, int, int]:
    if not _candidate(text):
        return text, 0, 0
    spans = _card_spans(text)
    cards = len(spans)
    if spans:
        parts: list[str] = []
        last = 0
        for start, end in spans:
            parts += [text[last:start], REDACTED_CARD]
            last = end
        parts.append(text[last:])
        text = "".join(parts)
    text, cvcs = _CVC_TEXT.subn(lambda m: m.group(1) + REDACTED_CVC, text)
    return text, cards, cvcs


def _report(cards: int, cvcs: int, event: str, path: str) -> None:
    _count("card_number", cards)
    _count("cvc", cvcs)
    if cards:
        log.warning("redacted %d card number(s) in %s (event %s)", cards, path, event)
    if cvcs:
        log.warning("redacted %d card security code(s) in %s (event %s)", cvcs, path, event)


def scrub_text(text: str, *, event: str = "-", path: str = "text") -> str:
    """``text`` with card numbers and security codes redacted (counted and logged)."""
    scrubbed, cards, cvcs = _scrub(text)
    _report(cards, cvcs, event, path)
    return scrubbed


def _exempt(key: str | None) -> bool:
    """A bare digit string under this key is an identifier, amount or time, not free text."""
    if key is None:
        return False
    k = key.lower()
    return (
        k.endswith("id")
        or "reference" in k
        or "amount" in k
        or k in {"value", "created", "updated", "number_of_attempts"}
        or k.endswith("_at")
        or "time" in k
        or "date" in k
    )


def _is_cvc_key(key: str | None) -> bool:
    return key is not None and re.sub(r"[^a-z0-9]", "", key.lower()) in _CVC_KEYS


class _Frame:
    __slots__ = ("index", "is_object", "key", "want_key")

    def __init__(self, is_object: bool) -> None:
        self.is_object = is_object
        self.key: str | None = None
        self.want_key = is_object
        self.index = 0


def _path(stack: list[_Frame], root: str) -> str:
    parts = [root]
    for frame in stack:
        key = _decoded(frame.key) if frame.key is not None else ""
        parts.append(f".{key}" if frame.is_object else f"[{frame.index}]")
    return "".join(parts)


def _replacement(value: str, key: str | None, quoted: bool) -> tuple[str | None, int, int]:
    """What a JSON value token becomes: (replacement or None, cards, cvcs)."""
    if value.isascii() and value.isdigit():
        if _is_cvc_key(key) and 3 <= len(value) <= 4:
            return REDACTED_CVC, 0, 1
        if not _exempt(key) and _is_pan(value):
            return REDACTED_CARD, 1, 0
        return None, 0, 0
    if not quoted:  # a number such as -4111111111111111 or 4111111111111111.0
        if not _exempt(key) and _card_spans(value):
            return REDACTED_CARD, 1, 0
        return None, 0, 0
    scrubbed, cards, cvcs = _scrub(value)
    return (scrubbed if cards or cvcs else None), cards, cvcs


def _advance(stack: list[_Frame], token: str) -> bool:
    """Update the container stack for a structural token; False for a value token."""
    first = token[0]
    if first in "{[":
        stack.append(_Frame(first == "{"))
    elif first in "}]":
        if stack:
            stack.pop()
    elif first == ":":
        if stack:
            stack[-1].want_key = False
    elif first == ",":
        if stack:
            top = stack[-1]
            if top.is_object:
                top.want_key = True
            else:
                top.index += 1
    else:
        return False
    return True


def _decoded(token: str) -> str:
    if token[:1] != '"':
        return token
    try:
        value = json.loads(token)
    except ValueError:
        return token[1:-1]
    return value if isinstance(value, str) else token[1:-1]


def scrub_json(text: str, *, event: str = "-", path: str = "$") -> str:
    """A JSON document's text with card data redacted in its values (and keys).

    Works on the text, so everything else (number formatting, key order, spacing) is kept
    byte for byte; nesting depth costs no recursion. Meant for JSON written by a standard
    serialiser (digits and ASCII letters never ``\\u``-escaped), which is what the store
    writes. Returns ``text`` itself when there is nothing to redact (the common, fast case).
    """
    starts = _candidate_starts(text)
    if not starts:
        return text
    out: list[str] = []
    last = 0
    stack: list[_Frame] = []
    cards = cvcs = 0
    next_start = 0  # index into ``starts``: the first candidate not before this token
    for match in _TOKEN.finditer(text):
        token = match.group()
        if _advance(stack, token):
            continue
        top = stack[-1] if stack else None
        quoted = token[0] == '"'
        raw = token[1:-1] if quoted else token
        is_key = top is not None and top.is_object and top.want_key
        if is_key and top is not None:
            top.key = token  # decoded only when a value under it needs it
        digits = raw.isascii() and raw.isdigit()
        if not digits:
            begin, end = match.span()
            while next_start < len(starts) and starts[next_start] < begin:
                next_start += 1
            if next_start == len(starts) or starts[next_start] >= end:
                continue
        key = None  # a key is free text too (metadata keys are the caller's)
        if not is_key and top is not None and top.is_object and top.key is not None:
            key = _decoded(top.key)
        value = raw if digits else _decoded(token)
        replacement, n_cards, n_cvcs = _replacement(value, key, quoted)
        if replacement is None:
            continue
        cards, cvcs = cards + n_cards, cvcs + n_cvcs
        out += [text[last : match.start()], json.dumps(replacement, ensure_ascii=False)]
        last = match.end()
        where = _scrub(_path(stack, path))[0]
        if len(where) > 200:
            where = where[:80] + "…" + where[-80:]
        log.warning("redacted card data in %s (event %s)", where, event)
    if not out:
        return text
    out.append(text[last:])
    _count("card_number", cards)
    _count("cvc", cvcs)
    return "".join(out)


class RedactionCollector(Collector):
    """``recoverkit_redactions_total{kind}``: card numbers and security codes redacted."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "recoverkit_redactions",
            "Card numbers and card security codes redacted before storing or sending",
            labels=["kind"],
        )
        for kind, n in redaction_counts().items():
            family.add_metric([kind], n)
        yield family


def scrub_object(value: Any, *, event: str = "-", path: str = "$") -> Any:
    """A JSON-like object with card data redacted (via :func:`scrub_json`)."""
    text = json.dumps(value, separators=(",", ":"), default=str)
    scrubbed = scrub_json(text, event=event, path=path)
    return value if scrubbed is text else json.loads(scrubbed)
