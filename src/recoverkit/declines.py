"""Normalized decline taxonomy.

Every plugin maps its PSP's raw decline data into a :class:`NormalizedDecline`: a closed
:class:`DeclineCategory`, soft/hard (``response_type`` on the wire) and, where known, the ISO 8583
response code, the Visa decline category, the Mastercard merchant advice code and an advice.
Declines are data, never exceptions.

Reference data (ISO 8583 codes, Visa categories, Mastercard advice codes) lives in versioned CSV
files in :mod:`recoverkit.data`; each plugin ships its own decline CSV, read by
:class:`DeclineTable`.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger("recoverkit.declines")

_URL = re.compile(r"^https?://\S+$")
_VERSION = re.compile(r"^#\s*version:\s*(\d{4}-\d{2}-\d{2})\s*$")
_E = TypeVar("_E", bound=StrEnum)


class DeclineCategory(StrEnum):
    """The closed set of decline categories (research/stripe-and-networks.md §9)."""

    INSUFFICIENT_FUNDS = "insufficient_funds"
    LIMIT_EXCEEDED = "limit_exceeded"
    ISSUER_UNAVAILABLE = "issuer_unavailable"
    GENERIC_SOFT = "generic_soft"
    AUTHENTICATION_REQUIRED = "authentication_required"
    CARD_DATA_INVALID = "card_data_invalid"
    ACCOUNT_INVALID = "account_invalid"
    LOST_STOLEN = "lost_stolen"
    REVOKED_BY_CARDHOLDER = "revoked_by_cardholder"
    NOT_PERMITTED = "not_permitted"
    FRAUD_SUSPECTED = "fraud_suspected"
    BLOCKED_BY_PSP = "blocked_by_psp"
    REQUEST_INVALID = "request_invalid"


class ResponseType(StrEnum):
    """Soft or hard decline, spelled as Recover's ``outcome.response_type``."""

    SOFT = "soft_decline"
    HARD = "hard_decline"


class Advice(StrEnum):
    """What the issuer or network advises (Stripe's ``advice_code`` vocabulary)."""

    TRY_AGAIN_LATER = "try_again_later"
    CONFIRM_CARD_DATA = "confirm_card_data"
    DO_NOT_TRY_AGAIN = "do_not_try_again"


