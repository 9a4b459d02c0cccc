"""The worker: inbox → translate → hooks → outbox + ledger → Recover.

Two stages, each a claim (a lease) followed by recording the outcomes:

1. **Translate.** Claim pending inbox rows; for each, ``provider.translate`` then the
   ``amend_payment_event`` hooks; in one transaction queue the messages in the outbox (unique on
   endpoint + message dedupe key, so three PSP events for one attempt make one message), upsert
   the ledger (an older fact never overwrites a newer one) and mark the row done.
2. **Forward.** Claim pending outbox rows, send them to Recover in parallel (each with its dedupe
   key as ``Idempotency-Key``), and record each result as its answer arrives — answers that
   arrive together share one transaction: sent (with Recover's ``request_id``), dead
   (400/403/404/415, or still failing after ``outbox_dead_letter_after``), or pending again after
   a jittered exponential backoff.

**Leases.** A claim is a short lease (``worker_lease_seconds``) that a heartbeat thread renews
every quarter lease while the worker still holds the row. A worker killed with ``kill -9`` stops
renewing, so its rows are claimable again within one lease, not after a long fixed timeout.

**Outages.** Every HTTP call feeds a :class:`~recoverkit.service.breaker.CircuitBreaker`. When
Recover fails across calls the breaker opens: queued messages are released untouched (no attempt
counted), quick tries stop, and one probe message goes out per cool-down until Recover answers.

Normal operation sends each message once. A crash between Recover's answer and the commit of that
answer makes the row claimable again when its lease expires, so that message (only those in
flight at the crash) is sent again, with the same ``Idempotency-Key``: at-least-once.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Row, Table, update

from recoverkit.client import RecoverClient, backoff_delay, error_summary, is_retryable
from recoverkit.config import Settings
from recoverkit.errors import RecoverAPIError, RecoverkitError
from recoverkit.plugins import Plugins
from recoverkit.provider import ProviderEvent, Translation
from recoverkit.schema import PaymentEvent, dumps
from recoverkit.service.breaker import CircuitBreaker, State
from recoverkit.service.metrics import Metrics
from recoverkit.service.psp_names import check_psp_names
from recoverkit.service.retention import RetentionSchedule
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
    skipped: bool = False  # not sent: the breaker opened before its turn


#: Answers recorded in one transaction at most (a small group: a kill repeats at most these).
_GROUP = 32


class _Leases:
    """The rows this worker holds, and the heartbeat that keeps their leases alive."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._held: dict[str, set[int]] = {"inbox": set(), "outbox": set()}
        self._tables: dict[str, Table] = {"inbox": inbox, "outbox": outbox}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, table: Table, ids: Iterable[int]) -> None:
        with self._lock:
            self._held[table.name].update(ids)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._beat, name="recoverkit-lease-heartbeat", daemon=True
                )
                self._thread.start()

    def release(self, table: Table, ids: Iterable[int]) -> None:
        with self._lock:
            self._held[table.name].difference_update(ids)

    def renew(self) -> int:
        """Extend every held row's lease by ``worker_lease_seconds`` from now; rows renewed."""
        w = self._worker
        with self._lock:
            held = {name: sorted(ids) for name, ids in self._held.items() if ids}
        if not held:
            return 0
        until = w.clock() + timedelta(seconds=w.settings.worker_lease_seconds)
        renewed = 0
        with w.engine.begin() as conn:
            for name, ids in held.items():
                table = self._tables[name]
                for start in range(0, len(ids), 500):
                    chunk = ids[start : start + 500]
                    stmt = (
                        update(table)
                        .where(table.c.id.in_(chunk), table.c.claimed_by == w.worker_id)
                        .values(claimed_until=until)
                    )
                    renewed += conn.execute(stmt).rowcount or 0
        return renewed

    def _beat(self) -> None:
        interval = self._worker.settings.worker_lease_seconds / 4
        while not self._stop.wait(interval):
            try:
                self.renew()
            except Exception:  # the database may be briefly unavailable; the next beat retries
                log.warning("could not renew the worker's leases", exc_info=True)

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(10)


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
        self.leases = _Leases(self)
        self.breaker = CircuitBreaker(
            threshold=settings.recover_breaker_threshold,
            cooldown=settings.recover_breaker_cooldown,
            cooldown_cap=settings.recover_breaker_cooldown_cap,
            on_change=self._breaker_changed,
        )
        self.metrics.breaker_state.set(0)

    # -- loop -----------------------------------------------------------------------------------

    def run_once(self) -> int:
        """One translate pass and one forward pass; the number of rows handled."""
        return self.translate_pending() + self.forward_pending()

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; idle for ``worker_poll_interval`` when nothing is due."""
        log.info(
            "worker %s started (batch %d, concurrency %d, lease %.1f s)",
            self.worker_id,
            self.settings.worker_batch_size,
            self.settings.recover_concurrency,
            self.settings.worker_lease_seconds,
            extra={"event": "worker_started", "worker_id": self.worker_id},
        )
        # Retention (docs/security.md): purge every retention_interval seconds.
        purge = RetentionSchedule(self.engine, self.settings)
        while not stop.is_set():
            try:
                handled = self.run_once()
                purge.tick(self.clock())
            except Exception:  # the database may be briefly unavailable: log, wait, go on
                log.exception("worker pass failed; retrying")
                handled = 0
            if not handled:
                idle = self.settings.worker_poll_interval
                wait = self.breaker.seconds_until_probe()
                stop.wait(min(idle, wait) if wait > 0 else idle)
        log.info("worker %s stopped", self.worker_id, extra={"event": "worker_stopped"})

    def close(self) -> None:
        """Stop the heartbeat and the sender threads."""
        self.leases.close()
        self._pool.shutdown(wait=True)

    def _breaker_changed(self, state: State) -> None:
        self.metrics.breaker_state.set({"closed": 0, "open": 1, "half_open": 2}[state])

    def _claim(self, table: Table, limit: int) -> list[Row[Any]]:
        rows = repo.claim(
            self.engine,
            table,
            self.worker_id,
            now=self.clock(),
            lease=self.settings.worker_lease_seconds,
            limit=limit,
        )
        self.leases.hold(table, (r.id for r in rows))
        return rows

    # -- translate ------------------------------------------------------------------------------

    def translate_pending(self) -> int:
        """Translate up to ``worker_batch_size`` due inbox rows."""
        rows = self._claim(inbox, self.settings.worker_batch_size)
        if not rows:
            return 0
        try:
            self._translate_rows(rows)
        finally:
            self.leases.release(inbox, (r.id for r in rows))
        return len(rows)

    def _translate_rows(self, rows: list[Row[Any]]) -> None:
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
                check_psp_names(body, self.settings.extra_psp_names)
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
            "translating %s event %s (%s) failed (attempt %d%s): %s",
            event.provider,
            event.dedupe_key,
            event.type,
            attempts,
            ", giving up" if final else "",
            exc,
            exc_info=not isinstance(exc, RecoverkitError),
            extra={
                "event": "translation_failed",
                "provider": event.provider,
                "event_type": event.type,
                "dedupe_key": event.dedupe_key,
                "attempt": attempts,
                "final": final,
            },
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
        """Send up to ``worker_batch_size`` due outbox rows to Recover (one probe when half-open).

        Answers are recorded as they arrive: whatever arrived while the previous group was being
        committed makes the next group (at most ``_GROUP``), so a kill repeats only the requests
        in flight and the answers not yet committed, never a whole batch.
        """
        admitted = self.breaker.admit()
        if admitted == 0:
            return 0
        probe = admitted == 1
        rows: list[Row[Any]] = []
        try:
            rows = self._claim(outbox, 1 if probe else self.settings.worker_batch_size)
            if not rows:
                return 0
            if probe:
                self.metrics.breaker_probes.inc()
                log.info(
                    "probing Recover with outbox row %s",
                    rows[0].id,
                    extra={"event": "recover_probe", "outbox_id": rows[0].id},
                )
            answers: queue.SimpleQueue[Future[_SendResult]] = queue.SimpleQueue()
            for row in rows:
                self._pool.submit(self._send, row).add_done_callback(answers.put)
            left = len(rows)
            while left:
                group = [answers.get().result()]
                while len(group) < _GROUP:
                    try:
                        group.append(answers.get_nowait().result())
                    except queue.Empty:
                        break
                left -= len(group)
                self._record(group)
            return len(rows)
        finally:
            if probe:
                self.breaker.probe_done()
            if rows:  # an unexpected error: stop renewing; the rows come back after a lease
                self.leases.release(outbox, (r.id for r in rows))

    def _record(self, results: list[_SendResult]) -> None:
        now = self.clock()
        updates = [(r.row.id, self._outcome(r, now)) for r in results]
        with self.engine.begin() as conn:
            repo.finish_many(conn, outbox, self.worker_id, updates)
        self.leases.release(outbox, (r.row.id for r in results))

    def _send(self, row: Row[Any]) -> _SendResult:
        if not self.breaker.sending_allowed():
            return _SendResult(row, skipped=True)
        try:
            answer = self.client.send(
                row.endpoint,
                row.body,
                idempotency_key=str(row.dedupe_key),
                keep_trying=self.breaker.quick_tries_allowed,
                on_call=self._observe,
            )
        except RecoverAPIError as exc:
            return _SendResult(row, error=exc)
        return _SendResult(row, request_id=answer.request_id)

    def _observe(self, endpoint: str, status: int) -> None:
        """Every HTTP call: count it and feed the breaker."""
        self.metrics.recover_requests.labels(endpoint, str(status)).inc()
        self.breaker.record(status)

    def _outcome(self, result: _SendResult, now: datetime) -> dict[str, object]:
        s, row = self.settings, result.row
        if result.skipped:  # released untouched: due again as soon as the breaker allows
            return {}
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
        self.breaker.last_error = error_summary(exc)[:300]
        expired = (now - row.created_at).total_seconds() > s.outbox_dead_letter_after
        if not is_retryable(exc) or expired:
            self.metrics.dead_letters.labels(endpoint).inc()
            log.error(
                "dead letter: outbox row %s (%s, invoice %s, dedupe key %s), %d attempt(s): %s",
                row.id,
                endpoint,
                row.invoice_id,
                row.dedupe_key,
                attempts,
                error_summary(exc),
                extra={
                    "event": "dead_letter",
                    "outbox_id": row.id,
                    "endpoint": endpoint,
                    "invoice_id": row.invoice_id,
                    "status": exc.status_code,
                },
            )
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
