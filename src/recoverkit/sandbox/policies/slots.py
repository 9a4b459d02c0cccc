"""Retry slots every built-in policy shares: daily slots in local time, and the window fit.

- :func:`daily_slot` — the next ``hour``:00 in the customer's local time; when the local time is
  **unknown** it does not pretend that UTC is local: it uses the time of day of the invoice's
  first failure (the hour the merchant bills at, and the hour the renewal was charged at), which
  is no worse than any other hour for a customer anywhere.
- :func:`earliest_permissible` — the first time at or after ``now`` the network rules allow
  (``None`` when they say never / only after a card change, or nothing is left in the window).
- :func:`fit_to_window` — a policy's ideal time when it is inside the dunning window; otherwise
  the best permissible slot inside it (the latest daily slot before the deadline, else the last
  permissible moment), so no invoice is lost to the window while a permissible slot remains.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from recoverkit.rules import NetworkRules, Verdict, may_retry
from recoverkit.sandbox.policies.base import DEFAULT_RULES, PolicyContext

__all__ = ["daily_slot", "daily_slots", "earliest_permissible", "fit_to_window"]

_DAY = timedelta(days=1)
#: Retries proposed at the very end of the window land this much before the deadline.
DEADLINE_MARGIN = timedelta(minutes=5)


def daily_slot(context: PolicyContext, after: datetime, hour: float) -> datetime:
    """The first daily slot strictly after ``after`` (timezone-aware, UTC).

    With a known local time: ``hour`` o'clock local. Unknown: the first failure's time of day.
    """
    offset = context.local_offset(after)
    if offset is None:
        first = context.first_failure_at
        days = max(0, -(-((after - first) // timedelta(seconds=1)) // 86_400))
        slot = first + days * _DAY
        return slot if slot > after else slot + _DAY
    local = (after + offset).replace(tzinfo=None)
    minutes = round(hour * 60)
    candidate = datetime.combine(local.date(), time(minutes // 60, minutes % 60))
    if candidate <= local:
        candidate += _DAY
    slot = candidate.replace(tzinfo=UTC) - offset
    # Across a DST change the offset at the slot may differ from the offset at ``after``.
    moved = context.local_offset(slot)
    if moved is not None and moved != offset:
        slot += offset - moved
    return slot if slot > after else slot + _DAY


def daily_slots(
    context: PolicyContext, start: datetime, end: datetime, hour: float
) -> list[datetime]:
    """Every daily slot in ``(start, end]``."""
    slots = []
    at = daily_slot(context, start, hour)
    while at <= end:
        slots.append(at)
        at = daily_slot(context, at, hour)
    return slots


def earliest_permissible(
    context: PolicyContext, rules: NetworkRules = DEFAULT_RULES, *, start: datetime | None = None
) -> datetime | None:
    """The first time at or after ``start`` (default ``now``) the rules allow a retry, if any
    is inside the dunning window."""
    at = max(start or context.now, context.now)
    for _ in range(6):
        if at > context.deadline:
            return None
        answer = may_retry(
            context.last_decline,
            context.card_attempts,
            now=at,
            rules=rules,
            payment_method_changed_since_decline=context.payment_method_changed_since_decline,
            new_payment_method_from_customer=context.new_payment_method_from_customer,
            amount=context.amount,
        )
        if answer.verdict is Verdict.RETRY:
            return at
        if answer.verdict is not Verdict.NOT_BEFORE or answer.not_before is None:
            return None
        at = answer.not_before
    return None  # pragma: no cover - the rules' waits do not chain that far


def fit_to_window(
    context: PolicyContext,
    ideal: datetime,
    *,
    hour: float,
    rules: NetworkRules = DEFAULT_RULES,
    not_before: datetime | None = None,
) -> datetime:
    """``ideal`` when it is inside the window, else the best permissible slot inside it.

    "Best" is the latest daily slot (:func:`daily_slot` at ``hour``) at or after the earliest
    permissible time (and ``not_before``, the policy's own minimum spacing, when it fits) and
    before the deadline; when no daily slot fits, the last moment of the window. When the rules
    allow nothing in the window, ``ideal`` is returned unchanged and the guard stops the invoice
    with the rules' reason.
    """
    deadline = context.deadline
    if ideal <= deadline:
        return ideal
    earliest = earliest_permissible(context, rules)
    if earliest is None:
        return ideal
    if not_before is not None and not_before <= deadline - DEADLINE_MARGIN:
        earliest = max(earliest, not_before)
    last = deadline - DEADLINE_MARGIN
    slots = [s for s in daily_slots(context, last - 2 * _DAY, last, hour) if s >= earliest]
    if slots:
        return slots[-1]
    return max(earliest, min(last, deadline))
