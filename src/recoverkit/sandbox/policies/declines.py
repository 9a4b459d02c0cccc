"""Build a :class:`~recoverkit.declines.NormalizedDecline` from what a decline says on the wire.

People writing and testing a policy have an ISO 8583 response code, maybe a Mastercard merchant
advice code, the card network and perhaps the PSP's own advice; :func:`decline_from_codes` turns
them into the decline a policy sees, through the core's ``normalize`` and the core's ISO 8583
reference table — exactly what the simulator's issuer returns and what the sandbox stores. No
need to reach into the simulator for it.
"""

from __future__ import annotations

from functools import cache

from recoverkit.declines import (
    Advice,
    DeclineTable,
    NormalizedDecline,
    iso_response,
    iso_responses,
    normalize,
)

__all__ = ["decline_from_codes", "iso_reference_table"]


@cache
def iso_reference_table() -> DeclineTable:
    """The core's ISO 8583 reference codes as a decline table (raw code = ISO code)."""
    rows = ["code,category,response_type,iso_response_code,advice,source"]
    for code, info in iso_responses().items():
        rows.append(f"{code},{info.category},{info.response_type},{code},,{info.source}")
    return DeclineTable.from_text("\n".join(rows), name="ISO 8583 reference (recoverkit core)")


def decline_from_codes(
    iso: str,
    *,
    network: str | None = None,
    mac: str | None = None,
    advice: Advice | str | None = None,
    sent_to_network: bool = True,
) -> NormalizedDecline:
    """The normalized decline for ISO 8583 response code ``iso`` (``"51"``, ``"05"`` …).

    ``mac`` is a Mastercard merchant advice code (``"03"``, ``"24"``; MAC 03/21 make the decline
    hard with ``do_not_try_again``, MAC 01 hard with ``confirm_card_data``); ``advice`` is the
    PSP's explicit advice (Stripe's ``advice_code`` vocabulary, e.g. ``"do_not_try_again"``).
    ``network`` fills the Visa category when it is Visa. An ISO code outside the core's table
    normalizes to ``generic_soft`` with ``recognized=False`` (and a logged warning), as in
    production. Raises ``ValueError`` for blank codes or an unknown advice value.
    """
    code = iso.strip().upper()
    if not code:
        raise ValueError("iso: an ISO 8583 response code is required")
    if isinstance(advice, str):
        try:
            parsed: Advice | None = Advice(advice.strip().lower())
        except ValueError:
            allowed = ", ".join(a.value for a in Advice)
            raise ValueError(f"advice {advice!r} is not one of: {allowed}") from None
    else:
        parsed = advice
    info = iso_response(code)
    return normalize(
        iso_reference_table(),
        code,
        message=info.meaning if info else None,
        mastercard_advice_code=mac,
        advice=parsed,
        network=network.strip().lower() if network else None,
        sent_to_network=sent_to_network,
    )
