"""Records the merchant endpoints use: the invoice ledger, Butter webhook dedupe, backfill
positions. (Re-exported by :mod:`recoverkit.store.repo`.)"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, or_, select, update

from recoverkit import redact
from recoverkit.store.dialect import upsert_insert as _insert
from recoverkit.store.tables import backfill_cursors, butter_webhooks, ledger

__all__ = [
    "LedgerEntry",
    "claim_butter_webhook",
    "complete_butter_webhook",
    "get_backfill_cursor",
    "get_ledger",
    "release_butter_webhook",
    "set_backfill_cursor",
    "set_ledger_state",
    "upsert_ledger",
]


# -- ledger -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One invoice's row: Recover's ids joined to the PSP's, the state, and when it was true."""

    invoice_id: str
    provider: str
    state: str
    last_event_at: datetime
    customer_id: str | None = None
    subscription_id: str | None = None
    psp_invoice_id: str | None = None
    psp_subscription_id: str | None = None
    psp_customer_id: str | None = None
    psp_transaction_id: str | None = None
    payment_method_id: str | None = None
    amount: str | None = None
    currency: str | None = None
    extra: Mapping[str, Any] | None = None


_LEDGER_COLUMNS = (
    "provider",
    "customer_id",
    "subscription_id",
    "psp_invoice_id",
    "psp_subscription_id",
    "psp_customer_id",
    "psp_transaction_id",
    "payment_method_id",
    "amount",
    "currency",
    "state",
    "last_event_at",
    "updated_at",
    "extra",
)


def upsert_ledger(conn: Connection, entries: Iterable[LedgerEntry], now: datetime) -> None:
    """Insert or update invoices; an update older than the stored state is ignored.

    Of several entries for one invoice only the newest is written (one statement may not touch
    a row twice on PostgreSQL).
    """
    newest: dict[str, LedgerEntry] = {}
    for entry in entries:
        known = newest.get(entry.invoice_id)
        if known is None or known.last_event_at <= entry.last_event_at:
            newest[entry.invoice_id] = entry
    if not newest:
        return
    rows = [
        {
            "invoice_id": e.invoice_id,
            "provider": e.provider,
            "customer_id": e.customer_id,
            "subscription_id": e.subscription_id,
            "psp_invoice_id": e.psp_invoice_id,
            "psp_subscription_id": e.psp_subscription_id,
            "psp_customer_id": e.psp_customer_id,
            "psp_transaction_id": e.psp_transaction_id,
            "payment_method_id": e.payment_method_id,
            "amount": e.amount,
            "currency": e.currency,
            "state": e.state,
            "last_event_at": e.last_event_at,
            "updated_at": now,
            "extra": redact.scrub_json(
                json.dumps(dict(e.extra or {}), default=str),
                event=e.invoice_id,
                path="ledger.extra",
            ),
        }
        for e in newest.values()
    ]
    stmt = _insert(conn, ledger)
    stmt = stmt.on_conflict_do_update(
        index_elements=["invoice_id"],
        set_={c: getattr(stmt.excluded, c) for c in _LEDGER_COLUMNS},
        where=ledger.c.last_event_at <= stmt.excluded.last_event_at,
    )
    conn.execute(stmt, rows)


def get_ledger(engine: Engine, invoice_id: str) -> LedgerEntry | None:
    """The ledger row for ``invoice_id``, or None when recoverkit never forwarded it."""
    with engine.connect() as conn:
        row = conn.execute(select(ledger).where(ledger.c.invoice_id == invoice_id)).first()
    if row is None:
        return None
    data = row._asdict()
    data.pop("updated_at", None)
    data.pop("forgotten_at", None)
    data["extra"] = json.loads(data["extra"]) if data.get("extra") else {}
    return LedgerEntry(**data)


