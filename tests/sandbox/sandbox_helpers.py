"""Helpers for the sandbox tests: declines and policy contexts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from recoverkit.declines import NormalizedDecline
from recoverkit.rules import CardAttempt
from recoverkit.sandbox.policies import InvoiceAttempt, PaymentMethodUpdate, PolicyContext
from recoverkit.sandbox.simulator.world import make_decline

# A Tuesday, 10:00 UTC.
T0 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def decline(iso: str, network: str = "visa", mac: str | None = None) -> NormalizedDecline:
    """A decline as the simulated issuer returns it (through the core's ``normalize``)."""
    return make_decline(iso, network, mac)


def context(
    declines: Sequence[tuple[datetime, NormalizedDecline]],
    *,
    now: datetime | None = None,
    updates: Sequence[PaymentMethodUpdate] = (),
    utc_offset: timedelta = timedelta(0),
    amount: Decimal = Decimal("20.00"),
) -> PolicyContext:
    """A context whose attempts are all declines on one card (``pm_old``)."""
    attempts = [InvoiceAttempt(at, False, d, "pm_old") for at, d in declines]
    network = declines[0][1].network
    card = [CardAttempt(at, network, False, amount=amount) for at, _ in declines]
    current = updates[-1].payment_method_id if updates else "pm_old"
    return PolicyContext(
        invoice_id="inv_1",
        amount=amount,
        currency="USD",
        now=now or declines[-1][0],
        invoice_attempts=attempts,
        card_attempts=card if current == "pm_old" else [],
        payment_method_updates=updates,
        network=network,
        utc_offset=utc_offset,
    )
