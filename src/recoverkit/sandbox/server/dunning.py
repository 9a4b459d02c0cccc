"""The sandbox's book of invoices in dunning: what ingest records and what the engine claims.

All writes are short transactions; the engine holds no lock while it talks to the merchant or the
PSP. Timestamps come from the caller (a clock the tests and the demo can compress).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, and_, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from recoverkit.declines import NormalizedDecline
from recoverkit.rules import CardAttempt
from recoverkit.sandbox.server import store
from recoverkit.sandbox.server.declines import decline_from_transaction
from recoverkit.schema import PaymentEvent, PaymentMethodUpdate, dumps

__all__ = ["DUE_STATES", "DunningBook", "InvoiceState"]

#: Invoice states that still have a step to take.
DUE_STATES = ("planning", "dunning", "paid_elsewhere", "awaiting_payment_method")


@dataclass(frozen=True, slots=True)
class InvoiceState:
    """One ``sandbox_invoices`` row."""

    invoice_id: str
    customer_id: str
    subscription_id: str
    psp: str
    amount: Decimal
    currency: str
    transaction_id: str
    original_psp_transaction_id: str
    payment_method_id: str
    scheme: str
    first_decline: dict[str, Any] | None
    last_decline: dict[str, Any] | None
    state: str
    first_failed_at: datetime
    dunning_ends_at: datetime
    next_attempt_at: datetime | None
    attempts: int
    end_reason: str | None
    custom: dict[str, Any] | None

    @classmethod
    def from_row(cls, row: Any) -> InvoiceState:
        """Build from a ``sandbox_invoices`` row."""
        return cls(
            invoice_id=row.invoice_id,
            customer_id=row.customer_id,
            subscription_id=row.subscription_id,
            psp=row.psp,
            amount=Decimal(row.amount),
            currency=row.currency,
            transaction_id=row.transaction_id,
            original_psp_transaction_id=row.original_psp_transaction_id,
            payment_method_id=row.payment_method_id,
            scheme=row.scheme,
            first_decline=json.loads(row.first_decline) if row.first_decline else None,
            last_decline=json.loads(row.last_decline) if row.last_decline else None,
            state=row.state,
            first_failed_at=row.first_failed_at,
            dunning_ends_at=row.dunning_ends_at,
            next_attempt_at=row.next_attempt_at,
            attempts=row.attempts,
            end_reason=row.end_reason,
            custom=json.loads(row.custom) if row.custom else None,
        )


class DunningBook:
    """Reads and writes the sandbox's tables."""

    def __init__(
        self,
        engine: Engine,
        *,
        dunning_window: timedelta,
    ) -> None:
        self.engine = engine
        self.dunning_window = dunning_window
        store.create_tables(engine)

    # -- ingest ---------------------------------------------------------------------------------

    def record_payment_event(self, event: PaymentEvent, request_id: str, now: datetime) -> None:
        """Store a Payments event; open dunning for a failed invoice, close it on a success."""
        succeeded = any(t.success for t in event.transactions)
        last = event.transactions[-1]
        with self.engine.begin() as conn:
            conn.execute(
                insert(store.payment_events).values(
                    request_id=request_id,
                    received_at=now,
                    invoice_id=event.invoice.id,
                    customer_id=event.customer.id,
                    success=succeeded,
                    body=dumps(event),
                )
            )
            for t in event.transactions:
                decline = None if t.success else self._decline(t)
                self._card_attempt(
                    conn,
                    ref=f"{t.psp}:{t.psp_transaction_id}",
                    payment_method_id=t.payment_method_id,
                    invoice_id=event.invoice.id,
                    at=t.psp_transaction_created_at,
                    network=t.scheme.lower(),
                    approved=t.success,
                    sent_to_network=decline.sent_to_network if decline else True,
                    amount=t.amount,
                )
            existing = conn.execute(
                select(store.invoices).where(store.invoices.c.invoice_id == event.invoice.id)
            ).first()
            if succeeded:
                if existing is not None and existing.state == "dunning":
                    conn.execute(
                        update(store.invoices)
                        .where(store.invoices.c.invoice_id == event.invoice.id)
                        .values(
                            state="paid_elsewhere",
                            next_attempt_at=now,
                            end_reason="the merchant reported a successful payment",
                            updated_at=now,
                        )
                    )
                return
            decline = self._decline(last)
            if existing is None:
                first_failed = min(t.psp_transaction_created_at for t in event.transactions)
                conn.execute(
                    insert(store.invoices).values(
                        invoice_id=event.invoice.id,
                        customer_id=event.customer.id,
                        subscription_id=event.subscription.id,
                        psp=last.psp,
                        amount=str(last.amount),
                        currency=last.currency,
                        transaction_id=last.id,
                        original_psp_transaction_id=last.psp_transaction_id,
                        payment_method_id=last.payment_method_id,
                        scheme=last.scheme.lower(),
                        first_decline=json.dumps(decline.to_dict()),
                        last_decline=json.dumps(decline.to_dict()),
                        state="planning",
                        first_failed_at=first_failed,
                        dunning_ends_at=first_failed + self.dunning_window,
                        next_attempt_at=now,
                        attempts=0,
                        custom=json.dumps(event.custom) if event.custom else None,
                        updated_at=now,
                    )
                )
            elif existing.state in ("planning", "dunning", "awaiting_payment_method"):
                conn.execute(
                    update(store.invoices)
                    .where(store.invoices.c.invoice_id == event.invoice.id)
                    .values(
                        last_decline=json.dumps(decline.to_dict()),
                        payment_method_id=last.payment_method_id,
                        state="planning",
                        next_attempt_at=now,
                        updated_at=now,
                    )
                )

    def record_payment_method_update(
        self, update_: PaymentMethodUpdate, request_id: str, now: datetime
    ) -> None:
        """Store an update; invoices of that customer in dunning are re-planned now."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(store.payment_method_updates).values(
                    request_id=request_id,
                    received_at=now,
                    customer_id=update_.customer_id,
                    payment_method_id=update_.payment_method_id,
                    reason=update_.reason,
                )
            )
            conn.execute(
                update(store.invoices)
                .where(
                    store.invoices.c.customer_id == update_.customer_id,
                    store.invoices.c.state.in_(("dunning", "awaiting_payment_method")),
                )
                .values(state="planning", next_attempt_at=now, updated_at=now)
            )

    def _decline(self, transaction: Any) -> NormalizedDecline:
        return decline_from_transaction(transaction)

    @staticmethod
    def _card_attempt(conn: Any, **values: Any) -> None:
        amount = values.pop("amount")
        try:
            with conn.begin_nested():
                conn.execute(
                    insert(store.card_attempts).values(
                        amount=str(amount) if amount is not None else None, **values
                    )
                )
        except IntegrityError:
            pass  # the same PSP transaction reported twice: one row

    def record_card_attempt(self, **values: Any) -> None:
        """Record a charge the sandbox made (for per-card network budgets)."""
        with self.engine.begin() as conn:
            self._card_attempt(conn, **values)

    # -- engine side ----------------------------------------------------------------------------

    def invoice(self, invoice_id: str) -> InvoiceState | None:
        """The invoice's row, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(store.invoices).where(store.invoices.c.invoice_id == invoice_id)
            ).first()
        return InvoiceState.from_row(row) if row else None

    def due(self, now: datetime, limit: int = 50) -> list[str]:
        """Invoices whose next step is due and that no live claim holds."""
        inv = store.invoices.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(inv.invoice_id)
                .where(
                    inv.state.in_(DUE_STATES),
                    inv.next_attempt_at <= now,
                    or_(inv.claimed_until.is_(None), inv.claimed_until < now),
                )
                .order_by(inv.next_attempt_at)
                .limit(limit)
            ).all()
        return [r.invoice_id for r in rows]

    def next_due(self) -> datetime | None:
        """The earliest time anything is due: an invoice step or a webhook (re)delivery."""
        inv, w = store.invoices.c, store.webhooks.c
        with self.engine.connect() as conn:
            step = conn.execute(
                select(func.min(inv.next_attempt_at)).where(inv.state.in_(DUE_STATES))
            ).scalar_one()
            delivery = conn.execute(
                select(func.min(w.next_try_at)).where(
                    w.delivered_at.is_(None), w.gave_up_at.is_(None)
                )
            ).scalar_one()
        due = [t for t in (step, delivery) if t is not None]
        return min(due) if due else None

    def claim(self, invoice_id: str, worker: str, now: datetime, ttl: timedelta) -> bool:
        """Take the invoice for one step; False when another worker holds it."""
        inv = store.invoices.c
        with self.engine.begin() as conn:
            result = conn.execute(
                update(store.invoices)
                .where(
                    inv.invoice_id == invoice_id,
                    or_(inv.claimed_until.is_(None), inv.claimed_until < now),
                )
                .values(claimed_by=worker, claimed_until=now + ttl)
            )
        return result.rowcount == 1

    def release(self, invoice_id: str, **values: Any) -> None:
        """Drop the claim and write the step's outcome (state, next time, counters)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(store.invoices)
                .where(store.invoices.c.invoice_id == invoice_id)
                .values(claimed_by=None, claimed_until=None, **values)
            )

    def card_history(self, payment_method_id: str) -> list[CardAttempt]:
        """Every recorded charge on the card, oldest first."""
        c = store.card_attempts.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(store.card_attempts)
                .where(c.payment_method_id == payment_method_id)
                .order_by(c.at)
            ).all()
        return [
            CardAttempt(
                at=r.at,
                network=r.network,
                approved=r.approved,
                sent_to_network=r.sent_to_network,
                amount=Decimal(r.amount) if r.amount else None,
                payment_method_id=r.payment_method_id,
            )
            for r in rows
        ]

    def payment_method_updates_since(
        self, customer_id: str, since: datetime
    ) -> list[tuple[datetime, str, str | None]]:
        """The customer's payment-method updates since ``since``: (when, method, reason)."""
        c = store.payment_method_updates.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(c.received_at, c.payment_method_id, c.reason)
                .where(and_(c.customer_id == customer_id, c.received_at >= since))
                .order_by(c.received_at)
            ).all()
        return [(r.received_at, r.payment_method_id, r.reason) for r in rows]

    def unfinished_attempt(self, invoice_id: str) -> Any | None:
        """An attempt started but never finished (a crash mid-call), to re-run with its key."""
        a = store.attempts.c
        with self.engine.connect() as conn:
            return conn.execute(
                select(store.attempts).where(a.invoice_id == invoice_id, a.finished_at.is_(None))
            ).first()

    def start_attempt(self, **values: Any) -> None:
        """Write the attempt row before the PSP call."""
        with self.engine.begin() as conn:
            conn.execute(insert(store.attempts).values(**values))

    def finish_attempt(self, idempotency_key: str, **values: Any) -> None:
        """Record the PSP's answer."""
        with self.engine.begin() as conn:
            conn.execute(
                update(store.attempts)
                .where(store.attempts.c.idempotency_key == idempotency_key)
                .values(**values)
            )

    def attempts_of(self, invoice_id: str) -> Sequence[Any]:
        """The invoice's sandbox attempts, in order."""
        a = store.attempts.c
        with self.engine.connect() as conn:
            return conn.execute(
                select(store.attempts).where(a.invoice_id == invoice_id).order_by(a.attempt_no)
            ).all()