def set_ledger_state(engine: Engine, invoice_id: str, state: str, now: datetime) -> None:
    """Record what Recover reported (recovered, dunning ended) for an invoice."""
    with engine.begin() as conn:
        conn.execute(
            update(ledger)
            .where(ledger.c.invoice_id == invoice_id)
            .values(state=state, updated_at=now)
        )


# -- Butter webhook dedupe ----------------------------------------------------------------------


def claim_butter_webhook(
    engine: Engine,
    dedupe_id: str,
    kind: str,
    invoice_id: str | None,
    now: datetime,
    stale_after: timedelta = timedelta(minutes=10),
    message_key: str | None = None,
) -> str:
    """Record a delivery as being processed: ``"new"``, or ``"done"``/``"processing"`` if seen.

    A delivery is the same as one seen before when its dedupe id matches, or — replays with a new
    or missing dedupe header — when its ``message_key`` (kind + invoice id + canonical body)
    does. A delivery left ``processing`` for longer than ``stale_after`` (its handler crashed
    before finishing or releasing it) is taken over and reported ``"new"``, so a redelivery is
    not refused forever.
    """
    same = _same_delivery(dedupe_id, message_key)
    with engine.begin() as conn:
        stmt = (
            _insert(conn, butter_webhooks)
            .values(
                dedupe_id=dedupe_id,
                kind=kind,
                invoice_id=invoice_id,
                state="processing",
                received_at=now,
                message_key=message_key,
            )
            .on_conflict_do_nothing()  # either unique key: the id or the message
            .returning(butter_webhooks.c.dedupe_id)
        )
        if conn.execute(stmt).first() is not None:
            return "new"
        takeover = (
            update(butter_webhooks)
            .where(
                same,
                butter_webhooks.c.state == "processing",
                butter_webhooks.c.received_at < now - stale_after,
            )
            .values(received_at=now)
            .returning(butter_webhooks.c.dedupe_id)
        )
        if conn.execute(takeover).first() is not None:
            return "new"
        states = {
            str(s) for s in conn.execute(select(butter_webhooks.c.state).where(same)).scalars()
        }
    return "done" if "done" in states else "processing"


def _same_delivery(dedupe_id: str, message_key: str | None) -> Any:
    same = butter_webhooks.c.dedupe_id == dedupe_id
    if message_key is not None:
        same = or_(same, butter_webhooks.c.message_key == message_key)
    return same


def complete_butter_webhook(engine: Engine, dedupe_id: str, message_key: str | None = None) -> None:
    """Mark a delivery as fully handled: later deliveries of it are acknowledged only."""
    with engine.begin() as conn:
        conn.execute(
            update(butter_webhooks)
            .where(_same_delivery(dedupe_id, message_key))
            .values(state="done")
        )


def release_butter_webhook(engine: Engine, dedupe_id: str, message_key: str | None = None) -> None:
    """Forget a delivery whose handling failed, so Recover's redelivery is processed."""
    with engine.begin() as conn:
        conn.execute(delete(butter_webhooks).where(_same_delivery(dedupe_id, message_key)))


# -- backfill -----------------------------------------------------------------------------------


def get_backfill_cursor(engine: Engine, provider: str) -> tuple[str | None, int]:
    """Where the last backfill for ``provider`` stopped, and how many events it had stored."""
    with engine.connect() as conn:
        row = conn.execute(
            select(backfill_cursors.c.cursor, backfill_cursors.c.events).where(
                backfill_cursors.c.provider == provider
            )
        ).first()
    return (row.cursor, int(row.events)) if row else (None, 0)


def set_backfill_cursor(
    engine: Engine, provider: str, cursor: str | None, events: int, now: datetime
) -> None:
    """Save a backfill's position (None clears it once the backfill completed)."""
    with engine.begin() as conn:
        stmt = _insert(conn, backfill_cursors).values(
            provider=provider, cursor=cursor, events=events, updated_at=now
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["provider"],
                set_={"cursor": cursor, "events": events, "updated_at": now},
            )
        )
