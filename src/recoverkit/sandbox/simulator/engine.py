"""Run one retry policy over a :class:`World`, in rounds, through the network-rules guard.

Each round asks the policy (in one batch) for the next attempt of every invoice still in dunning,
passes every proposal through :func:`guard_proposal`, then lets the hidden world interfere (a card
update before the proposed time re-plans the invoice; a cancellation ends it) and finally asks the
issuer to answer all the round's attempts at once (numpy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

import numpy as np

from recoverkit.rules import CardAttempt, NetworkRules
from recoverkit.sandbox.policies.base import (
    DEFAULT_RULES,
    InvoiceAttempt,
    PaymentMethodUpdate,
    PolicyContext,
    Proposal,
    RetryPolicy,
    Stop,
    TrainingExample,
    guard_proposal,
    next_attempts,
)
from recoverkit.sandbox.simulator.world import COUNTRIES, FUNDINGS, NETWORKS, World


class Outcome(StrEnum):
    """How an invoice's dunning ended."""

    RECOVERED = "recovered"
    STOPPED = "stopped"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class InvoiceLog:
    """One invoice's dunning as it happened: the input of metrics, the violation check and
    training."""

    index: int
    invoice_id: str
    amount: Decimal
    currency: str
    network: str
    funding: str
    issuer_country: str
    #: ``None`` when the policies are not told the customer's time zone.
    utc_offset: timedelta | None
    dunning_window: timedelta
    attempts: list[InvoiceAttempt]
    updates: list[PaymentMethodUpdate] = field(default_factory=list)
    outcome: Outcome | None = None
    stop_reason: str = ""

    @property
    def first_failure_at(self) -> datetime:
        """When dunning started."""
        return self.attempts[0].at

    @property
    def recovered_at(self) -> datetime | None:
        """When the invoice was paid, if it was."""
        last = self.attempts[-1]
        return last.at if last.approved else None

    @property
    def retries(self) -> int:
        """Attempts after the first failure."""
        return len(self.attempts) - 1

    def card_history(self, payment_method_id: str, before: int | None = None) -> list[CardAttempt]:
        """The attempts on one payment method (one invoice per card in the simulated world)."""
        attempts = self.attempts if before is None else self.attempts[:before]
        amount = self.amount
        return [
            CardAttempt(a.at, self.network, a.approved, amount=amount, payment_method_id=pm)
            for a in attempts
            if (pm := a.payment_method_id) == payment_method_id
        ]

    def context(self, now: datetime, *, attempts: int | None = None) -> PolicyContext:
        """The policy context after the first ``attempts`` attempts (all by default) at ``now``."""
        # A copy: the log grows after the decision, the context must not.
        shown = tuple(self.attempts if attempts is None else self.attempts[:attempts])
        updates = [u for u in self.updates if u.at <= now]
        current = updates[-1].payment_method_id if updates else shown[0].payment_method_id
        return PolicyContext(
            invoice_id=self.invoice_id,
            amount=self.amount,
            currency=self.currency,
            now=now,
            invoice_attempts=shown,
            card_attempts=self.card_history(current, attempts),
            payment_method_updates=updates,
            dunning_window=self.dunning_window,
            network=self.network,
            funding=self.funding,
            issuer_country=self.issuer_country,
            utc_offset=self.utc_offset,
        )


@dataclass(frozen=True, slots=True)
class PolicyRun:
    """One policy's run over a world."""

    policy: str
    logs: list[InvoiceLog]
    #: How many proposals the guard moved or replaced.
    guard_adjustments: int


def new_logs(world: World) -> list[InvoiceLog]:
    """Every invoice of the world with only its failed renewal."""
    logs = []
    window = timedelta(days=world.config.dunning_window_days)
    for i in range(world.size):
        logs.append(
            InvoiceLog(
                index=i,
                invoice_id=f"inv_{world.config.seed}_{i:06d}",
                amount=Decimal(int(world.amount_cents[i])).scaleb(-2),
                currency="USD",
                network=NETWORKS[world.network[i]],
                funding=FUNDINGS[world.funding[i]],
                issuer_country=COUNTRIES[world.country[i]],
                utc_offset=(
                    timedelta(hours=float(world.utc_offset_hours[i]))
                    if world.time_zone_known[i]
                    else None
                ),
                dunning_window=window,
                attempts=[
                    InvoiceAttempt(
                        world.to_datetime(world.first_failure[i]),
                        approved=False,
                        decline=world.first_decline(i),
                        payment_method_id=f"pm_{i}_0",
                    )
                ],
            )
        )
    return logs


#: Simulated hours per learning step: a learning policy sees the outcomes of an epoch's retries
#: only after the epoch, so no decision uses an outcome from its own future.
EPOCH_HOURS = 6.0


