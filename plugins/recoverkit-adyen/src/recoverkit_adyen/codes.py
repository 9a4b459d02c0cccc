"""Adyen refusal data → :class:`~recoverkit.declines.NormalizedDecline`.

Adyen gives no soft/hard flag. Its refusal comes as a numeric ``refusalReasonCode`` (Checkout API
only), the ``refusalReason`` text (the only refusal field of a webhook item, in ``reason``), the
acquirer's raw answer ``additionalData.refusalReasonRaw`` (``"51 : Insufficient funds"``, when
enabled), ``inferredRefusalReason`` and, from Mastercard issuers, ``merchantAdviceCode``.

Order: ``inferredRefusalReason`` when present (Adyen sets it only when its network data says more
than the issuer's "Refused" / "Not supported" / "Restricted Card" …); else the Adyen code (or its
text) picks a row of ``declines.csv``; when that row is generic ("Refused", "Declined Non
Generic") or unknown, the ISO 8583 code inside ``refusalReasonRaw`` wins (core table). The
merchant advice code is applied last by :func:`recoverkit.declines.normalize` (MAC 03/21: never
retry; 01: retry after the card changes).
"""

from __future__ import annotations

import dataclasses
import re
from functools import cache, lru_cache
from importlib.resources import files
from typing import Final

from recoverkit.declines import (
    DeclineCategory,
    DeclineTable,
    NormalizedDecline,
    iso_responses,
    normalize,
)

__all__ = [
    "decline_table",
    "iso_code_from_raw",
    "network_name",
    "normalize_refusal",
]

_RAW_ISO: Final = re.compile(r"^\s*([0-9A-Z]{2})\s*:")
_NETWORKS: Final = (
    ("mc", "mastercard"),
    ("mastercard", "mastercard"),
    ("maestro", "mastercard"),
    ("visa", "visa"),
    ("electron", "visa"),
    ("amex", "amex"),
    ("discover", "discover"),
    ("diners", "diners"),
    ("jcb", "jcb"),
    ("cartebancaire", "cartes_bancaires"),
    ("cup", "unionpay"),
)


@cache
def decline_table() -> DeclineTable:
    """The plugin's ``declines.csv`` (one row per Adyen refusal code, plus inferred reasons)."""
    return DeclineTable.from_csv(files("recoverkit_adyen") / "declines.csv")


@cache
def _by_text() -> dict[str, str]:
    """Lower-cased ``refusal_reason`` text → table code (webhooks carry only the text)."""
    index: dict[str, str] = {}
    for row in decline_table().rows:
        text = row.extra.get("refusal_reason", "").strip().lower()
        if text and not row.code.startswith("inferred:"):
            index.setdefault(text, row.code)
    return index


@cache
def _inferred() -> dict[str, str]:
    return {
        row.code.removeprefix("inferred:").lower(): row.code
        for row in decline_table().rows
        if row.code.startswith("inferred:")
    }


@cache
def _iso_table() -> DeclineTable:
    """The core ISO 8583 reference rows as a decline table, to normalize ``refusalReasonRaw``."""
    rows = [
        (
            index,
            {
                "code": iso.code,
                "category": iso.category.value,
                "response_type": iso.response_type.value,
                "iso_response_code": iso.code,
                "advice": "",
                "source": iso.source,
            },
        )
        for index, iso in enumerate(iso_responses().values(), start=1)
    ]
    return DeclineTable(rows, name="recoverkit/data/iso8583_response_codes.csv")


def iso_code_from_raw(raw: str | None) -> str | None:
    """``"05 : Do not honor"`` → ``"05"``; None when the raw answer starts with no code."""
    match = _RAW_ISO.match(raw or "")
    return match.group(1) if match else None


@lru_cache(maxsize=256)
def network_name(payment_method: str | None) -> str | None:
    """Adyen's ``paymentMethod`` (``mc``, ``visa``, ``amex`` …) as a lower-case network name."""
    if not payment_method:
        return None
    value = payment_method.strip().lower()
    for prefix, name in _NETWORKS:
        if value.startswith(prefix):
            return name
    return value


@lru_cache(maxsize=4096)
def normalize_refusal(
    *,
    code: str | None = None,
    reason: str | None = None,
    raw: str | None = None,
    inferred: str | None = None,
    merchant_advice_code: str | None = None,
    network: str | None = None,
    fallback: str | None = None,
) -> NormalizedDecline:
    """Normalize one Adyen refusal; unknown values fall to ``generic_soft`` with a warning.

    ``fallback`` is a table code used when neither ``code`` nor ``reason`` is known (e.g.
    ``event:CAPTURE_FAILED``). ``raw_code`` of the result is Adyen's code, else the reason text.
    Pure and cached (the result is frozen): an unknown value is logged once per process, not
    once per webhook.
    """
    table = decline_table()
    row_code: str | None = None
    if code and table.lookup(code.strip()) is not None:
        row_code = code.strip()
    elif reason:
        row_code = _by_text().get(reason.strip().lower())
    if row_code is None and fallback and table.lookup(fallback) is not None:
        row_code = fallback
    row = table.lookup(row_code) if row_code else None
    raw_code = (code or "").strip() or (reason or "").strip() or (fallback or "unknown")

    use_table, use_code = table, row_code
    inferred_code = _inferred().get((inferred or "").strip().lower())
    iso = iso_code_from_raw(raw)
    if inferred_code:  # Adyen sets it only when it knows better than the issuer's answer
        use_code = inferred_code
    elif (
        (row is None or row.category is DeclineCategory.GENERIC_SOFT)
        and iso
        and _iso_table().lookup(iso) is not None
    ):
        use_table, use_code = _iso_table(), iso
    decline = normalize(
        use_table,
        use_code or raw_code,
        message=(reason or "").strip() or None,
        iso_response_code=iso_code_from_raw(raw),
        mastercard_advice_code=merchant_advice_code,
        network=network,
        sent_to_network=not (row is not None and row.extra.get("sent_to_network") == "false"),
    )
    return dataclasses.replace(decline, raw_code=raw_code, recognized=use_code is not None)
