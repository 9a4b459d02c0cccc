"""History for model training: every charge (success or failure) in a time window.

Stripe lists newest first; Recover wants history oldest first and a cursor to resume after a
crash. So the window is walked in slices (a day by default), each slice fetched with the SDK's
auto-pagination and sorted by ``(created, id)`` ascending. The cursor is ``"<created>:<id>"`` of
the last charge yielded: resuming skips everything up to it.

Each charge becomes a synthetic event of type ``recoverkit.backfill.charge``; translation finds
its invoice (if any) and builds the same Payments event the webhook would have, with the same
dedupe key (the charge id), so history and live traffic never double count an attempt.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import stripe

from recoverkit.provider import ProviderEvent
from recoverkit_stripe.errors import call_stripe

__all__ = ["BACKFILL_EVENT_TYPE", "backfill", "parse_cursor"]

BACKFILL_EVENT_TYPE = "recoverkit.backfill.charge"


def parse_cursor(cursor: str | None) -> tuple[int, str] | None:
    """``"1700000000:ch_1"`` → ``(1700000000, "ch_1")``; None stays None."""
    if not cursor:
        return None
    created, _, charge_id = cursor.partition(":")
    if not created.isdigit() or not charge_id:
        raise ValueError(f"stripe: backfill cursor {cursor!r} is not '<created>:<charge id>'")
    return int(created), charge_id


def backfill(
    client: stripe.StripeClient,
    since: datetime,
    until: datetime,
    cursor: str | None = None,
    *,
    slice_length: timedelta = timedelta(days=1),
) -> Iterator[tuple[ProviderEvent, str]]:
    """Charges created in ``[since, until)``, oldest first, each with the cursor after it."""
    after = parse_cursor(cursor)
    start = int(since.timestamp())
    end = int(until.timestamp())
    if after is not None:
        start = max(start, after[0])
    step = max(1, int(slice_length.total_seconds()))
    while start < end:
        stop = min(start + step, end)
        page = call_stripe(
            "listing charges",
            f"{start}..{stop}",
            partial(
                client.v1.charges.list,
                params={"created": {"gte": start, "lt": stop}, "limit": 100},
            ),
        )
        charges: list[dict[str, Any]] = [c.to_dict() for c in page.auto_paging_iter()]
        charges.sort(key=lambda c: (int(c["created"]), str(c["id"])))
        for charge in charges:
            key = (int(charge["created"]), str(charge["id"]))
            if after is not None and key <= after:
                continue
            next_cursor = f"{key[0]}:{key[1]}"
            event = ProviderEvent(
                provider="stripe",
                dedupe_key=f"backfill:{charge['id']}",
                type=BACKFILL_EVENT_TYPE,
                occurred_at=datetime.fromtimestamp(key[0], UTC),
                data={
                    "id": f"backfill:{charge['id']}",
                    "object": "event",
                    "type": BACKFILL_EVENT_TYPE,
                    "created": key[0],
                    "data": {"object": charge},
                },
                object_id=str(charge["id"]),
            )
            yield event, next_cursor
        start = stop
