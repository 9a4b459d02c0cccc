"""``rules``: a decline-aware policy written by hand from the network guidance.

- stop on hard declines (they need the customer) and wait for a card update;
- retry soon after a card update;
- technical declines (issuer unavailable): short delays, hours not days;
- insufficient funds: the next payday (1st, 15th, last business day) in the morning local time;
- limit exceeded: the next morning (daily limits reset), then paydays;
- Mastercard MAC 24-30: the advised delay;
- other soft declines ("do not honor"): spaced mornings, like the fixed schedule but local-time.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from recoverkit.declines import DeclineCategory, MacAction, ResponseType, mastercard_advice
from recoverkit.sandbox.policies.base import PolicyContext, Proposal, Retry, Stop
from recoverkit.sandbox.policies.calendar import next_morning, next_payday_morning

_TECHNICAL_DELAYS = (timedelta(hours=2), timedelta(hours=20), timedelta(days=3))
_GENERIC_GAPS_DAYS = (1, 2, 2, 3)


class DeclineAwarePolicy:
    """The ``rules`` policy: decline-category timing within ``max_retries`` retries."""

    name = "rules"

    def __init__(
        self,
        *,
        max_retries: int = 4,
        morning_hour: int = 7,
        after_update_delay: timedelta = timedelta(minutes=15),
    ) -> None:
        if max_retries < 1:
            raise ValueError("max_retries must be at least 1")
        self.max_retries = max_retries
        self.morning_hour = morning_hour
        self.after_update_delay = after_update_delay

    def next_attempt(self, context: PolicyContext) -> Proposal:
        """Decline-aware next attempt (see the module docstring)."""
        if context.retries_made >= self.max_retries:
            return Stop(f"rules: {self.max_retries} retries made")
        decline = context.last_decline
        update = context.last_update
        if context.payment_method_changed_since_decline and update is not None:
            return Retry(
                max(context.now, update.at + self.after_update_delay),
                "rules: payment method updated",
            )
        if decline.response_type is ResponseType.HARD:
            return Stop(
                f"rules: hard decline ({decline.category.value}); waiting for a new card",
                awaiting_payment_method=True,
            )
        last = context.last_attempt.at
        advice = mastercard_advice(decline.mastercard_advice_code or "")
        if advice and advice.action is MacAction.DELAY and advice.delay:
            return Retry(last + advice.delay, f"rules: Mastercard MAC {advice.code} delay")
        category = decline.category
        if category is DeclineCategory.ISSUER_UNAVAILABLE:
            step = min(self._same_category_streak(context), len(_TECHNICAL_DELAYS)) - 1
            return Retry(last + _TECHNICAL_DELAYS[step], "rules: technical decline, short delay")
        local_last = context.local(last)
        if category is DeclineCategory.INSUFFICIENT_FUNDS:
            # At least half a day after the last try: funds rarely arrive within hours.
            at = next_payday_morning(local_last + timedelta(hours=12), hour=self.morning_hour)
            return Retry(self._utc(context, at), "rules: insufficient funds, next payday morning")
        if category is DeclineCategory.LIMIT_EXCEEDED:
            if self._same_category_streak(context) == 1:
                at = next_morning(local_last + timedelta(hours=6), hour=self.morning_hour)
                return Retry(self._utc(context, at), "rules: limit exceeded, next morning")
            at = next_payday_morning(local_last + timedelta(hours=12), hour=self.morning_hour)
            return Retry(self._utc(context, at), "rules: limit exceeded, next payday morning")
        gap = _GENERIC_GAPS_DAYS[min(context.retries_made, len(_GENERIC_GAPS_DAYS) - 1)]
        at = next_morning(local_last + timedelta(days=gap, hours=-12), hour=self.morning_hour)
        return Retry(self._utc(context, at), f"rules: {category.value}, spaced morning retry")

    @staticmethod
    def _utc(context: PolicyContext, local: datetime) -> datetime:
        return local.replace(tzinfo=UTC) - context.utc_offset

    @staticmethod
    def _same_category_streak(context: PolicyContext) -> int:
        declines = context.declines
        streak = 0
        for decline in reversed(declines):
            if decline.category is not declines[-1].category:
                break
            streak += 1
        return streak
