"""``rules``: a decline-aware policy written by hand from the network guidance.

- retry soon after a card update;
- technical declines (issuer unavailable): short delays, hours not days;
- insufficient funds: the next payday (1st, 15th, last business day) in the morning local time;
- limit exceeded: the next morning (daily limits reset), then paydays;
- Mastercard MAC 24-30: the advised delay;
- other declines ("do not honor", and hard declines the rules still allow): spaced mornings.

It does not decide "never" itself: hard declines are proposed like any other and the guard
(:func:`recoverkit.rules.may_retry`: network rules, MACs, the PSP's explicit advice) stops what
may not be retried. Giving up by choice is a setting (``give_up_on``) and says so in its reason.
When the ideal time falls after the dunning window, the best permissible slot inside the window
is proposed instead (:func:`~recoverkit.sandbox.policies.slots.fit_to_window`). "Morning" is
local time when the customer's time zone is known (or unambiguous from the issuer country), else
the first failure's time of day (:func:`~recoverkit.sandbox.policies.slots.daily_slot`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from recoverkit.declines import DeclineCategory, MacAction, mastercard_advice
from recoverkit.rules import NetworkRules
from recoverkit.sandbox.policies.base import DEFAULT_RULES, PolicyContext, Proposal, Retry, Stop
from recoverkit.sandbox.policies.calendar import last_business_day
from recoverkit.sandbox.policies.slots import daily_slot, fit_to_window

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
        give_up_on: Iterable[DeclineCategory] = (),
        rules: NetworkRules = DEFAULT_RULES,
    ) -> None:
        if max_retries < 1:
            raise ValueError("max_retries must be at least 1")
        self.max_retries = max_retries
        self.morning_hour = morning_hour
        self.after_update_delay = after_update_delay
        #: Decline categories this policy gives up on by choice (beyond what the rules forbid).
        self.give_up_on = frozenset(give_up_on)
        #: The network rules the window fit checks (use the guard's).
        self.rules = rules

    def next_attempt(self, context: PolicyContext) -> Proposal:
        """Decline-aware next attempt (see the module docstring)."""
        if context.retries_made >= self.max_retries:
            return Stop(f"rules: {self.max_retries} retries made (setting max_retries)")
        decline = context.last_decline
        update = context.last_update
        if context.payment_method_changed_since_decline and update is not None:
            at = max(context.now, update.at + self.after_update_delay)
            return self._retry(context, at, "rules: payment method updated")
        if decline.category in self.give_up_on:
            return Stop(
                f"rules: gives up on {decline.category.value} by choice (setting give_up_on); "
                "waiting for a new card",
                awaiting_payment_method=True,
            )
        last = context.last_attempt.at
        hour = self.morning_hour
        advice = mastercard_advice(decline.mastercard_advice_code or "")
        if advice and advice.action is MacAction.DELAY and advice.delay:
            return self._retry(
                context, last + advice.delay, f"rules: Mastercard MAC {advice.code} delay"
            )
        category = decline.category
        if category is DeclineCategory.ISSUER_UNAVAILABLE:
            step = min(self._same_category_streak(context), len(_TECHNICAL_DELAYS)) - 1
            return self._retry(
                context, last + _TECHNICAL_DELAYS[step], "rules: technical decline, short delay"
            )
        if category is DeclineCategory.INSUFFICIENT_FUNDS:
            # At least half a day after the last try: funds rarely arrive within hours.
            at = self._payday(context, last + timedelta(hours=12))
            return self._retry(
                context, at, "rules: insufficient funds, next payday morning", spacing=12
            )
        if category is DeclineCategory.LIMIT_EXCEEDED:
            if self._same_category_streak(context) == 1:
                at = daily_slot(context, last + timedelta(hours=6), hour)
                return self._retry(context, at, "rules: limit exceeded, next morning", spacing=6)
            at = self._payday(context, last + timedelta(hours=12))
            return self._retry(
                context, at, "rules: limit exceeded, next payday morning", spacing=12
            )
        gap = _GENERIC_GAPS_DAYS[min(context.retries_made, len(_GENERIC_GAPS_DAYS) - 1)]
        at = daily_slot(context, last + timedelta(days=gap, hours=-12), hour)
        return self._retry(
            context, at, f"rules: {category.value}, spaced morning retry", spacing=12
        )

    def _retry(
        self, context: PolicyContext, ideal: datetime, reason: str, *, spacing: float = 0.0
    ) -> Retry:
        """``ideal``, or the best permissible slot inside the window when it falls outside."""
        not_before = context.last_attempt.at + timedelta(hours=spacing)
        at = fit_to_window(
            context, ideal, hour=self.morning_hour, rules=self.rules, not_before=not_before
        )
        if at != ideal:
            reason += " (ideal slot after the dunning window: last good slot inside it)"
        return Retry(at, reason)

    def _payday(self, context: PolicyContext, after: datetime) -> datetime:
        """The first morning slot after ``after`` on a common payday (1st, 15th, last business
        day of the month) in the customer's calendar (UTC dates when the time zone is unknown)."""
        slot = daily_slot(context, after, self.morning_hour)
        for _ in range(62):
            day = context.local(slot).date()
            if day.day in {1, 15} or (
                day.day >= 26 and day == last_business_day(day.year, day.month)
            ):
                return slot
            slot = daily_slot(context, slot, self.morning_hour)
        raise AssertionError("a payday falls within any 62 days")  # pragma: no cover

    @staticmethod
    def _same_category_streak(context: PolicyContext) -> int:
        declines = context.declines
        streak = 0
        for decline in reversed(declines):
            if decline.category is not declines[-1].category:
                break
            streak += 1
        return streak
