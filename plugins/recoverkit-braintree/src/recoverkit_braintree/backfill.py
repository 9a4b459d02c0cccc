"""History for model training: transaction search by creation date, oldest first, resumable.

The range is walked in windows (one day by default) so one search never holds a huge id list;
inside a window transactions are ordered by ``(created_at, id)``. The cursor after each event is
``<created_at ISO>|<id>``: resuming skips everything up to and including it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import braintree

from recoverkit.provider import ProviderEvent
from recoverkit_braintree.gateway import CachedLookups, api_errors
from recoverkit_braintree.translate import utc

__all__ = ["BACKFILL_TYPE", "backfill", "parse_cursor"]

BACKFILL_TYPE = "transaction.backfill"
#: Sale statuses that are neither a collected payment nor a decline.
_NO_ATTEMPT = frozenset({"voided", "authorization_expired"})


def parse_cursor(cursor: str) -> tuple[datetime, str]:
    """``<created_at ISO>|<id>`` → (created_at, id)."""
    stamp, _, txn_id = cursor.partition("|")
    when = utc(datetime.fromisoformat(stamp))
    if when is None or not txn_id:
        raise ValueError(f"not a braintree backfill cursor: {cursor!r}")
    return when, txn_id


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def backfill(
    gateway: Any,
    since: datetime,
    until: datetime,
    cursor: str | None,
    lookups: CachedLookups,
    *,
    window: timedelta = timedelta(days=1),
) -> Iterator[tuple[ProviderEvent, str]]:
    """Sales created in ``[since, until)`` — successes and declines — each with its cursor.

    Fetched transactions seed ``lookups`` so translating them right away costs no API call.
    """
    start, end_all = _aware(since), _aware(until)
    after = parse_cursor(cursor) if cursor else None
    if after is not None:
        start = max(start, after[0])
    search = braintree.TransactionSearch
    while start < end_all:
        end = min(start + window, end_all)
        with api_errors("transaction search", f"{start.isoformat()}..{end.isoformat()}"):
            found = list(gateway.transaction.search(search.created_at.between(start, end)))
        keyed = []
        for txn in found:
            created = utc(getattr(txn, "created_at", None))
            if created is None or not (start <= created < end):
                continue  # ``between`` is inclusive at both ends; windows are half-open
            if getattr(txn, "type", "sale") != "sale" or txn.status in _NO_ATTEMPT:
                continue  # refunds/credits, and sales voided or never captured: no charge outcome
            keyed.append(((created, str(txn.id)), txn))
        keyed.sort(key=lambda item: item[0])
        for key, txn in keyed:
            if after is not None and key <= after:
                continue
            lookups.remember_transaction(txn)
            event = ProviderEvent(
                provider="braintree",
                dedupe_key=f"braintree:backfill:{key[1]}",
                type=BACKFILL_TYPE,
                occurred_at=key[0],
                data={"transaction_id": key[1], "status": str(txn.status)},
                object_id=key[1],
            )
            yield event, f"{key[0].isoformat()}|{key[1]}"
        start = end
