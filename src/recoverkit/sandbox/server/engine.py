"""The dunning engine: plans each failed invoice, retries it through the PSP, tells the merchant.

One ``step`` handles one due invoice under a claim, so at most one attempt is in flight per
invoice. Before charging it asks the merchant's RetryStatus endpoint and obeys ``retry``,
``amount`` and ``payment_methods``; the charge goes through the provider plugin's
``execute_retry`` with an idempotency key derived from (invoice, attempt). An attempt row is
written before the PSP call; a crash leaves it unfinished and the next step re-runs it with the
same key, so a customer is never charged twice.

A crash *after* the PSP's answer was recorded but before the invoice was advanced (or before its
Retry Result was queued) is completed on restart: the next step finds the finished attempt the
invoice has not counted yet and applies it instead of asking for a new charge, and the first tick
of a process queues any Retry Result a finished attempt still lacks. A Retry Result's dedupe id
is derived from the attempt's idempotency key and unique in the store, so completing twice still
queues it once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from recoverkit.declines import NormalizedDecline
from recoverkit.errors import ProviderError
from recoverkit.provider import InvoiceRef, Provider, RetryAttempt, RetryInstruction
from recoverkit.rules import NetworkRules
from recoverkit.sandbox.clock import SimulatedClock
from recoverkit.sandbox.policies.base import (
    Retry,
    RetryPolicy,
    guarded_next_attempt,
)
from recoverkit.sandbox.server import store
from recoverkit.sandbox.server.context import decline_from_dict, policy_context
from recoverkit.sandbox.server.dunning import DUE_STATES as DUE_INVOICE_STATES
from recoverkit.sandbox.server.dunning import DunningBook, InvoiceState
from recoverkit.sandbox.server.merchant import (
    InvoiceUnknownError,
    MerchantClient,
    MerchantUnavailableError,
    new_dedupe_id,
)
from recoverkit.sandbox.server.settings import SandboxSettings
from recoverkit.schema import EndOfDunning, PspTransaction, RetryResults, dumps

__all__ = ["DunningEngine", "resume_simulated_clock", "retry_results_dedupe_id"]

logger = logging.getLogger("recoverkit.sandbox")


def resume_simulated_clock(engine: DunningEngine, clock: SimulatedClock) -> None:
    """Start ``clock`` no earlier than the latest simulated time the store saw, and save it on
    every tick from now on (``sandbox serve --speed``)."""
    db = engine.book.engine
    at = store.resume_time(db)
    if at is not None:
        clock.advance_to(at)
    engine.clock_saver = lambda now: store.save_clock(db, now)


def retry_results_dedupe_id(idempotency_key: str) -> str:
    """The Retry Result's dedupe id for an attempt: 32 hex characters, the same every time."""
    return hashlib.sha256(f"retry_results:{idempotency_key}".encode()).hexdigest()[:32]