@dataclass(frozen=True, slots=True)
class NormalizedDecline:
    """One decline, normalized. ``raw_code`` is the PSP's own code exactly as received.

    ``advice=Advice.DO_NOT_TRY_AGAIN`` always comes with ``response_type=HARD``: the constructor
    makes it so for every plugin, since the advice wins over the code's usual type.
    """

    category: DeclineCategory
    response_type: ResponseType
    raw_code: str
    message: str | None = None
    iso_response_code: str | None = None
    visa_category: int | None = None
    mastercard_advice_code: str | None = None
    advice: Advice | None = None
    network: str | None = None
    #: False when the PSP stopped the charge before any issuer saw it (a block, not a decline).
    sent_to_network: bool = True
    #: False when the raw code was not in the PSP's table and fell back to ``GENERIC_SOFT``.
    recognized: bool = True

    def __post_init__(self) -> None:
        # An explicit "do not try again" from the issuer, the network or the PSP means the
        # credential will never be approved: hard, whatever the code's usual type and whoever
        # built the decline (normalize, a plugin's own code, dataclasses.replace).
        if self.advice is Advice.DO_NOT_TRY_AGAIN and self.response_type is not ResponseType.HARD:
            object.__setattr__(self, "response_type", ResponseType.HARD)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (enums as their wire strings)."""
        return {
            "category": self.category.value,
            "response_type": self.response_type.value,
            "raw_code": self.raw_code,
            "message": self.message,
            "iso_response_code": self.iso_response_code,
            "visa_category": self.visa_category,
            "mastercard_advice_code": self.mastercard_advice_code,
            "advice": self.advice.value if self.advice else None,
            "network": self.network,
            "sent_to_network": self.sent_to_network,
            "recognized": self.recognized,
        }


# --- CSV reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Csv:
    name: str
    version: str | None
    rows: list[tuple[int, dict[str, str]]]  # (line number in the file, row)


def _read_csv(text: str, name: str, required: Iterable[str]) -> _Csv:
    """Parse a CSV whose leading ``#`` lines are comments; check the header has ``required``."""
    lines = text.splitlines(keepends=True)
    skipped = 0
    version = None
    while skipped < len(lines) and lines[skipped].lstrip().startswith("#"):
        if match := _VERSION.match(lines[skipped].strip()):
            version = match.group(1)
        skipped += 1
    reader = csv.DictReader(io.StringIO("".join(lines[skipped:])))
    missing = [col for col in required if col not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{name}: missing column(s) {', '.join(missing)} in the header row")
    rows = [
        (skipped + reader.line_num, {k: (v or "").strip() for k, v in row.items() if k})
        for row in reader
    ]
    return _Csv(name=name, version=version, rows=rows)


@cache
def _reference(filename: str) -> _Csv:
    resource = files("recoverkit.data") / filename
    return _read_csv(resource.read_text(encoding="utf-8"), f"recoverkit/data/{filename}", ())


def data_version(filename: str) -> str | None:
    """The ``# version: YYYY-MM-DD`` of a reference file in :mod:`recoverkit.data`."""
    return _reference(filename).version


# --- network reference data --------------------------------------------------------------------


class MacAction(StrEnum):
    """What a Mastercard merchant advice code tells the merchant to do about retries."""

    NEVER = "never"
    AFTER_PAYMENT_METHOD_CHANGE = "after_payment_method_change"
    RETRY_LATER = "retry_later"
    DELAY = "delay"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class IsoResponse:
    """One ISO 8583 response code (field 39) with its Visa category and normalized category."""

    code: str
    meaning: str
    visa_category: int | None
    category: DeclineCategory
    response_type: ResponseType
    source: str


@dataclass(frozen=True, slots=True)
class MerchantAdvice:
    """One Mastercard merchant advice code; ``delay`` is set for MAC 24-30 only."""

    code: str
    meaning: str
    action: MacAction
    delay: timedelta | None
    source: str


@cache
def iso_responses() -> Mapping[str, IsoResponse]:
    """All ISO 8583 decline codes in ``iso8583_response_codes.csv``, by code."""
    return {
        row["code"]: IsoResponse(
            code=row["code"],
            meaning=row["meaning"],
            visa_category=int(row["visa_category"]) if row["visa_category"] else None,
            category=DeclineCategory(row["category"]),
            response_type=ResponseType(row["response_type"]),
            source=row["source"],
        )
        for _, row in _reference("iso8583_response_codes.csv").rows
    }


@cache
def mastercard_advices() -> Mapping[str, MerchantAdvice]:
    """All Mastercard merchant advice codes in ``mastercard_advice_codes.csv``, by code."""
    return {
        row["mac"]: MerchantAdvice(
            code=row["mac"],
            meaning=row["meaning"],
            action=MacAction(row["action"]),
            delay=timedelta(hours=int(row["delay_hours"])) if row["delay_hours"] else None,
            source=row["source"],
        )
        for _, row in _reference("mastercard_advice_codes.csv").rows
    }


def iso_response(code: str) -> IsoResponse | None:
    """The ISO 8583 response code ``code`` (``"05"``, ``"1A"``; case-insensitive), if known."""
    return iso_responses().get(code.strip().upper())


def visa_category(iso_code: str) -> int | None:
    """Visa's decline category (1-4) for an ISO response code.

    Codes outside the data file are category 4: Visa puts every decline code not listed in
    categories 1-3 there. Blank input gives ``None``.
    """
    if not iso_code.strip():
        return None
    known = iso_response(iso_code)
    return known.visa_category if known and known.visa_category else 4


def mac_code(value: str | None) -> str | None:
    """The two-digit MAC from a raw value such as ``"01 : New account information available"``."""
    match = re.match(r"\s*(\d{1,2})(?!\d)", value or "")
    return match.group(1).zfill(2) if match else None


def mastercard_advice(mac: str) -> MerchantAdvice | None:
    """The Mastercard merchant advice code ``mac`` (``"03"``, ``"3"``, ``"03 : ..."``), if known."""
    code = mac_code(mac)
    return mastercard_advices().get(code) if code else None


# --- plugin decline tables ---------------------------------------------------------------------

DECLINE_TABLE_COLUMNS = (
    "code",
    "category",
    "response_type",
    "iso_response_code",
    "advice",
    "source",
)


@dataclass(frozen=True, slots=True)
class DeclineRow:
    """One row of a plugin's decline table: a raw PSP code and what it normalizes to."""

    code: str
    category: DeclineCategory
    response_type: ResponseType
    iso_response_code: str | None
    advice: Advice | None
    source: str
    line: int
    #: Any columns beyond the required ones, as written.
    extra: Mapping[str, str] = field(default_factory=dict)


class DeclineTable:
    """A PSP plugin's decline mapping, read from its own CSV.

    Loading is lenient so a bad row can never break a live decline: rows that do not parse are
    left out of :meth:`lookup` (their codes normalize to the safe generic category) and reported
    by :meth:`validate`, which the conformance kit calls.
    """

    def __init__(self, rows: Iterable[tuple[int, Mapping[str, str]]], *, name: str) -> None:
        self.name = name
        self.version: str | None = None
        self._rows: dict[str, DeclineRow] = {}
        self._problems: list[str] = []
        for line, raw in rows:
            try:
                row = _parse_decline_row(line, raw)
            except ValueError as exc:
                self._problems.append(
                    f"{name}, row at line {line} (code {raw.get('code')!r}): {exc}"
                )
                continue
            if row.code in self._rows:
                self._problems.append(f"{name}, row at line {line}: duplicate code {row.code!r}")
                continue
            self._rows[row.code] = row

    @classmethod
    def from_text(cls, text: str, *, name: str) -> DeclineTable:
        """Read a decline table from CSV text; ``name`` appears in every error message."""
        parsed = _read_csv(text, name, DECLINE_TABLE_COLUMNS)
        table = cls(parsed.rows, name=name)
        table.version = parsed.version
        return table

    @classmethod
    def from_csv(cls, source: Traversable | str | os.PathLike[str]) -> DeclineTable:
        """Read a decline table from a path or a resource (``files(pkg) / "declines.csv"``)."""
        path: Traversable = Path(source) if isinstance(source, str | os.PathLike) else source
        return cls.from_text(path.read_text(encoding="utf-8"), name=str(path))

    @property
    def rows(self) -> tuple[DeclineRow, ...]:
        """The valid rows, in file order."""
        return tuple(self._rows.values())

    def lookup(self, code: str) -> DeclineRow | None:
        """The row for a raw PSP code (surrounding whitespace ignored), or ``None``."""
        return self._rows.get(code.strip())

    def validate(self) -> None:
        """Raise ``ValueError`` naming the file and row of every row that does not map cleanly."""
        problems = list(self._problems)
        if not self._rows and not problems:
            problems.append(f"{self.name}: the table has no rows")
        if problems:
            raise ValueError("invalid decline table:\n" + "\n".join(problems))


def _parse_decline_row(line: int, raw: Mapping[str, str]) -> DeclineRow:
    code, source = raw.get("code", ""), raw.get("source", "")
    if not code:
        raise ValueError("empty code")
    category = _member(DeclineCategory, raw.get("category", ""), "category")
    response_type = _member(ResponseType, raw.get("response_type", ""), "response_type")
    advice = _member(Advice, raw["advice"], "advice") if raw.get("advice") else None
    if not _URL.match(source):
        raise ValueError(f"source must be an http(s) URL, got {source!r}")
    extra = {k: v for k, v in raw.items() if k not in DECLINE_TABLE_COLUMNS}
    iso = raw.get("iso_response_code") or None
    return DeclineRow(code, category, response_type, iso, advice, source, line, extra)


def _member(enum: type[_E], value: str, column: str) -> _E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(member.value for member in enum)
        raise ValueError(f"{column} {value!r} is not one of: {allowed}") from None


# --- normalization -----------------------------------------------------------------------------


def normalize(
    table: DeclineTable,
    raw_code: str,
    *,
    message: str | None = None,
    iso_response_code: str | None = None,
    mastercard_advice_code: str | None = None,
    advice: Advice | None = None,
    network: str | None = None,
    sent_to_network: bool = True,
) -> NormalizedDecline:
    """Map one raw PSP decline to a :class:`NormalizedDecline`; never raises for unknown codes.

    Explicit arguments win over the table row. An explicit ``advice=Advice.DO_NOT_TRY_AGAIN``
    (Stripe's ``advice_code``, or any PSP's equivalent) always makes the decline hard, whatever the
    row says; so does a raw MAC 03 or 21, which also sets that advice. MAC 01 makes it hard with
    ``confirm_card_data`` (retry after the card is updated). The Visa category is filled from the
    ISO code when the network is Visa.
    """
    row = table.lookup(raw_code)
    if row is None:
        logger.warning(
            "unknown decline code %r in %s; normalized to %s",
            raw_code,
            table.name,
            DeclineCategory.GENERIC_SOFT.value,
        )
        category, response_type = DeclineCategory.GENERIC_SOFT, ResponseType.SOFT
    else:
        category, response_type = row.category, row.response_type
        iso_response_code = iso_response_code or row.iso_response_code
        advice = advice or row.advice

    mac = mac_code(mastercard_advice_code)
    mac_info = mastercard_advice(mac) if mac else None
    mac_action = mac_info.action if mac_info else None
    if mac_action is MacAction.NEVER:
        advice = Advice.DO_NOT_TRY_AGAIN
    elif mac_action is MacAction.AFTER_PAYMENT_METHOD_CHANGE:
        response_type = ResponseType.HARD
        if advice is not Advice.DO_NOT_TRY_AGAIN:
            advice = Advice.CONFIRM_CARD_DATA
    if advice is Advice.DO_NOT_TRY_AGAIN:
        # The advice wins over the table: a soft code with "do not try again" is hard.
        response_type = ResponseType.HARD

    is_visa = network is not None and network.strip().lower() == "visa"
    return NormalizedDecline(
        category=category,
        response_type=response_type,
        raw_code=raw_code,
        message=message,
        iso_response_code=iso_response_code,
        visa_category=visa_category(iso_response_code) if is_visa and iso_response_code else None,
        mastercard_advice_code=mac or (mastercard_advice_code or "").strip() or None,
        advice=advice,
        network=network,
        sent_to_network=sent_to_network,
        recognized=row is not None,
    )
