"""Find card numbers, CVCs and secrets in files that are about to be committed or shipped."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from recoverkit.redact import luhn_valid

__all__ = [
    "DOCUMENTED_TEST_PANS",
    "Finding",
    "luhn_valid",
    "scan_paths",
    "scan_text",
    "with_check_digit",
]

#: Card numbers the PSPs publish for testing (Stripe, Braintree, Adyen docs): not cardholder data.
DOCUMENTED_TEST_PANS: Final = frozenset(
    {
        "4242424242424242",
        "4000056655665556",
        "5555555555554444",
        "2223003122003222",
        "5200828282828210",
        "5105105105105100",
        "378282246310005",
        "371449635398431",
        "6011111111111117",
        "6011000990139424",
        "3056930009020004",
        "36227206271667",
        "3566002020360505",
        "6200000000000005",
        "4000000000000002",
        "4000000000000341",
        "4000000000009995",
        "4000000000009987",
        "4000000000009979",
        "4000000000000069",
        "4000000000000127",
        "4000000000000119",
        "4000000000000077",
        "4000000000000093",
        "4000000000000101",
        "4000000000000259",
        "4000000000003220",
        "4000002500003155",
        "4000002760003184",
        "4100000000000019",
        "4111111111111111",
        "4005519200000004",
        "4009348888881881",
        "4012000033330026",
        "4012000077777777",
        "4012888888881881",
        "4217651111111119",
        "4500600000000061",
        "4457010000000009",
        "5431111111111111",
        "5454545454545454",
        "2223000048400011",
        "4000111111111115",
        "4000000000000010",
        "5101180000000007",
        "4166676667666746",
        "4988438843884305",
    }
)

_PAN: Final = re.compile(r"(?<![0-9])([0-9]{13,19})(?![0-9])")
_CVC: Final = re.compile(
    r"""["']?(?:cvc|cvv2?|cvn|cid|card_validation_number|security_?code|cvc_code)["']?\s*[:=]\s*["']?([0-9]{3,4})["']?(?![0-9])""",
    re.IGNORECASE,
)
_SECRET: Final = re.compile(
    r"(sk_live_[0-9A-Za-z]{8,}|rk_live_[0-9A-Za-z]{8,}|whsec_[0-9A-Za-z+/=]{20,}"
    r"|-----BEGIN (?:RSA |EC )?PRIVATE KEY|AQE[0-9A-Za-z+/=_-]{40,})"
)


@dataclass(frozen=True, slots=True)
class Finding:
    """Something that looks like cardholder data or a secret; ``excerpt`` is already masked."""

    path: str
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.path}: {self.kind} {self.excerpt}"


def with_check_digit(stem: str) -> str:
    """``stem`` plus the Luhn check digit: lets tests build a card-like number at run time, so
    none is ever stored in a file."""
    for digit in "0123456789":
        if luhn_valid(stem + digit):
            return stem + digit
    raise AssertionError("unreachable: one digit always completes a Luhn number")


def _mask(pan: str) -> str:
    return f"{pan[:6]}…{pan[-4:]}"


def scan_text(text: str, path: str = "<text>") -> list[Finding]:
    """Card numbers (Luhn-valid, not a documented test card), CVC values and live secrets."""
    findings: list[Finding] = []
    for match in _PAN.finditer(text):
        digits = match.group(1)
        if (
            digits[0] in "23456"
            and luhn_valid(digits)
            and digits not in DOCUMENTED_TEST_PANS
            and len(set(digits)) > 1
        ):
            findings.append(Finding(path, "card number", _mask(digits)))
    for _ in _CVC.finditer(text):
        findings.append(Finding(path, "card security code", "***"))
    for match in _SECRET.finditer(text):
        findings.append(Finding(path, "secret", match.group(1)[:10] + "…"))
    return findings


def scan_paths(paths: Iterable[Path]) -> list[Finding]:
    """Scan every file under each path (directories recursively)."""
    findings: list[Finding] = []
    for root in paths:
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for file in files:
            try:
                text = file.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            findings.extend(scan_text(text, str(file)))
    return findings
