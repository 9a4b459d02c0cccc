"""``fixed``: the common baseline — retry on fixed days after the first failure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from recoverkit.rules import NetworkRules
from recoverkit.sandbox.policies.base import DEFAULT_RULES, PolicyContext, Proposal, Retry, Stop
from recoverkit.sandbox.policies.slots import fit_to_window

DEFAULT_DAYS = (1, 3, 5, 7)
"""Days after the first failure: the 1/3/5/7-day custom schedule third-party Stripe guides
describe (research/stripe-and-networks.md §8, docs.flycode.com stripe-smart-retries guide)."""


class FixedSchedule:
    """Retry at ``first failure + days[i]`` for each day not yet passed; decline-blind.

    A scheduled day after the dunning window becomes the best permissible slot inside it.
    """

    name = "fixed"

    def __init__(
        self, days: Sequence[float] = DEFAULT_DAYS, *, rules: NetworkRules = DEFAULT_RULES
    ) -> None:
        if not days or any(d <= 0 for d in days) or list(days) != sorted(days):
            raise ValueError(f"fixed schedule days must be positive and increasing, got {days}")
        self.days = tuple(days)
        self.rules = rules

    def next_attempt(self, context: PolicyContext) -> Proposal:
        """The next scheduled day after ``now`` (and after the last attempt), or stop."""
        if context.retries_made >= len(self.days):
            return Stop(f"fixed schedule exhausted after {len(self.days)} retries")
        start = context.first_failure_at
        for day in self.days:
            at = start + timedelta(days=day)
            if at > context.now and at > context.last_attempt.at:
                local = context.local(start)
                hour = local.hour + local.minute / 60
                fitted = fit_to_window(context, at, hour=hour, rules=self.rules)
                note = "" if fitted == at else " (moved inside the dunning window)"
                return Retry(fitted, f"fixed schedule: day {day:g}{note}")
        return Stop("fixed schedule: no scheduled day left")
