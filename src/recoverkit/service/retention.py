"""Retention and erasure: keep only what dedupe and the audit trail need, for as long as needed.

- :func:`purge` applies the retention settings (``recoverkit purge``, and every
  ``retention_interval`` seconds from the worker through :class:`RetentionSchedule`):

  * an inbox row's raw payload is dropped ``inbox_payload_retention`` after receipt once it is
    translated (state ``done``, ``ignored`` or ``failed``), with its error text (which may quote
    the payload); the row keeps its ids, digest, state and times, so a redelivery is still
    recognised as a duplicate;
  * ``sent`` / ``dead`` outbox rows are deleted ``outbox_retention`` after they were queued, and
    rows an erasure covered are deleted as soon as they are sent or dead;
  * ledger rows are deleted ``ledger_retention`` after their last update;
  * Retry Results / End of Dunning dedupe rows are deleted ``butter_webhook_retention`` after
    receipt (an older replay is refused as expired by ``butter_max_expiry_ahead``).

- :func:`forget` erases one customer (``recoverkit forget --customer ID [--provider P]``):
  their ledger rows are anonymised, the inbox payloads that name them or their invoices are
  dropped, their outbox messages are deleted — or, when not yet sent, marked and deleted once
  sent (Recover still needs the failure it was told about).

Every function returns counts by action; ``dry_run`` counts without changing anything.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, delete, func, or_, select, update

from recoverkit.config import Settings
from recoverkit.store import crypto
from recoverkit.store.tables import butter_webhooks, inbox, ledger, outbox

__all__ = ["RetentionSchedule", "forget", "purge", "rotate_keys"]

log = logging.getLogger(__name__)

_TRANSLATED = ("done", "ignored", "failed")
_FINISHED = ("sent", "dead")
#: What a dropped payload is replaced with (``inbox.data`` is NOT NULL; ``null`` is valid JSON).
PURGED = "null"


def _count(conn: Connection, table: Any, where: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table).where(where)).scalar_one())


def _apply(conn: Connection, stmt: Any, table: Any, where: Any, dry_run: bool) -> int:
    if dry_run:
        return _count(conn, table, where)
    return int(conn.execute(stmt.where(where)).rowcount or 0)


def purge(
    engine: Engine, settings: Settings, now: datetime, *, dry_run: bool = False
) -> dict[str, int]:
    """Apply the retention settings once; counts of what was (or would be) purged."""
    s = settings
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        where = and_(
            inbox.c.state.in_(_TRANSLATED),
            inbox.c.payload_purged_at.is_(None),
            inbox.c.received_at < now - timedelta(seconds=s.inbox_payload_retention),
        )
        stmt = update(inbox).values(data=PURGED, payload_purged_at=now, last_error=None)
        counts["inbox payloads dropped"] = _apply(conn, stmt, inbox, where, dry_run)
        where = and_(
            outbox.c.state.in_(_FINISHED),
            or_(
                outbox.c.created_at < now - timedelta(seconds=s.outbox_retention),
                outbox.c.forgotten_at.is_not(None),
            ),
        )
        counts["outbox rows deleted"] = _apply(conn, delete(outbox), outbox, where, dry_run)
        where = ledger.c.updated_at < now - timedelta(seconds=s.ledger_retention)
        counts["ledger rows deleted"] = _apply(conn, delete(ledger), ledger, where, dry_run)
        where = and_(
            butter_webhooks.c.state == "done",
            butter_webhooks.c.received_at < now - timedelta(seconds=s.butter_webhook_retention),
        )
        counts["butter webhook rows deleted"] = _apply(
            conn, delete(butter_webhooks), butter_webhooks, where, dry_run
        )
    return counts


def _like_json_string(column: Any, value: str) -> Any:
    """``column`` contains ``value`` as a whole JSON string (``"value"``), wildcards escaped."""
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(f'%"{escaped}"%', escape="\\")


def _inbox_mentions(conn: Connection, values: Sequence[str], provider: str | None) -> Any:
    """Inbox rows whose payload holds one of ``values`` as a JSON string.

    Plain payloads are matched in SQL; encrypted ones (``payload_encryption_keys``) can only be
    read here, so they are decrypted and searched row by row.
    """
    if not crypto.enabled():
        return or_(*[_like_json_string(inbox.c.data, v) for v in values])
    needles = [json.dumps(v) for v in values]
    stmt = select(inbox.c.id, inbox.c.data).where(inbox.c.payload_purged_at.is_(None))
    if provider is not None:
        stmt = stmt.where(inbox.c.provider == provider)
    ids = [
        row.id for row in conn.execute(stmt) if any(n in crypto.decrypt(row.data) for n in needles)
    ]
    return inbox.c.id.in_(ids)


def rotate_keys(engine: Engine, *, batch: int = 500) -> int:
    """Re-encrypt every stored payload with the first of ``payload_encryption_keys`` (plain
    payloads are encrypted); the number of rows rewritten."""
    done = 0
    last = 0
    while True:
        with engine.begin() as conn:
            rows = conn.execute(
                select(inbox.c.id, inbox.c.data)
                .where(inbox.c.id > last, inbox.c.payload_purged_at.is_(None))
                .order_by(inbox.c.id)
                .limit(batch)
            ).all()
            if not rows:
                return done
            for row in rows:
                rotated = crypto.rotate(row.data)
                if rotated is not None and rotated != row.data:
                    conn.execute(update(inbox).where(inbox.c.id == row.id).values(data=rotated))
                    done += 1
            last = rows[-1].id


def forget(
    engine: Engine,
    customer: str,
    now: datetime,
    *,
    provider: str | None = None,
    dry_run: bool = False,
) -> dict[str, int]:
    """Erase ``customer`` (the merchant's or the PSP's customer id) from every table."""
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        who = or_(ledger.c.customer_id == customer, ledger.c.psp_customer_id == customer)
        if provider is not None:
            who = and_(who, ledger.c.provider == provider)
        invoices: Sequence[str] = list(
            conn.execute(select(ledger.c.invoice_id).where(who)).scalars()
        )
        anonymise = update(ledger).values(
            customer_id=None,
            psp_customer_id=None,
            payment_method_id=None,
            subscription_id=None,
            psp_subscription_id=None,
            extra="{}",
            forgotten_at=now,
        )
        counts["ledger rows anonymised"] = _apply(conn, anonymise, ledger, who, dry_run)

        where = and_(
            _inbox_mentions(conn, [customer, *invoices], provider),
            inbox.c.payload_purged_at.is_(None),
        )
        if provider is not None:
            where = and_(where, inbox.c.provider == provider)
        # A pending row has not been translated yet: dropping it would lose the failure. It is
        # kept and its payload goes with the next purge after translation (or a second forget).
        done = and_(where, inbox.c.state.in_(_TRANSLATED))
        stmt = update(inbox).values(data=PURGED, payload_purged_at=now, last_error=None)
        counts["inbox payloads dropped"] = _apply(conn, stmt, inbox, done, dry_run)
        counts["inbox payloads kept until translated"] = _count(
            conn, inbox, and_(where, inbox.c.state == "pending")
        )

        mentions = [_like_json_string(outbox.c.body, customer)]
        if invoices:
            mentions.append(outbox.c.invoice_id.in_(invoices))
        where = or_(*mentions)
        if provider is not None:
            where = and_(where, outbox.c.provider == provider)
        finished = and_(where, outbox.c.state.in_(_FINISHED))
        counts["outbox rows deleted"] = _apply(conn, delete(outbox), outbox, finished, dry_run)
        pending = and_(where, outbox.c.state == "pending", outbox.c.forgotten_at.is_(None))
        mark = update(outbox).values(forgotten_at=now)
        counts["outbox rows kept until sent"] = _apply(conn, mark, outbox, pending, dry_run)
    return counts


@dataclass
class RetentionSchedule:
    """Runs :func:`purge` at most every ``retention_interval`` seconds (the worker calls
    :meth:`tick` on each pass). Several workers purging at once is harmless: the statements are
    idempotent."""

    engine: Engine
    settings: Settings
    _last: datetime | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self, now: datetime) -> dict[str, int] | None:
        """Purge if due; the counts, or None when it was not due (or is switched off)."""
        interval = self.settings.retention_interval
        if interval <= 0:
            return None
        with self._lock:
            if self._last is not None and (now - self._last).total_seconds() < interval:
                return None
            self._last = now
        try:
            counts = purge(self.engine, self.settings, now)
        except Exception:  # retention must never stop the worker; the next tick tries again
            log.exception("retention purge failed")
            return None
        if any(counts.values()):
            log.info(
                "retention purge: %s",
                ", ".join(f"{n} {what}" for what, n in counts.items() if n),
                extra={
                    "event": "retention_purge",
                    **{k.replace(" ", "_"): v for k, v in counts.items()},
                },
            )
        return counts