class DunningEngine:
    """Runs due steps and webhook deliveries; the caller supplies ``now``."""

    def __init__(
        self,
        settings: SandboxSettings,
        book: DunningBook,
        policy: RetryPolicy,
        providers: Callable[[str], Provider],
        merchant: MerchantClient,
    ) -> None:
        self.settings = settings
        self.book = book
        self.policy = policy
        self.rules = NetworkRules(visa_reattempts_per_30_days=settings.visa_reattempts_per_30_days)
        self.providers = providers
        self.merchant = merchant
        self.worker = uuid.uuid4().hex[:12]
        self._swept = False
        #: Called with ``now`` on every tick (``serve --speed`` saves the simulated clock).
        self.clock_saver: Callable[[datetime], None] | None = None

    # -- the loop -------------------------------------------------------------------------------

    def tick(self, now: datetime) -> int:
        """Run every due step and delivery once; return how many things happened."""
        done = 0
        if self.clock_saver is not None:
            self.clock_saver(now)
        if not self._swept:  # a previous process may have died between a charge and its webhook
            done += self.complete_finished_attempts(now)
            self._swept = True
        for invoice_id in self.book.due(now):
            if self.book.claim(invoice_id, self.worker, now, self.settings.claim_ttl):
                try:
                    self.step(invoice_id, now)
                except Exception:
                    logger.exception("sandbox: step for invoice %s failed", invoice_id)
                    self.book.release(invoice_id, next_attempt_at=now + timedelta(minutes=5))
                done += 1
        return done + self.deliver_webhooks(now)

    def step(self, invoice_id: str, now: datetime) -> None:
        """Advance one claimed invoice."""
        invoice = self.book.invoice(invoice_id)
        if invoice is None:
            return
        if invoice.state == "paid_elsewhere":
            self._end(invoice, now, recovered=True, reason=invoice.end_reason or "paid")
        elif invoice.state == "planning":
            decline = decline_from_dict(invoice.last_decline or {})
            self._schedule(invoice, decline, now, attempts=invoice.attempts)
        elif invoice.state == "awaiting_payment_method" or now >= invoice.dunning_ends_at:
            self._end(invoice, now, recovered=False, reason="the dunning window ended")
        else:
            self._attempt(invoice, now)

    # -- planning -------------------------------------------------------------------------------

    def _schedule(
        self, invoice: InvoiceState, decline: NormalizedDecline, now: datetime, *, attempts: int
    ) -> bool:
        """Plan the next attempt through the guard; False when dunning ends or waits for a card."""
        guarded = guarded_next_attempt(
            self.policy, policy_context(self.book, invoice, now=now, latest=decline), self.rules
        )
        decision = guarded.decision
        common = {
            "attempts": attempts,
            "last_decline": json.dumps(decline.to_dict()),
            "updated_at": now,
        }
        if isinstance(decision, Retry):
            self.book.release(
                invoice.invoice_id,
                state="dunning",
                next_attempt_at=decision.at,
                end_reason=decision.reason,
                **common,
            )
            return True
        if decision.awaiting_payment_method and now < invoice.dunning_ends_at:
            # Wait for a card update (which re-plans at once) or the end of the window.
            self.book.release(
                invoice.invoice_id,
                state="awaiting_payment_method",
                next_attempt_at=invoice.dunning_ends_at,
                end_reason=decision.reason,
                **common,
            )
            return True
        self._end(invoice, now, recovered=False, reason=decision.reason, attempts=attempts)
        return False

    # -- attempting -----------------------------------------------------------------------------

    def _attempt(self, invoice: InvoiceState, now: datetime) -> None:
        finished = self._uncounted_attempt(invoice)
        if finished is not None:  # a crash after the PSP's answer: apply it, charge nothing
            instruction, result = self._replayed(invoice, finished)
            logger.warning(
                "sandbox: completing attempt %d of invoice %s, answered before a crash",
                finished.attempt_no,
                invoice.invoice_id,
            )
            self._record(invoice, instruction, result, now, already_finished=True)
            return
        pending = self.book.unfinished_attempt(invoice.invoice_id)
        if pending is not None:  # a crash mid-call: same key, never a new charge
            instruction = self._instruction(
                invoice,
                pending.attempt_no,
                pending.idempotency_key,
                Decimal(pending.amount),
                pending.payment_method_id,
            )
        else:
            instruction_or_none = self._ask_merchant(invoice, now)
            if instruction_or_none is None:
                return
            instruction = instruction_or_none
            self.book.start_attempt(
                invoice_id=invoice.invoice_id,
                attempt_no=instruction.attempt,
                idempotency_key=instruction.idempotency_key,
                amount=str(instruction.amount),
                currency=instruction.currency,
                payment_method_id=instruction.payment_method_id or invoice.payment_method_id,
                started_at=now,
            )
        try:
            result = self.providers(invoice.psp).execute_retry(instruction)
        except ProviderError as exc:
            logger.warning("sandbox: retry of %s not settled: %s", invoice.invoice_id, exc)
            self.book.finish_attempt(instruction.idempotency_key, error=str(exc)[:500])
            self.book.release(invoice.invoice_id, next_attempt_at=now + timedelta(minutes=10))
            return
        self._record(invoice, instruction, result, now)

    def _uncounted_attempt(self, invoice: InvoiceState) -> Any | None:
        """A finished attempt with a PSP answer that the invoice has not counted yet."""
        for row in reversed(self.book.attempts_of(invoice.invoice_id)):
            if row.finished_at is not None and row.attempt_no > invoice.attempts:
                return row
        return None

    def _replayed(self, invoice: InvoiceState, row: Any) -> tuple[RetryInstruction, RetryAttempt]:
        """The instruction and the PSP's answer of a recorded attempt."""
        instruction = self._instruction(
            invoice, row.attempt_no, row.idempotency_key, Decimal(row.amount), row.payment_method_id
        )
        result = RetryAttempt(
            success=bool(row.success),
            psp_transaction_id=row.psp_transaction_id,
            amount=Decimal(row.amount),
            currency=row.currency,
            payment_method_id=row.payment_method_id,
            network_transaction_id=row.network_transaction_id,
            decline=decline_from_dict(json.loads(row.decline)) if row.decline else None,
            created_at=row.finished_at,
        )
        return instruction, result

    def complete_finished_attempts(self, now: datetime) -> int:
        """Queue the Retry Result of every counted, finished attempt that lacks one.

        Only an invoice's latest attempt can lack it (the crash came between advancing the
        invoice and queueing); attempts the invoice has not counted are completed by its next
        step. Returns how many Retry Results were queued.
        """
        a, inv, w = store.attempts.c, store.invoices.c, store.webhooks.c
        with self.book.engine.connect() as conn:
            rows = conn.execute(
                select(store.attempts, inv.state.label("invoice_state"))
                .join(store.invoices, inv.invoice_id == a.invoice_id)
                .where(a.finished_at.is_not(None), a.attempt_no == inv.attempts)
            ).all()
            if not rows:
                return 0
            # Each attempt queues one Retry Result, so an invoice with fewer Retry Results than
            # counted attempts lost its latest one.
            counted = conn.execute(
                select(w.invoice_id, func.count())
                .where(
                    w.kind == "retry_results",
                    w.invoice_id.in_({r.invoice_id for r in rows}),
                )
                .group_by(w.invoice_id)
            ).all()
        sent = {str(invoice_id): int(n) for invoice_id, n in counted}
        queued = 0
        for row in rows:
            if sent.get(row.invoice_id, 0) >= row.attempt_no:
                continue
            invoice = self.book.invoice(row.invoice_id)
            if invoice is None:
                continue
            instruction, result = self._replayed(invoice, row)
            complete = row.invoice_state not in DUE_INVOICE_STATES
            logger.warning(
                "sandbox: queueing the Retry Result of attempt %d of invoice %s (lost in a crash)",
                row.attempt_no,
                row.invoice_id,
            )
            queued += self._retry_results(
                invoice, instruction, result, now, dunning_complete=complete
            )
        return queued

    def _instruction(
        self, invoice: InvoiceState, attempt: int, key: str, amount: Decimal, pm: str
    ) -> RetryInstruction:
        ref = InvoiceRef(
            provider=invoice.psp,
            invoice_id=invoice.invoice_id,
            customer_id=invoice.customer_id,
            subscription_id=invoice.subscription_id,
            psp_transaction_id=invoice.original_psp_transaction_id,
            payment_method_id=pm,
            amount=invoice.amount,
            currency=invoice.currency,
        )
        return RetryInstruction(ref, attempt, key, amount, invoice.currency, pm)

    def _ask_merchant(self, invoice: InvoiceState, now: datetime) -> RetryInstruction | None:
        try:
            status = self.merchant.retry_status(invoice.invoice_id, invoice.custom)
        except InvoiceUnknownError as exc:
            self._end(invoice, now, recovered=False, reason=str(exc))
            return None
        except MerchantUnavailableError as exc:
            logger.warning("sandbox: %s; trying again later", exc)
            self.book.release(
                invoice.invoice_id, next_attempt_at=now + self.settings.retry_status_backoff
            )
            return None
        if not status.retry:
            self._end(
                invoice, now, recovered=False, reason=f"merchant refused: {status.reason or '-'}"
            )
            return None
        attempt = invoice.attempts + 1
        key = f"recoverkit-sandbox:{invoice.invoice_id}:{attempt}"
        amount = status.amount if status.amount is not None else invoice.amount
        pm = status.payment_methods[0].id if status.payment_methods else invoice.payment_method_id
        return self._instruction(invoice, attempt, key, amount, pm)

    def _record(
        self,
        invoice: InvoiceState,
        instruction: RetryInstruction,
        result: RetryAttempt,
        now: datetime,
        *,
        already_finished: bool = False,
    ) -> None:
        decline = result.decline
        if not already_finished:
            self.book.finish_attempt(
                instruction.idempotency_key,
                finished_at=now,
                success=result.success,
                psp_transaction_id=result.psp_transaction_id,
                network_transaction_id=result.network_transaction_id,
                decline=json.dumps(decline.to_dict()) if decline else None,
                error=None,
            )
        pm = instruction.payment_method_id or invoice.payment_method_id
        self.book.record_card_attempt(
            ref=f"{invoice.psp}:{result.psp_transaction_id or instruction.idempotency_key}",
            payment_method_id=pm,
            invoice_id=invoice.invoice_id,
            at=result.created_at or now,
            network=(decline.network if decline else None) or invoice.scheme,
            approved=result.success,
            sent_to_network=decline.sent_to_network if decline else True,
            amount=instruction.amount,
        )
        attempts = instruction.attempt
        if result.success:
            self._retry_results(invoice, instruction, result, now, dunning_complete=True)
            self._end(invoice, now, recovered=True, reason="recovered", attempts=attempts)
            return
        latest = decline or decline_from_dict(invoice.last_decline or {})
        refreshed = self.book.invoice(invoice.invoice_id) or invoice
        carry_on = self._schedule(refreshed, latest, now, attempts=attempts)
        self._retry_results(invoice, instruction, result, now, dunning_complete=not carry_on)

    # -- webhooks -------------------------------------------------------------------------------

    def _retry_results(
        self,
        invoice: InvoiceState,
        instruction: RetryInstruction,
        result: RetryAttempt,
        now: datetime,
        *,
        dunning_complete: bool,
    ) -> int:
        body = RetryResults(
            timestamp=now,
            butter_id=str(uuid.uuid4().int % 10**19),
            customer_id=invoice.customer_id,
            subscription_id=invoice.subscription_id,
            invoice_id=invoice.invoice_id,
            transaction_id=invoice.transaction_id,
            original_psp_transaction_id=invoice.original_psp_transaction_id,
            psp_transactions=[
                PspTransaction(
                    psp_transaction_id=result.psp_transaction_id or instruction.idempotency_key,
                    network_transaction_id=result.network_transaction_id,
                    merchant_payment_method_id=instruction.payment_method_id,
                    success=result.success,
                )
            ],
            original_amount=invoice.amount,
            amount_collected=result.amount if result.success else Decimal("0"),
            currency=invoice.currency,
            success=result.success,
            dunning_complete=dunning_complete,
            custom=invoice.custom,
        )
        key = retry_results_dedupe_id(instruction.idempotency_key)
        return self._queue("retry_results", invoice.invoice_id, dumps(body), now, dedupe_id=key)

    def _end(
        self,
        invoice: InvoiceState,
        now: datetime,
        *,
        recovered: bool,
        reason: str,
        attempts: int | None = None,
    ) -> None:
        notice = EndOfDunning(
            timestamp=now, invoice_id=invoice.invoice_id, recovered=recovered, custom=invoice.custom
        )
        self._queue("end_of_dunning", invoice.invoice_id, dumps(notice), now)
        self.book.release(
            invoice.invoice_id,
            state="recovered" if recovered and reason == "recovered" else "ended",
            next_attempt_at=None,
            end_reason=reason,
            attempts=invoice.attempts if attempts is None else attempts,
            updated_at=now,
        )

    def _queue(
        self, kind: str, invoice_id: str, body: str, now: datetime, dedupe_id: str | None = None
    ) -> int:
        """Queue a webhook; 0 when one with the same ``dedupe_id`` is already queued."""
        try:
            with self.book.engine.begin() as conn:
                conn.execute(
                    insert(store.webhooks).values(
                        kind=kind,
                        invoice_id=invoice_id,
                        dedupe_id=dedupe_id or new_dedupe_id(),
                        body=body,
                        created_at=now,
                        next_try_at=now,
                        tries=0,
                    )
                )
        except IntegrityError:
            return 0
        return 1

    def deliver_webhooks(self, now: datetime, limit: int = 50) -> int:
        """Deliver due webhooks; a failure is retried every ``redelivery_interval`` for
        ``redelivery_window`` (Butter: every 12 hours for 7 days)."""
        w = store.webhooks.c
        with self.book.engine.connect() as conn:
            rows = conn.execute(
                select(store.webhooks)
                .where(w.delivered_at.is_(None), w.gave_up_at.is_(None), w.next_try_at <= now)
                .order_by(w.id)
                .limit(limit)
            ).all()
        for row in rows:
            outcome = self.merchant.deliver(row.kind, row.body, row.dedupe_id, now)
            values: dict[str, object] = {"tries": row.tries + 1, "last_status": outcome.status}
            if outcome.delivered:
                values["delivered_at"] = now
            else:
                values["last_error"] = outcome.error
                retry_at = now + self.settings.redelivery_interval
                if retry_at > row.created_at + self.settings.redelivery_window:
                    values["gave_up_at"] = now
                else:
                    values["next_try_at"] = retry_at
            with self.book.engine.begin() as conn:
                conn.execute(update(store.webhooks).where(w.id == row.id).values(**values))
        return len(rows)
