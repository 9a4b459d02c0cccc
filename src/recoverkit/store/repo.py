"""Store operations: every SQL statement the receiver, the worker and the CLI run.

Claiming is one statement on both backends: ``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE
SKIP LOCKED) RETURNING …``. On PostgreSQL the subquery's row locks keep two workers apart; SQLite
has one writer at a time (``BEGIN IMMEDIATE``) and renders no ``FOR UPDATE``. A claim is a lease
(``claimed_by`` + ``claimed_until``): a crashed worker's rows become claimable again when it
expires, and every update after the claim checks ``claimed_by`` so a worker that lost its lease
cannot overwrite another's result.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Table,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)

from recoverkit import redact
from recoverkit.provider import ProviderEvent
from recoverkit.store import crypto
from recoverkit.store.dialect import upsert_insert as _insert
from recoverkit.store.records import (
    LedgerEntry,
    claim_butter_webhook,
    complete_butter_webhook,
    get_backfill_cursor,
    get_ledger,
    release_butter_webhook,
    set_backfill_cursor,
    set_ledger_state,
    upsert_ledger,
)
from recoverkit.store.tables import inbox, outbox

__all__ = [
    "LedgerEntry",
    "OutboxMessage",
    "claim",
    "claim_butter_webhook",
    "claim_statement",
    "complete_butter_webhook",
    "counts",
    "enqueue_outbox",
    "event_from_row",
    "finish_many",
    "get_backfill_cursor",
    "get_ledger",
    "insert_event_groups",
    "insert_events",
    "list_outbox",
    "owned",
    "purge_outbox",
    "release_butter_webhook",
    "requeue_outbox",
    "set_backfill_cursor",
    "set_ledger_state",
    "upsert_ledger",
]


# -- inbox --------------------------------------------------------------------------------------


def _event_row(event: ProviderEvent, now: datetime) -> dict[str, Any]:
    # Card data never reaches the store: the payload is scrubbed before it is written, and the
    # digest is of what is stored (a digest of a card number could be brute-forced).
    data = redact.scrub_json(
        json.dumps(event.data, separators=(",", ":"), default=str),
        event=f"{event.provider}/{event.dedupe_key}",
        path="inbox.data",
    )
    return {
        "provider": event.provider,
        "dedupe_key": event.dedupe_key,
        "event_type": event.type,
        "object_id": event.object_id,
        "occurred_at": event.occurred_at,
        "received_at": now,
        "data": crypto.encrypt(data),  # unchanged unless payload_encryption_keys are set
        "digest": hashlib.sha256(data.encode("utf-8")).hexdigest(),
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
    }


def insert_event_groups(
    engine: Engine, groups: Sequence[Sequence[ProviderEvent]], now: datetime
) -> list[int]:
    """Store several webhooks' events in one transaction (group commit).

    Duplicates (already stored, or repeated within ``groups``) are skipped. Returns, per group,
    how many of its events were new.
    """
    rows = [_event_row(event, now) for group in groups for event in group]
    if not rows:
        return [0 for _ in groups]
    with engine.begin() as conn:
        stmt = (
            _insert(conn, inbox)
            .on_conflict_do_nothing(index_elements=["provider", "dedupe_key"])
            .returning(inbox.c.provider, inbox.c.dedupe_key)
        )
        fresh = {(r.provider, r.dedupe_key) for r in conn.execute(stmt, rows)}
    counts = []
    for group in groups:
        n = 0
        for event in group:
            key = (event.provider, event.dedupe_key)
            if key in fresh:
                fresh.discard(key)
                n += 1
        counts.append(n)
    return counts


def insert_events(engine: Engine, events: Sequence[ProviderEvent], now: datetime) -> int:
    """Store ``events`` in one transaction; return how many were new (duplicates are skipped)."""
    return insert_event_groups(engine, [events], now)[0]


def event_from_row(row: Row[Any]) -> ProviderEvent:
    """Rebuild the :class:`ProviderEvent` an inbox row was stored from."""
    return ProviderEvent(
        provider=row.provider,
        dedupe_key=row.dedupe_key,
        type=row.event_type,
        occurred_at=row.occurred_at,
        data=json.loads(crypto.decrypt(row.data)),
        object_id=row.object_id,
    )


def claim_statement(table: Table, worker: str, *, now: datetime, lease: float, limit: int) -> Any:
    """``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING …`` for a claim."""
    due = (
        select(table.c.id)
        .where(
            table.c.state == "pending",
            table.c.next_attempt_at <= now,
            or_(table.c.claimed_until.is_(None), table.c.claimed_until < now),
        )
        .order_by(table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    return (
        update(table)
        .where(table.c.id.in_(due))
        .values(claimed_by=worker, claimed_until=now + timedelta(seconds=lease))
        .returning(*table.c)
    )


def claim(
    engine: Engine, table: Table, worker: str, *, now: datetime, lease: float, limit: int
) -> list[Row[Any]]:
    """Lease up to ``limit`` due pending rows of ``inbox`` or ``outbox`` to ``worker``."""
    stmt = claim_statement(table, worker, now=now, lease=lease, limit=limit)
    with engine.begin() as conn:
        rows = list(conn.execute(stmt))
    return sorted(rows, key=lambda r: r.id)


def owned(conn: Connection, table: Table, worker: str, ids: Sequence[int]) -> set[int]:
    """The rows among ``ids`` still leased to ``worker``, locked until the transaction ends."""
    if not ids:
        return set()
    stmt = (
        select(table.c.id)
        .where(table.c.id.in_(ids), table.c.claimed_by == worker)
        .with_for_update()
    )
    return {int(r.id) for r in conn.execute(stmt)}


def finish_many(
    conn: Connection, table: Table, worker: str, updates: Sequence[tuple[int, Mapping[str, Any]]]
) -> None:
    """Record each claimed row's outcome and release its claim (rows no longer ours are left).

    Executed as one ``executemany`` per set of updated columns: the statement is built from bind
    parameters, so SQLAlchemy compiles it once and caches it.
    """
    by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row_id, values in updates:
        params = {f"v_{k}": v for k, v in values.items()}
        if isinstance(params.get("v_last_error"), str):  # errors may quote the payload
            params["v_last_error"] = redact.scrub_text(
                params["v_last_error"], event=f"{table.name}/{row_id}", path="last_error"
            )
        params |= {"row_id": row_id, "row_worker": worker}
        by_columns.setdefault(tuple(sorted(values)), []).append(params)
    for columns, batch in by_columns.items():
        stmt = (
            update(table)
            .where(table.c.id == bindparam("row_id"), table.c.claimed_by == bindparam("row_worker"))
            .values(
                {"claimed_by": None, "claimed_until": None}
                | {c: bindparam(f"v_{c}") for c in columns}
            )
        )
        conn.execute(stmt, batch)


# -- outbox -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message to queue for Recover."""

    provider: str
    endpoint: str
    dedupe_key: str
    body: str
    invoice_id: str | None = None
    inbox_id: int | None = None


