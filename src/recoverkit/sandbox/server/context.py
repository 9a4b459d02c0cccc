"""What a policy sees about one invoice, rebuilt from the sandbox's tables.

The engine builds it before planning; training builds it "as of" each past attempt, so the
learned model is fitted on exactly the situations the engine will later ask it about.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from recoverkit.declines import Advice, DeclineCategory, NormalizedDecline, ResponseType
from recoverkit.sandbox.policies.base import InvoiceAttempt, PolicyContext
from recoverkit.sandbox.policies.base import PaymentMethodUpdate as PolicyMethodUpdate
from recoverkit.sandbox.server.dunning import DunningBook, InvoiceState

__all__ = ["decline_from_dict", "policy_context"]

#: Payment Method Update ``reason`` values that mean the account updater refreshed the card.
ACCOUNT_UPDATER_REASONS = frozenset({"network_updated", "account_updater", "updated"})


def decline_from_dict(data: Mapping[str, object]) -> NormalizedDecline:
    """Rebuild a :class:`NormalizedDecline` from its ``to_dict()``."""
    advice = data.get("advice")
    visa = data.get("visa_category")
    return NormalizedDecline(
        category=DeclineCategory(str(data["category"])),
        response_type=ResponseType(str(data["response_type"])),
        raw_code=str(data["raw_code"]),
        message=str(data["message"]) if data.get("message") is not None else None,
        iso_response_code=str(data["iso_response_code"]) if data.get("iso_response_code") else None,
        visa_category=int(str(visa)) if visa is not None else None,
        mastercard_advice_code=(
            str(data["mastercard_advice_code"]) if data.get("mastercard_advice_code") else None
        ),
        advice=Advice(str(advice)) if advice else None,
        network=str(data["network"]) if data.get("network") else None,
        sent_to_network=bool(data.get("sent_to_network", True)),
        recognized=bool(data.get("recognized", True)),
    )


def policy_context(
    book: DunningBook,
    invoice: InvoiceState,
    *,
    now: datetime,
    latest: NormalizedDecline | None = None,
    before: datetime | None = None,
) -> PolicyContext:
    """The invoice's attempts, the card's history and the customer's card updates.

    ``before`` limits everything to what was known before that time (training); ``latest`` is
    a decline newer than any recorded attempt (a merchant-reported failure), added last.
    """
    first = decline_from_dict(invoice.first_decline or invoice.last_decline or {})
    history = [InvoiceAttempt(invoice.first_failed_at, False, first, invoice.payment_method_id)]
    for row in book.attempts_of(invoice.invoice_id):
        if row.finished_at is None or row.success is None:
            continue
        if before is not None and row.started_at >= before:
            continue
        decline = decline_from_dict(json.loads(row.decline)) if row.decline else None
        history.append(
            InvoiceAttempt(row.finished_at, bool(row.success), decline, row.payment_method_id)
        )
    if latest is not None and history[-1].decline != latest and not history[-1].approved:
        history.append(InvoiceAttempt(now, False, latest, invoice.payment_method_id))
    updates = [
        PolicyMethodUpdate(
            at, pm, "account_updater" if reason in ACCOUNT_UPDATER_REASONS else "customer"
        )
        for at, pm, reason in book.payment_method_updates_since(
            invoice.customer_id, invoice.first_failed_at
        )
        if before is None or at < before
    ]
    # Budgets count the credential that will be charged: the customer's newest card.
    card = (
        updates[-1].payment_method_id
        if updates and updates[-1].source == "customer"
        else invoice.payment_method_id
    )
    card_attempts = [a for a in book.card_history(card) if before is None or a.at < before]
    return PolicyContext(
        invoice_id=invoice.invoice_id,
        amount=invoice.amount,
        currency=invoice.currency,
        now=now,
        invoice_attempts=history,
        card_attempts=card_attempts,
        payment_method_updates=updates,
        dunning_window=invoice.dunning_ends_at - invoice.first_failed_at,
        network=invoice.scheme,
    )
