"""Stripe decline data → :class:`~recoverkit.declines.NormalizedDecline`.

Stripe spreads one decline over several fields; this module reads them in a fixed order of trust
(research/stripe-and-networks.md §3-4, PITFALLS.md "Stripe"; the rule per class is in
docs/providers/stripe.md):

1. ``outcome.type == "invalid"``: an invalid API call (a live card in test mode, …), not a block
   and not an issuer decline. Always ``request_invalid``, hard, raw code ``outcome.reason``
   (``test_mode_live_card``; ``invalid`` when absent), whatever ``network_status`` or the decline
   code say. Checked first, so the block branch below never sees it.
2. ``outcome.type == "blocked"`` / ``network_status`` ``not_sent_to_network`` or
   ``reversed_after_approval``: Stripe (Radar, a block list, its excessive-retry guard) stopped the
   charge, so ``sent_to_network=False``. A block can still carry a decline code
   (``merchant_blacklist``, ``fraudulent``): that code decides the category and type through the
   table. Only a block without one is ``blocked_by_psp``, with ``outcome.reason`` (or ``blocked``)
   as the raw code. Stripe's placeholder ``generic_decline`` — what its excessive-retry guard
   reports for a block — is no decline code here: it says nothing the block does not.
3. The PaymentIntent's ``last_payment_error.decline_code`` when we hold the error for this charge.
4. ``outcome.reason`` on an issuer decline, when it is a known decline code.
5. ``failure_code`` (for ``expired_card``, ``incorrect_cvc``, ``processing_error`` … the specific
   code is here and no ``decline_code`` exists), falling back to ``card_declined``.

``advice_code`` is Stripe's own retry advice and wins over the table (``do_not_try_again`` always
makes the decline hard, see :func:`recoverkit.declines.normalize`); ``network_advice_code`` is the
Mastercard MAC on Mastercard charges; ``network_decline_code`` is the raw ISO 8583 code.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from typing import Any

from recoverkit.declines import Advice, DeclineTable, NormalizedDecline, normalize

logger = logging.getLogger("recoverkit_stripe.codes")

__all__ = ["decline_from_charge", "decline_from_error", "decline_table", "parse_advice"]

_BLOCKED_STATUSES = frozenset({"not_sent_to_network", "reversed_after_approval"})
#: A decline code that names no reason (Stripe's mask for blocks and unspecified declines).
_PLACEHOLDER_CODES = frozenset({"generic_decline"})


@cache
def decline_table() -> DeclineTable:
    """The bundled ``declines.csv`` (every Stripe decline_code, failure_code and outcome value)."""
    return DeclineTable.from_csv(files("recoverkit_stripe") / "declines.csv")


def parse_advice(value: object) -> Advice | None:
    """Stripe's ``advice_code`` as an :class:`Advice`; an unknown value is logged and dropped."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return Advice(value)
    except ValueError:
        logger.warning("unknown Stripe advice_code %r; ignored", value)
        return None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _network(charge: Mapping[str, Any]) -> str | None:
    card = (charge.get("payment_method_details") or {}).get("card") or {}
    return _str(card.get("network")) or _str(card.get("brand"))


def _mac(network: str | None, code: str | None) -> str | None:
    # Stripe's network_advice_code is the raw network advice; only Mastercard's is a MAC.
    return code if network and network.lower() == "mastercard" else None


def decline_from_charge(
    charge: Mapping[str, Any], error: Mapping[str, Any] | None = None
) -> NormalizedDecline | None:
    """The decline carried by a failed Charge (``None`` for a successful one).

    ``error`` is the PaymentIntent's ``last_payment_error`` when it belongs to this charge.
    """
    if charge.get("status") == "succeeded":
        return None
    outcome = charge.get("outcome") or {}
    error = error if error and error.get("charge") in (None, charge.get("id")) else None
    outcome_type = _str(outcome.get("type"))
    reason = _str(outcome.get("reason"))
    network_status = _str(outcome.get("network_status"))
    network = _network(charge)
    table = decline_table()
    advice = parse_advice(outcome.get("advice_code")) or parse_advice(
        (error or {}).get("advice_code")
    )
    network_advice = _str(outcome.get("network_advice_code")) or _str(
        (error or {}).get("network_advice_code")
    )
    network_decline = _str(outcome.get("network_decline_code")) or _str(
        (error or {}).get("network_decline_code")
    )
    message = _str(charge.get("failure_message")) or _str(outcome.get("seller_message"))

    decline_code = _str((error or {}).get("decline_code"))
    common: dict[str, Any] = {
        "message": message,
        "iso_response_code": network_decline,
        "mastercard_advice_code": _mac(network, network_advice),
        "advice": advice,
        "network": network,
    }
    if outcome_type == "invalid":
        # The "invalid" row decides (request_invalid, hard); the raw code is Stripe's reason.
        invalid = normalize(
            table,
            "invalid",
            **common,
            sent_to_network=network_status in ("declined_by_network", "approved_by_network"),
        )
        return dataclasses.replace(invalid, raw_code=reason or "invalid")
    blocked = outcome_type == "blocked" or network_status in _BLOCKED_STATUSES
    if blocked:
        specific = decline_code if decline_code not in _PLACEHOLDER_CODES else None
        if specific:
            raw = specific
        elif reason and table.lookup(reason):
            raw = reason  # a decline code Stripe put in the reason, or the block's own reason
        else:
            raw = "blocked"
    elif decline_code:
        raw = decline_code
    elif outcome_type == "issuer_declined" and reason and table.lookup(reason):
        raw = reason
    else:
        raw = _str(charge.get("failure_code")) or "card_declined"
    return normalize(table, raw, **common, sent_to_network=not blocked)


def decline_from_error(error: Mapping[str, Any], network: str | None = None) -> NormalizedDecline:
    """The decline in an API error object (``CardError.error`` / ``last_payment_error``)."""
    raw = _str(error.get("decline_code")) or _str(error.get("code")) or "card_declined"
    return normalize(
        decline_table(),
        raw,
        message=_str(error.get("message")),
        iso_response_code=_str(error.get("network_decline_code")),
        mastercard_advice_code=_mac(network, _str(error.get("network_advice_code"))),
        advice=parse_advice(error.get("advice_code")),
        network=network,
    )