def enqueue_outbox(conn: Connection, messages: Iterable[OutboxMessage], now: datetime) -> int:
    """Queue messages; one with an (endpoint, dedupe_key) already queued is skipped."""
    rows = [
        {
            "inbox_id": m.inbox_id,
            "provider": m.provider,
            "endpoint": m.endpoint,
            "dedupe_key": m.dedupe_key,
            "invoice_id": m.invoice_id,
            "body": redact.scrub_json(m.body, event=m.dedupe_key, path=f"outbox.{m.endpoint}"),
            "state": "pending",
            "attempts": 0,
            "created_at": now,
            "next_attempt_at": now,
        }
        for m in messages
    ]
    if not rows:
        return 0
    stmt = (
        _insert(conn, outbox)
        .on_conflict_do_nothing(index_elements=["endpoint", "dedupe_key"])
        .returning(outbox.c.id)
    )
    return len(conn.execute(stmt, rows).all())


def list_outbox(engine: Engine, state: str | None = None, limit: int = 50) -> list[Row[Any]]:
    """Newest outbox rows first, optionally in one state."""
    stmt = select(outbox).order_by(outbox.c.id.desc()).limit(limit)
    if state is not None:
        stmt = stmt.where(outbox.c.state == state)
    with engine.connect() as conn:
        return list(conn.execute(stmt))


def requeue_outbox(
    engine: Engine, now: datetime, ids: Sequence[int] = (), state: str = "dead"
) -> int:
    """Make dead (or given) rows pending again; their dead-letter clock restarts now."""
    stmt = update(outbox).values(
        state="pending", next_attempt_at=now, created_at=now, claimed_by=None, claimed_until=None
    )
    stmt = stmt.where(outbox.c.id.in_(ids)) if ids else stmt.where(outbox.c.state == state)
    stmt = stmt.where(outbox.c.state != "pending")
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount or 0


def purge_outbox(engine: Engine, state: str, older_than: datetime) -> int:
    """Delete ``sent`` or ``dead`` rows created before ``older_than``."""
    if state not in {"sent", "dead"}:
        raise ValueError("only sent or dead rows can be purged")
    stmt = delete(outbox).where(outbox.c.state == state, outbox.c.created_at < older_than)
    with engine.begin() as conn:
        return conn.execute(stmt).rowcount or 0


def counts(engine: Engine) -> dict[str, dict[str, int]]:
    """``{"inbox": {state: n}, "outbox": {state: n}}`` for metrics and ``doctor``."""
    result: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for table in (inbox, outbox):
            rows = conn.execute(select(table.c.state, func.count()).group_by(table.c.state))
            result[table.name] = {state: int(n) for state, n in rows}
    return result
