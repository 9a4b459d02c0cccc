"""What a Recover sandbox can learn about a decline from the wire alone.

Payments events carry ``outcome.raw_response_message`` and ``response_type``, not recoverkit's
normalized decline. The sandbox reads them the way a recovery service would: an ISO 8583 code
(``"51"`` or ``"51 : Insufficient funds"``) through the core's table, a decline-category name
(Stripe-style codes such as ``insufficient_funds``), else the soft/hard flag. PSP plugins'
decline tables are keyed by codes that do not reach the wire as such, so they are not used.
"""

from __future__ import annotations

import logging
import re

from recoverkit.declines import DeclineCategory, NormalizedDecline, ResponseType, iso_response
from recoverkit.schema import Transaction

__all__ = ["decline_from_transaction"]

logger = logging.getLogger("recoverkit.sandbox")
_ISO_PREFIX = re.compile(r"^([0-9A-Z]{2})\s*:")


def decline_from_transaction(transaction: Transaction) -> NormalizedDecline:
    """A failed wire transaction's decline, as precisely as the wire allows."""
    outcome = transaction.outcome
    raw = outcome.raw_response_message.strip()
    network = transaction.scheme.lower()
    blocked = (outcome.network_status or "") in {"not_sent_to_network", "psp_block"}
    # "51", or "51 : Insufficient funds" as Adyen's refusalReasonRaw and Braintree send it.
    prefix = _ISO_PREFIX.match(raw)
    iso = iso_response(prefix.group(1) if prefix else raw)
    if iso is not None:
        category, response_type = iso.category, iso.response_type
    elif raw in DeclineCategory.__members__.values():
        category = DeclineCategory(raw)
        response_type = ResponseType.SOFT
    else:
        hard = outcome.response_type is not None and outcome.response_type.value == "hard_decline"
        # Unknown text: hard declines wait for a new card, soft ones are the generic case.
        category = DeclineCategory.ACCOUNT_INVALID if hard else DeclineCategory.GENERIC_SOFT
        response_type = ResponseType.HARD if hard else ResponseType.SOFT
        logger.info("sandbox: no table knows decline %r; read as %s", raw, category.value)
    if blocked:
        category = DeclineCategory.BLOCKED_BY_PSP
    if outcome.response_type is not None:
        response_type = ResponseType(outcome.response_type.value)
    return NormalizedDecline(
        category=category,
        response_type=response_type,
        raw_code=raw,
        message=outcome.psp_response_message,
        iso_response_code=iso.code if iso else None,
        visa_category=iso.visa_category if iso and network == "visa" else None,
        network=network,
        sent_to_network=not blocked,
        recognized=iso is not None,
    )
