"""Normalized decline taxonomy.

Every plugin maps its PSP's raw decline data into a :class:`NormalizedDecline`: a closed
:class:`DeclineCategory`, soft/hard (``response_type`` on the wire) and, where known, the ISO 8583
response code, the Visa decline category, the Mastercard merchant advice code and an advice.
Declines are data, never exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


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
    """One decline, normalized. ``raw_code`` is the PSP's own code exactly as received."""

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
    #: False when the raw code was not in the PSP's table and fell back to the safe generic category.
    recognized: bool = True

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
