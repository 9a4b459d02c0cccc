"""Training examples from what the **bridge** stored: ``recoverkit train --from-store``.

The bridge keeps every Payments event it sent (or will send) to Recover in its ``outbox`` — live
webhooks and ``recoverkit backfill`` alike — with each transaction's time, outcome, card scheme,
funding and issuer country, and every Payment Method Update. That history contains retries the
merchant never scheduled with recoverkit: Stripe Smart Retries, Braintree's and Adyen's own
retry attempts, dunning tools that ran before. They are natural experiments: each retry after a
failure, with its outcome, is a :class:`~recoverkit.sandbox.policies.base.TrainingExample`.

For every invoice, transactions are ordered by ``psp_transaction_created_at`` from the first
failure until the first success (or the end of the dunning window); each later attempt becomes
an example whose context holds **only what was known before it** (earlier attempts, earlier card
updates, the card's earlier charges), built as :class:`PolicyContext` exactly as the sandbox
builds it, and read with the sandbox's wire-decline reader. Features are then built by the
learned policy's own feature builder, so training and deciding see the same thing.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, select

from recoverkit.rules import CardAttempt
from recoverkit.sandbox.policies.base import (
    InvoiceAttempt,
    PaymentMethodUpdate,
    PolicyContext,
    TrainingExample,
)
from recoverkit.sandbox.server.context import ACCOUNT_UPDATER_REASONS
from recoverkit.sandbox.server.declines import decline_from_transaction
from recoverkit.schema import PaymentEvent, Transaction
from recoverkit.schema import PaymentMethodUpdate as WireUpdate
from recoverkit.schema.encoding import parse
from recoverkit.store.tables import outbox

__all__ = ["BridgeHistory", "examples_from_bridge"]


@dataclass(frozen=True, slots=True)
class BridgeHistory:
    """The examples, and what was read to build them."""

    examples: list[TrainingExample]
    payment_events: int
    invoices_in_dunning: int
    skipped_messages: int


@dataclass(frozen=True, slots=True)
class _Charge:
    invoice_id: str
    customer_id: str
    transaction: Transaction


def examples_from_bridge(
    engine: Engine,
    *,
    dunning_window: timedelta = timedelta(days=30),
    extra_psp_names: tuple[str, ...] = (),
) -> BridgeHistory:
    """Every retry in the bridge's stored history, as of just before it (no future leakage)."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(outbox.c.endpoint, outbox.c.body, outbox.c.created_at)
            .where(outbox.c.endpoint.in_(("payments", "payment_method_updates")))
            .order_by(outbox.c.id)
        ).all()
    context = {"extra_psp_names": extra_psp_names}
    charges: dict[str, _Charge] = {}
    updates: dict[str, list[PaymentMethodUpdate]] = defaultdict(list)
    events = skipped = 0
    for row in rows:
        try:
            data: Any = json.loads(row.body)
            if row.endpoint == "payments":
                event = parse(PaymentEvent, data, context=context)
            else:
                update = parse(WireUpdate, data, context=context)
        except (ValueError, ValidationError):
            skipped += 1  # anonymised, purged or foreign bodies teach nothing
            continue
        if row.endpoint == "payments":
            events += 1
            for t in event.transactions:
                # The same charge arrives again in later events: one attempt per PSP transaction.
                charges[f"{t.psp}:{t.psp_transaction_id}"] = _Charge(
                    event.invoice.id, event.customer.id, t
                )
        else:
            source = "account_updater" if update.reason in ACCOUNT_UPDATER_REASONS else "customer"
            updates[update.customer_id].append(
                PaymentMethodUpdate(row.created_at, update.payment_method_id, source)
            )
    by_invoice: dict[str, list[_Charge]] = defaultdict(list)
    for charge in charges.values():
        by_invoice[charge.invoice_id].append(charge)
    by_card: dict[str, list[CardAttempt]] = defaultdict(list)
    for charge in charges.values():
        t = charge.transaction
        by_card[t.payment_method_id].append(
            CardAttempt(
                t.psp_transaction_created_at,
                t.scheme.lower(),
                t.success,
                amount=t.amount,
                payment_method_id=t.payment_method_id,
            )
        )
    examples: list[TrainingExample] = []
    dunning = 0
    for invoice_id in sorted(by_invoice):
        found = _invoice_examples(
            invoice_id, by_invoice[invoice_id], updates, by_card, dunning_window
        )
        dunning += found is not None
        examples += found or []
    return BridgeHistory(examples, events, dunning, skipped)


def _invoice_examples(
    invoice_id: str,
    charges: list[_Charge],
    updates: dict[str, list[PaymentMethodUpdate]],
    by_card: dict[str, list[CardAttempt]],
    window: timedelta,
) -> list[TrainingExample] | None:
    ordered = sorted(charges, key=lambda c: c.transaction.psp_transaction_created_at)
    first = next((k for k, c in enumerate(ordered) if not c.transaction.success), None)
    if first is None:
        return None  # never failed: not a dunning history
    start = ordered[first].transaction
    deadline = start.psp_transaction_created_at + window
    attempts: list[InvoiceAttempt] = []
    examples: list[TrainingExample] = []
    customer = ordered[first].customer_id
    for charge in ordered[first:]:
        t = charge.transaction
        at = t.psp_transaction_created_at
        if at > deadline:
            break
        if attempts:
            examples.append(
                TrainingExample(
                    _context(invoice_id, start, attempts, at, updates[customer], by_card, window),
                    at,
                    t.success,
                )
            )
        decline = None if t.success else decline_from_transaction(t)
        attempts.append(InvoiceAttempt(at, t.success, decline, t.payment_method_id))
        if t.success:
            break
    return examples


def _context(
    invoice_id: str,
    start: Transaction,
    attempts: list[InvoiceAttempt],
    now: datetime,
    updates: list[PaymentMethodUpdate],
    by_card: dict[str, list[CardAttempt]],
    window: timedelta,
) -> PolicyContext:
    known = [u for u in updates if u.at < now]
    card = (
        known[-1].payment_method_id
        if known and known[-1].source == "customer"
        else attempts[-1].payment_method_id
    )
    return PolicyContext(
        invoice_id=invoice_id,
        amount=start.amount,
        currency=start.currency,
        now=now,
        invoice_attempts=tuple(attempts),
        card_attempts=sorted((a for a in by_card.get(card, []) if a.at < now), key=lambda a: a.at),
        payment_method_updates=known,
        dunning_window=window,
        network=start.scheme.lower(),
        funding=start.funding_source.value.lower(),
        issuer_country=start.issuer_country,
    )
