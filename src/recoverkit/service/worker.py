"""The worker: inbox → translate → hooks → outbox + ledger → Recover.

Two stages, each a claim (a lease) followed by one transaction:

1. **Translate.** Claim pending inbox rows; for each, ``provider.translate`` then the
   ``amend_payment_event`` hooks; in one transaction queue the messages in the outbox (unique on
   endpoint + message dedupe key, so three PSP events for one attempt make one message), upsert
   the ledger (an older fact never overwrites a newer one) and mark the row done.
2. **Forward.** Claim pending outbox rows, send them to Recover in parallel, then record each
   result: sent (with Recover's ``request_id``), dead (400/403/404/415, or still failing after
   ``outbox_dead_letter_after``), or pending again after a jittered exponential backoff.

Normal operation sends each message once. A crash between Recover's answer and the commit makes
the row claimable again when its lease expires, so it is sent again: at-least-once after a crash.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row

from recoverkit.client import RecoverClient, backoff_delay, error_summary, is_retryable
from recoverkit.config import Settings
from recoverkit.errors import RecoverAPIError, RecoverkitError
from recoverkit.plugins import Plugins
from recoverkit.provider import ProviderEvent, Translation
from recoverkit.schema import PaymentEvent, dumps
from recoverkit.service.metrics import Metrics
from recoverkit.service.runtime import ProviderRegistry, utcnow
from recoverkit.store import inbox, outbox, repo

__all__ = ["Worker", "ledger_entry"]

log = logging.getLogger(__name__)


def ledger_entry(provider: str, event: ProviderEvent, payment: PaymentEvent) -> repo.LedgerEntry:
    """The ledger row a Payments event implies: the newest attempt decides the state.

    The PSP ids default to the wire ids (for Stripe and Braintree the invoice and subscription
    ids on the wire are the PSP's own); a provider needing others reads them from ``extra``.
    """
    latest = max(payment.transactions, key=lambda t: t.psp_transaction_created_at)
    return repo.LedgerEntry(
        invoice_id=payment.invoice.id,
        provider=provider,
        state="paid" if latest.success else "failed",
        last_event_at=latest.psp_transaction_created_at,
        customer_id=payment.customer.id,
        subscription_id=payment.subscription.id,
        psp_invoice_id=payment.invoice.id,
        psp_subscription_id=payment.subscription.id,
        psp_customer_id=payment.customer.psp_id,
        psp_transaction_id=latest.psp_transaction_id,
        payment_method_id=latest.payment_method_id,
        amount=format(latest.amount, "f"),
        currency=latest.currency,
        extra={"event_type": event.type, "object_id": event.object_id},
    )


_Translated = tuple[Translation, list[repo.OutboxMessage], list[repo.LedgerEntry]]


@dataclass(frozen=True, slots=True)
class _SendResult:
    row: Row[Any]
    request_id: str | None = None
    error: RecoverAPIError | None = None


class Worker:
    """Moves events from the inbox to Recover. Thread-safe to run one per thread or process."""

    def __init__(
        self,
        *,
        settings: Settings,
        plugins: Plugins,
        engine: Engine,
        providers: ProviderRegistry,
        client: RecoverClient,
        metrics: Metrics | None = None,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.plugins = plugins
        self.engine = engine
        self.providers = providers
        self.client = client
        self.metrics = metrics or Metrics()
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self._pool = ThreadPoolExecutor(
            max_workers=settings.recover_concurrency, thread_name_prefix="recoverkit-send"
        )

    # -- loop -----------------------------------------------------------------------------------

    def run_once(self) -> int:
        """One translate pass and one forward pass; the number of rows handled."""
        return self.translate_pending() + self.forward_pending()

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; idle for ``worker_poll_interval`` when nothing is due."""
        log.info("worker %s started", self.worker_id)
        while not stop.is_set():
            try:
                handled = self.run_once()
            except Exception:  # the database may be briefly unavailable: log, wait, go on
                log.exception("worker pass failed; retrying")
                handled = 0
            if not handled:
                stop.wait(self.settings.worker_poll_interval)
        log.info("worker %s stopped", self.worker_id)

    def close(self) -> None:
        """Stop the sender threads."""
        self._pool.shutdown(wait=True)

    # -- translate ------------------------------------------------------------------------------

    def translate_pending(self) -> int:
        """Translate up to ``worker_batch_size`` due inbox rows."""
        s = self.settings
        rows = repo.claim(
            self.engine,
            inbox,
            self.worker_id,
            now=self.clock(),
            lease=s.worker_lease_seconds,
            limit=s.worker_batch_size,
        )
        # Translate outside any transaction (a provider may call its PSP), then record every
        # row's outcome in one transaction: one commit per batch, not per event.
        outcomes = [self._translate(row) for row in rows]
        now = self.clock()
        updates: list[tuple[int, dict[str, Any]]] = []
        with self.engine.begin() as conn:
            # Rows whose lease expired belong to another worker now: leave them alone.
            mine = repo.owned(conn, inbox, self.worker_id, [r.id for r in rows])
            messages: list[repo.OutboxMessage] = []
            entries: list[repo.LedgerEntry] = []
            for row, (event, result) in zip(rows, outcomes, strict=True):
                if row.id not in mine:
                    continue
                attempts = int(row.attempts) + 1
                if isinstance(result, Exception):
                    updates.append((row.id, self._failure(event, attempts, result, now)))
                    continue
                translation, row_messages, row_entries = result
                ignored = translation.ignored
                updates.append(
                    (
                        row.id,
                        {
                            "state": "ignored" if ignored is not None else "done",
                            "attempts": attempts,
                            "last_error": ignored,
                        },
                    )
                )
                messages += [replace(m, inbox_id=row.id) for m in row_messages]
                entries += row_entries
            repo.finish_many(conn, inbox, self.worker_id, updates)
            repo.enqueue_outbox(conn, messages, now)
            repo.upsert_ledger(conn, entries, now)
        return len(rows)

    def _translate(self, row: Row[Any]) -> tuple[ProviderEvent, _Translated | Exception]:
        event = repo.event_from_row(row)
        try:
            translation = self.providers.get(event.provider).translate(event)
            messages, entries = self._messages(event, translation)
        except Exception as exc:
            return event, exc
        return event, (translation, messages, entries)

    def _messages(
        self, event: ProviderEvent, translation: Translation
    ) -> tuple[list[repo.OutboxMessage], list[repo.LedgerEntry]]:
        messages: list[repo.OutboxMessage] = []
        entries: list[repo.LedgerEntry] = []
        for message in translation.messages:
            body = message.body
            invoice_id = None
            if isinstance(body, PaymentEvent):
                body = self.plugins.amend_payment_event(event, body)
                entries.append(ledger_entry(event.provider, event, body))
                invoice_id = body.invoice.id
            messages.append(
                repo.OutboxMessage(
                    provider=event.provider,
                    endpoint=message.endpoint,
                    dedupe_key=message.dedupe_key,
                    body=dumps(body),
                    invoice_id=invoice_id,
                )
            )
        return messages, entries

    def _failure(
        self, event: ProviderEvent, attempts: int, exc: Exception, now: datetime
    ) -> dict[str, Any]:
        """The inbox update for a failed translation: retry later, or give up."""
        s = self.settings
        self.metrics.translation_errors.labels(event.provider).inc()
        final = attempts >= s.inbox_max_attempts
        log.warning(
            "translating %r failed (attempt %d%s): %s",
            event,
            attempts,
            ", giving up" if final else "",
            exc,
            exc_info=not isinstance(exc, RecoverkitError),
        )
        delay = backoff_delay(attempts, base=s.outbox_backoff_base, cap=s.outbox_backoff_cap)
        return {
            "state": "failed" if final else "pending",
            "attempts": attempts,
            "next_attempt_at": now + timedelta(seconds=delay),
            "last_error": f"{type(exc).__name__}: {exc}"[:2000],
        }

    # -- forward --------------------------------------------------------------------------------

    def forward_pending(self) -> int:
        """Send up to ``worker_batch_size`` due outbox rows to Recover."""
        s = self.settings
        rows = repo.claim(
            self.engine,
            outbox,
            self.worker_id,
            now=self.clock(),
            lease=s.worker_lease_seconds,
            limit=s.worker_batch_size,
        )
        if not rows:
            return 0
        results = list(self._pool.map(self._send, rows))
        now = self.clock()
        with self.engine.begin() as conn:
            updates = [(r.row.id, self._outcome(r, now)) for r in results]
            repo.finish_many(conn, outbox, self.worker_id, updates)
        return len(rows)

    def _send(self, row: Row[Any]) -> _SendResult:
        try:
            answer = self.client.send(row.endpoint, row.body)
        except RecoverAPIError as exc:
            return _SendResult(row, error=exc)
        return _SendResult(row, request_id=answer.request_id)

    def _outcome(self, result: _SendResult, now: datetime) -> dict[str, object]:
        s, row = self.settings, result.row
        attempts = int(row.attempts) + 1
        endpoint = str(row.endpoint)
        if result.error is None:
            self.metrics.forwarded.labels(endpoint).inc()
            age = (now - row.created_at).total_seconds()
            self.metrics.forward_latency.labels(endpoint).observe(max(age, 0.0))
            return {
                "state": "sent",
                "attempts": attempts,
                "sent_at": now,
                "request_id": result.request_id,
                "last_status": 200,
                "last_error": None,
            }
        exc = result.error
        self.metrics.recover_errors.labels(str(exc.status_code)).inc()
        expired = (now - row.created_at).total_seconds() > s.outbox_dead_letter_after
        if not is_retryable(exc) or expired:
            self.metrics.dead_letters.labels(endpoint).inc()
            log.error("outbox row %s dead-lettered: %s", row.id, error_summary(exc))
            state = "dead"
        else:
            state = "pending"
        delay = backoff_delay(attempts, base=s.outbox_backoff_base, cap=s.outbox_backoff_cap)
        return {
            "state": state,
            "attempts": attempts,
            "next_attempt_at": now + timedelta(seconds=delay),
            "request_id": exc.request_id,
            "last_status": exc.status_code,
            "last_error": error_summary(exc)[:2000],
        }
