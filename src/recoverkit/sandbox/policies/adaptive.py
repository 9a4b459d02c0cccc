"""``adaptive``: a contextual bandit that starts from the ``rules`` policy and learns online.

For each invoice it considers a fixed set of candidate slots (*arms*): the ``rules`` policy's own
proposal, soon (1 h, 4 h), the next morning, mornings 1-14 days after the last attempt, the next
Friday and the next common payday (1st, 15th, last business day), the last good slot in the
window, and 15 minutes after a card update. Every candidate is moved to the earliest time the
network rules allow and dropped when it falls after the dunning window, so proposals are inside
the guard by construction (the caller's guard still checks them).

The model is a Beta-Bernoulli posterior of P(approve) per (context, arm), the context being the
latest decline's group (insufficient funds, limit, technical, generic, Mastercard delay, other
hard, card updated since the decline) and the retry number (1, 2, 3, 4+). The prior is the
``rules`` policy: its arm starts at a higher mean and a stronger weight than the others, so a
cold-started policy behaves like ``rules`` and moves away only on evidence.

Deciding (``next_attempt`` / ``next_attempts``) is pure: it reads only the context and the current
posterior. A decision exploits (the best posterior mean, discounted by ``daily_discount`` per day
of waiting) except on a deterministic pseudo-random ``exploration`` share of decisions (hash of
invoice and retry number), where it Thompson-samples the posteriors — so exploration is bounded
by that share. Learning happens outside the decision, through :meth:`AdaptivePolicy.observe`
(retry outcomes as :class:`~recoverkit.sandbox.policies.base.TrainingExample`): the arm is
recovered from the context and the attempt's time, so any history of retries — the simulator's
epochs, the sandbox's store — can update it. The posterior is plain JSON (:meth:`state_json`).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from recoverkit.declines import DeclineCategory, MacAction, ResponseType, mastercard_advice
from recoverkit.rules import NetworkRules
from recoverkit.sandbox.policies.base import (
    DEFAULT_RULES,
    PolicyContext,
    Proposal,
    Retry,
    Stop,
    TrainingExample,
)
from recoverkit.sandbox.policies.calendar import last_business_day
from recoverkit.sandbox.policies.decline_aware import DeclineAwarePolicy
from recoverkit.sandbox.policies.slots import DEADLINE_MARGIN, earliest_permissible

__all__ = ["ARMS", "STATE_FORMAT", "AdaptivePolicy"]

STATE_FORMAT = "recoverkit-adaptive-state/1"
ARMS = (
    "rules",
    "1h",
    "4h",
    "next_morning",
    "day_1",
    "day_2",
    "day_3",
    "day_5",
    "day_7",
    "day_10",
    "day_14",
    "friday",
    "payday",
    "last_in_window",
    "after_update",
)
_DAY_ARMS = {"day_1": 1, "day_2": 2, "day_3": 3, "day_5": 5, "day_7": 7, "day_10": 10, "day_14": 14}
GROUPS = (
    "insufficient_funds",
    "limit_exceeded",
    "technical",
    "generic",
    "mastercard_delay",
    "hard",
    "card_updated",
)
RETRY_BUCKETS = 4
_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)
F = npt.NDArray[np.float64]


def update_at(context: PolicyContext) -> datetime | None:
    """When the latest payment-method update happened, if any."""
    update = context.last_update
    return update.at if update else None


def _group(context: PolicyContext) -> int:
    if context.payment_method_changed_since_decline:
        return GROUPS.index("card_updated")
    decline = context.last_decline
    advice = mastercard_advice(decline.mastercard_advice_code or "")
    if advice is not None and advice.action is MacAction.DELAY:
        return GROUPS.index("mastercard_delay")
    category = decline.category
    if category is DeclineCategory.INSUFFICIENT_FUNDS:
        return GROUPS.index("insufficient_funds")
    if category is DeclineCategory.LIMIT_EXCEEDED:
        return GROUPS.index("limit_exceeded")
    if category is DeclineCategory.ISSUER_UNAVAILABLE:
        return GROUPS.index("technical")
    if decline.response_type is ResponseType.HARD:
        return GROUPS.index("hard")
    return GROUPS.index("generic")


def _bucket(context: PolicyContext) -> int:
    retry = min(context.retries_made, RETRY_BUCKETS - 1)
    return _group(context) * RETRY_BUCKETS + retry


class AdaptivePolicy:
    """The ``adaptive`` policy (see the module docstring)."""

    name = "adaptive"

    def __init__(
        self,
        *,
        max_retries: int = 4,
        exploration: float = 0.1,
        daily_discount: float = 0.02,
        min_probability: float = 0.02,
        prior_strength: float = 4.0,
        rules_prior_mean: float = 0.3,
        rules_prior_strength: float = 12.0,
        other_prior_mean: float = 0.2,
        confidence: float = 2.0,
        morning_hour: int = 7,
        seed: int = 0,
        rules: NetworkRules = DEFAULT_RULES,
    ) -> None:
        if max_retries < 1:
            raise ValueError("max_retries must be at least 1")
        if not 0 <= exploration <= 0.5:
            raise ValueError("exploration must be between 0 and 0.5")
        self.max_retries = max_retries
        #: Share of decisions that Thompson-sample instead of exploiting (the exploration bound).
        self.exploration = exploration
        self.daily_discount = daily_discount
        self.min_probability = min_probability
        #: Standard deviations by which another arm must beat the rules arm to replace it.
        self.confidence = confidence
        self.morning_hour = morning_hour
        self.seed = seed
        self.rules = rules
        self.prior = DeclineAwarePolicy(morning_hour=morning_hour, rules=rules)
        shape = (len(GROUPS) * RETRY_BUCKETS, len(ARMS))
        prior_a = np.full(shape, prior_strength * other_prior_mean)
        prior_b = np.full(shape, prior_strength * (1 - other_prior_mean))
        prior_a[:, 0] = rules_prior_strength * rules_prior_mean
        prior_b[:, 0] = rules_prior_strength * (1 - rules_prior_mean)
        self.prior_a, self.prior_b = prior_a, prior_b
        self._memo: dict[tuple[object, ...], list[datetime | None]] = {}
        #: Observed approvals / declines per (bucket, arm).
        self.wins = np.zeros(shape)
        self.losses = np.zeros(shape)

    # -- candidates ---------------------------------------------------------------------------

    def candidates(self, context: PolicyContext) -> list[datetime | None]:
        """One time per arm (``None``: the arm has no permissible slot in the window).

        Memoised per situation (invoice, attempts, ``now``, latest update): a pure function of
        the context, computed once for the decision and once more only if evicted.
        """
        update = context.last_update
        key = (
            context.invoice_id,
            len(context.invoice_attempts),
            context.now,
            update.at if update else None,
        )
        cached = self._memo.get(key)
        if cached is None:
            cached = self._candidates(context)
            if len(self._memo) >= 200_000:
                self._memo.clear()
            self._memo[key] = cached
        return cached

    def _candidates(self, context: PolicyContext) -> list[datetime | None]:
        last = context.last_attempt.at
        now = context.now
        raw: list[datetime | None] = [None] * len(ARMS)
        proposal = self.prior.next_attempt(context)
        if isinstance(proposal, Retry):
            raw[0] = proposal.at
        raw[1] = max(now, last) + _HOUR
        raw[2] = last + 4 * _HOUR
        # Daily slots with the offset at `now` (a DST change inside the window moves them 1 h).
        offset = context.local_offset(now)
        if offset is None:
            first = context.first_failure_at
            offset = timedelta(hours=self.morning_hour) - (
                first - first.replace(hour=0, minute=0, second=0, microsecond=0)
            )
        morning = timedelta(hours=self.morning_hour)

        def slot_after(at: datetime) -> datetime:
            local = at + offset
            start = local.replace(hour=0, minute=0, second=0, microsecond=0) + morning
            if start <= local:
                start += _DAY
            return start - offset

        raw[3] = slot_after(last + 8 * _HOUR)
        base = slot_after(last + 12 * _HOUR)
        for name, days in _DAY_ARMS.items():
            raw[ARMS.index(name)] = base + (days - 1) * _DAY
        local_base = (base + offset).date()
        raw[11] = base + ((4 - local_base.weekday()) % 7) * _DAY
        for k in range(31):
            day = local_base + k * _DAY
            if day.day in {1, 15} or (
                day.day >= 26 and day == last_business_day(day.year, day.month)
            ):
                raw[12] = base + k * _DAY
                break
        limit = context.deadline - DEADLINE_MARGIN
        end = slot_after(limit - _DAY)
        raw[13] = end if end <= limit else end - _DAY
        updated = update_at(context)
        if context.payment_method_changed_since_decline and updated is not None:
            raw[14] = max(now, updated + timedelta(minutes=15))
        earliest = earliest_permissible(context, self.rules)
        out: list[datetime | None] = []
        for wanted in raw:
            if wanted is None or earliest is None:
                out.append(None)
                continue
            at = max(wanted, earliest, now)
            out.append(at if at <= context.deadline else None)
        return out

    # -- deciding -----------------------------------------------------------------------------

    def next_attempt(self, context: PolicyContext) -> Proposal:
        """The best arm for this invoice under the current posterior (pure)."""
        return self.next_attempts([context])[0]

    def next_attempts(self, contexts: Sequence[PolicyContext]) -> list[Proposal]:
        """Decisions for many invoices (posterior means computed once)."""
        a = self.prior_a + self.wins
        b = self.prior_b + self.losses
        mean = a / (a + b)
        proposals: list[Proposal] = []
        for context in contexts:
            proposals.append(self._decide(context, a, b, mean))
        return proposals

    def _decide(self, context: PolicyContext, a: F, b: F, mean: F) -> Proposal:
        if context.retries_made >= self.max_retries:
            return Stop(f"adaptive: {self.max_retries} retries made (setting max_retries)")
        cands = self.candidates(context)
        valid = np.array([c is not None for c in cands])
        if not valid.any():
            # Either the rules forbid any retry (the guard will say why) or nothing is left.
            proposal = self.prior.next_attempt(context)
            return proposal
        now = context.now
        wait = np.array([((c - now) / _DAY) if c is not None else 0.0 for c in cands])
        discount = np.exp(-self.daily_discount * wait)
        bucket = _bucket(context)
        explore = self._explores(context)
        if explore:
            rng = np.random.default_rng(self._key(context))
            theta = rng.beta(a[bucket], b[bucket])
            score = np.where(valid, theta * discount, -1.0)
            arm = int(np.argmax(score))
        else:
            arm = self._exploit(a[bucket], b[bucket], mean[bucket], discount, valid)
        expected = float(mean[bucket, arm])
        if not explore and expected < self.min_probability:
            return Stop(
                f"adaptive: no slot before the deadline reaches {self.min_probability:.0%} "
                "estimated approval (setting min_probability)",
                awaiting_payment_method=True,
            )
        at = cands[arm]
        assert at is not None
        kind = "explore" if explore else "exploit"
        return Retry(at, f"adaptive: {ARMS[arm]} ({kind}, P~{expected:.2f})")

    def _exploit(self, a: F, b: F, mean: F, discount: F, valid: npt.NDArray[np.bool_]) -> int:
        """The rules arm unless another arm is credibly better: its lower bound (mean minus
        ``confidence`` standard deviations, discounted for the wait) beats the rules arm's
        discounted mean. Without a rules slot, the best discounted mean."""
        value = np.where(valid, mean * discount, -1.0)
        if not valid[0]:
            return int(np.argmax(value))
        sd = np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))
        lower = np.where(valid, (mean - self.confidence * sd) * discount, -1.0)
        lower[0] = -1.0
        challenger = int(np.argmax(lower))
        return challenger if lower[challenger] > value[0] else 0

    def _key(self, context: PolicyContext) -> int:
        text = f"{self.seed}:{context.invoice_id}:{context.retries_made}".encode()
        return zlib.crc32(text)

    def _explores(self, context: PolicyContext) -> bool:
        return (self._key(context) % 10_000) < self.exploration * 10_000

    # -- learning -----------------------------------------------------------------------------

    def arm_of(self, context: PolicyContext, at: datetime) -> int | None:
        """Which arm a retry at ``at`` was (the nearest candidate within 6 hours), if any."""
        best, gap = None, timedelta(hours=6)
        for k, cand in enumerate(self.candidates(context)):
            if cand is not None and abs(cand - at) <= gap:
                best, gap = k, abs(cand - at)
                if gap == timedelta(0):
                    break
        return best

    def observe(self, outcomes: Sequence[TrainingExample]) -> int:
        """Update the posterior with retry outcomes; returns how many were attributed to an arm.

        Each outcome's context must be the invoice as it stood before the retry.
        """
        used = 0
        for outcome in outcomes:
            arm = self.arm_of(outcome.context, outcome.at)
            if arm is None:
                continue
            bucket = _bucket(outcome.context)
            if outcome.approved:
                self.wins[bucket, arm] += 1
            else:
                self.losses[bucket, arm] += 1
            used += 1
        return used

    @property
    def observations(self) -> int:
        """Retry outcomes learned from so far."""
        return int(self.wins.sum() + self.losses.sum())

    # -- persistence --------------------------------------------------------------------------

    def state_json(self) -> str:
        """The learned counts as JSON (the prior is configuration, not state)."""
        return json.dumps(
            {
                "format": STATE_FORMAT,
                "arms": list(ARMS),
                "groups": list(GROUPS),
                "retry_buckets": RETRY_BUCKETS,
                "wins": self.wins.tolist(),
                "losses": self.losses.tolist(),
            }
        )

    def load_state(self, text: str) -> None:
        """Restore counts written by :meth:`state_json`; refuses another layout."""
        data: Any = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise ValueError(f"not an adaptive policy state ({STATE_FORMAT})")
        if (
            data.get("arms") != list(ARMS)
            or data.get("groups") != list(GROUPS)
            or data.get("retry_buckets") != RETRY_BUCKETS
        ):
            raise ValueError("adaptive state was written for other arms or contexts")
        wins = np.asarray(data["wins"], dtype=np.float64)
        losses = np.asarray(data["losses"], dtype=np.float64)
        if wins.shape != self.wins.shape or losses.shape != self.losses.shape:
            raise ValueError("adaptive state has the wrong shape")
        if (
            not (np.isfinite(wins).all() and np.isfinite(losses).all())
            or min(wins.min(), losses.min()) < 0
        ):
            raise ValueError("adaptive state counts must be finite and non-negative")
        self.wins, self.losses = wins, losses