def run_policy(
    world: World,
    policy: RetryPolicy,
    rules: NetworkRules = DEFAULT_RULES,
    *,
    epoch_hours: float = EPOCH_HOURS,
) -> PolicyRun:
    """Simulate ``policy`` on every invoice of ``world``; every attempt passed the guard.

    The run advances in simulated time, ``epoch_hours`` at a time: every decision due in the
    epoch is asked in one batch (``next_attempts``), every attempt due in it is answered by the
    issuer, repeatedly until nothing more falls in the epoch. A policy that does not learn runs
    as one epoch (every invoice only depends on its own history, so the result is the same).
    A policy with an ``observe(outcomes)`` method (a learning policy, e.g. ``adaptive``) then
    receives the epoch's retry outcomes as ``TrainingExample`` (the context it decided with, the
    attempt time, approved or not): its decisions only ever use outcomes from earlier epochs.
    """
    if epoch_hours <= 0:
        raise ValueError("epoch_hours must be positive")
    state = _RunState(world, new_logs(world))
    inf = np.inf
    decide_at = world.first_failure.astype(np.float64).copy()
    attempt_at = np.full(world.size, inf)
    observe = getattr(policy, "observe", None)
    learning = callable(observe)
    if not learning:
        # Nothing to learn: one epoch for the whole run, i.e. rounds of large batches (the
        # outcome is the same, every invoice depends only on its own history).
        epoch_hours = np.inf
    decided: dict[int, PolicyContext] = {}
    adjustments = 0
    t = float(decide_at.min()) if world.size else 0.0
    while world.size:
        end = t + epoch_hours
        outcomes: list[TrainingExample] = []
        while True:
            due = np.flatnonzero(decide_at < end)
            if due.size:
                contexts = [state.logs[i].context(state.now[i]) for i in due.tolist()]
                proposals = next_attempts(policy, contexts)
                for i, context, proposal in zip(due.tolist(), contexts, proposals, strict=True):
                    guarded = guard_proposal(proposal, context, rules)
                    adjustments += guarded.adjusted
                    at_h = state.settle(i, guarded.decision)
                    decide_at[i] = inf
                    if at_h is not None:
                        attempt_at[i] = at_h
                        if learning:
                            decided[i] = context
                    elif state.logs[i].outcome is None:
                        decide_at[i] = world.to_hours(state.now[i])  # re-plan at the card update
            ready = np.flatnonzero(attempt_at < end)
            if not ready.size:
                if not due.size:
                    break
                continue
            batch = {int(i): float(attempt_at[i]) for i in ready}
            attempt_at[ready] = inf
            for i in state.answer(batch):
                decide_at[i] = batch[i]
            if learning:
                for i, at_h in batch.items():
                    log = state.logs[i]
                    outcomes.append(
                        TrainingExample(
                            decided.pop(i), world.to_datetime(at_h), log.attempts[-1].approved
                        )
                    )
        if outcomes and observe is not None:
            observe(outcomes)
        pending = min(float(decide_at.min()), float(attempt_at.min()))
        if not np.isfinite(pending):
            break
        t = max(end, pending)
    return PolicyRun(getattr(policy, "name", type(policy).__name__), state.logs, adjustments)


class _RunState:
    """The mutable side of a run: logs, each invoice's ``now`` and applied card updates."""

    def __init__(self, world: World, logs: list[InvoiceLog]) -> None:
        self.world = world
        self.logs = logs
        self.now = [log.first_failure_at for log in logs]
        self.updated = np.zeros(world.size, dtype=bool)

    def settle(self, i: int, decision: Proposal) -> float | None:
        """Apply a guarded decision; the attempt time (model hours) if an attempt happens."""
        world, log = self.world, self.logs[i]
        update_h = world.update_at[i] if not self.updated[i] else np.inf
        cancel_h = world.cancel_at[i]
        if isinstance(decision, Stop):
            # A card update re-plans an invoice waiting for one (the sandbox does the same).
            if decision.awaiting_payment_method and update_h < min(cancel_h, world.deadline(i)):
                self._update(i, update_h)
            else:
                log.outcome, log.stop_reason = Outcome.STOPPED, decision.reason
            return None
        at_h = world.to_hours(decision.at)
        if cancel_h <= min(at_h, update_h):
            log.outcome, log.stop_reason = Outcome.CANCELLED, "customer cancelled"
        elif update_h < at_h:
            self._update(i, update_h)
        elif log.retries + 1 >= World.MAX_ATTEMPTS:
            log.outcome, log.stop_reason = Outcome.STOPPED, "simulator attempt cap"
        else:
            return at_h
        return None

    def answer(self, attempts: dict[int, float]) -> list[int]:
        """The issuer answers all of a round's attempts; returns the invoices still in dunning."""
        world = self.world
        idx = np.fromiter(attempts, dtype=np.int64, count=len(attempts))
        at = np.fromiter(attempts.values(), dtype=np.float64, count=len(attempts))
        new_card = self.updated[idx]
        retries = np.fromiter((self.logs[i].retries for i in attempts), dtype=np.int64)
        approved = world.uniforms[idx, retries] < world.approval_probability(idx, at, new_card)
        still = []
        for j, i in enumerate(attempts):
            log = self.logs[i]
            when = world.to_datetime(at[j])
            pm = log.updates[-1].payment_method_id if log.updates else f"pm_{i}_0"
            if approved[j]:
                log.attempts.append(InvoiceAttempt(when, True, None, pm))
                log.outcome = Outcome.RECOVERED
            else:
                decline = world.retry_decline(i, new_card=bool(new_card[j]))
                log.attempts.append(InvoiceAttempt(when, False, decline, pm))
                self.now[i] = when
                still.append(i)
        return still

    def _update(self, i: int, at_h: float) -> None:
        world = self.world
        when = world.to_datetime(at_h)
        source = "account_updater" if world.update_by_updater[i] else "customer"
        self.logs[i].updates.append(PaymentMethodUpdate(when, f"pm_{i}_1", source))
        self.updated[i] = True
        self.now[i] = when
