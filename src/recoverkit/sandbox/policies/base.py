"""The retry-policy interface and the network-rules guard every proposal goes through.

A policy sees one invoice in dunning (:class:`PolicyContext`) and proposes the next attempt
(:class:`Retry`) or gives up (:class:`Stop`). It never schedules anything itself: the caller passes
the proposal through :func:`guarded_next_attempt`, which applies :func:`recoverkit.rules.may_retry`
once, in one place, for every policy — the built-in ones and a merchant's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol, runtime_checkable

from recoverkit.declines import NormalizedDecline
from recoverkit.rules import CardAttempt, NetworkRules, RetryDecision, Verdict, may_retry
from recoverkit.sandbox.policies.timezones import country_utc_offset

DEFAULT_RULES = NetworkRules()
"""The core's default network budgets (Visa 15 reattempts per 30 days)."""


@dataclass(frozen=True, slots=True)
class InvoiceAttempt:
    """One charge attempt on the invoice in dunning (the first failure included)."""

    at: datetime
    approved: bool
    #: The normalized decline; ``None`` for an approval.
    decline: NormalizedDecline | None
    payment_method_id: str


@dataclass(frozen=True, slots=True)
class PaymentMethodUpdate:
    """The customer's payment method changed (account updater refresh or a new card)."""

    at: datetime
    payment_method_id: str
    #: ``"account_updater"`` or ``"customer"``.
    source: str = "customer"


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """Everything a policy may look at for one invoice, as of ``now``.

    ``card_attempts`` are the attempts on the payment method that would be charged next, across
    all of the customer's invoices (what the network budgets count); ``invoice_attempts`` are this
    invoice's attempts on any payment method, oldest first, the first failure included.
    """

    invoice_id: str
    amount: Decimal
    currency: str
    now: datetime
    invoice_attempts: Sequence[InvoiceAttempt]
    card_attempts: Sequence[CardAttempt]
    payment_method_updates: Sequence[PaymentMethodUpdate] = ()
    #: Dunning ends at ``first_failure_at + dunning_window``; no attempt may be proposed later.
    dunning_window: timedelta = timedelta(days=30)
    network: str | None = None
    #: ``"credit"``, ``"debit"``, ``"prepaid"`` or ``None`` when unknown.
    funding: str | None = None
    issuer_country: str | None = None
    #: The customer's offset from UTC when known; ``None`` when unknown (see :meth:`local_offset`).
    utc_offset: timedelta | None = None

    def __post_init__(self) -> None:
        if not self.invoice_attempts:
            raise ValueError(f"invoice {self.invoice_id}: a policy needs at least the failure")
        if self.now.tzinfo is None:
            raise ValueError(f"invoice {self.invoice_id}: `now` must be timezone-aware")

    @property
    def first_failure_at(self) -> datetime:
        """When the invoice first failed (dunning started)."""
        return self.invoice_attempts[0].at

    @property
    def deadline(self) -> datetime:
        """The end of the dunning window."""
        return self.first_failure_at + self.dunning_window

    @property
    def last_attempt(self) -> InvoiceAttempt:
        """The invoice's latest attempt."""
        return self.invoice_attempts[-1]

    @property
    def last_decline(self) -> NormalizedDecline:
        """The latest decline on the invoice (what the network rules are applied to)."""
        for attempt in reversed(self.invoice_attempts):
            if attempt.decline is not None:
                return attempt.decline
        raise ValueError(f"invoice {self.invoice_id} has no declined attempt")

    @property
    def declines(self) -> list[NormalizedDecline]:
        """Every decline on the invoice, oldest first."""
        return [a.decline for a in self.invoice_attempts if a.decline is not None]

    @property
    def retries_made(self) -> int:
        """Attempts after the first failure."""
        return len(self.invoice_attempts) - 1

    @property
    def last_update(self) -> PaymentMethodUpdate | None:
        """The latest payment-method update at or before ``now``, if any."""
        past = [u for u in self.payment_method_updates if u.at <= self.now]
        return max(past, key=lambda u: u.at) if past else None

    @property
    def payment_method_changed_since_decline(self) -> bool:
        """True when the payment method was updated after the latest declined attempt."""
        update = self.last_update
        return update is not None and update.at > self.last_attempt.at

    @property
    def new_payment_method_from_customer(self) -> bool:
        """True when, after the latest attempt, the customer supplied a *different* payment
        method (not an account-updater refresh of the same one): the declined credential's
        "never" rules no longer bind what will be charged."""
        update = self.last_update
        return (
            update is not None
            and update.at > self.last_attempt.at
            and update.source == "customer"
            and update.payment_method_id != self.last_attempt.payment_method_id
        )

    def local_offset(self, when: datetime) -> timedelta | None:
        """The customer's UTC offset at ``when``: ``utc_offset`` when known, else the issuer
        country's when all of its IANA time zones agree at ``when`` (GB, DE, FR …; not US, CA,
        BR, AU), else ``None`` — the local time is unknown and a policy must not pretend."""
        if self.utc_offset is not None:
            return self.utc_offset
        return country_utc_offset(self.issuer_country, when) if self.issuer_country else None

    @property
    def time_zone_known(self) -> bool:
        """True when :meth:`local_offset` knows the customer's local time."""
        return self.local_offset(self.now) is not None

    def local(self, when: datetime) -> datetime:
        """``when`` as a naive datetime in the customer's local time — **UTC when unknown**
        (check :attr:`time_zone_known`; :func:`recoverkit.sandbox.policies.slots.daily_slot`
        falls back to the first failure's time of day instead)."""
        return (when + (self.local_offset(when) or timedelta(0))).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class TrainingExample:
    """One past retry: the situation before it (``context``), when it ran and whether it worked.

    What the ``learned`` policy trains on and what a learning policy's ``observe`` receives.
    """

    context: PolicyContext
    at: datetime
    approved: bool


@dataclass(frozen=True, slots=True)
class Retry:
    """Attempt the charge again at ``at`` (timezone-aware)."""

    at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Stop:
    """Stop retrying this invoice; ``awaiting_payment_method`` re-plans it on a card update."""

    reason: str
    awaiting_payment_method: bool = False


Proposal = Retry | Stop


@runtime_checkable
class RetryPolicy(Protocol):
    """A retry policy: the only method a merchant's own policy has to implement.

    ``next_attempt`` must be pure (no clock, no I/O): everything it may use is in the context.
    """

    name: str

    def next_attempt(self, context: PolicyContext) -> Proposal:
        """When to try the invoice next, or why to stop."""
        ...


def next_attempts(policy: RetryPolicy, contexts: Sequence[PolicyContext]) -> list[Proposal]:
    """Proposals for many invoices: the policy's own ``next_attempts`` batch method if it has
    one (the learned policy scores all candidates in one model call), else one by one."""
    batch = getattr(policy, "next_attempts", None)
    if callable(batch):
        proposals = list(batch(contexts))
        if len(proposals) != len(contexts):
            raise ValueError(f"policy {policy.name!r} returned {len(proposals)} proposals")
        return proposals
    return [policy.next_attempt(context) for context in contexts]


@dataclass(frozen=True, slots=True)
class GuardedDecision:
    """A proposal after the network-rules guard: what may actually be scheduled."""

    decision: Proposal
    proposed: Proposal
    #: The rules' answer for the final time (``None`` when the policy itself stopped).
    rules_decision: RetryDecision | None = None
    #: True when the guard moved or replaced the policy's proposal.
    adjusted: bool = False
    notes: tuple[str, ...] = field(default=())


def guarded_next_attempt(
    policy: RetryPolicy, context: PolicyContext, rules: NetworkRules = DEFAULT_RULES
) -> GuardedDecision:
    """Ask ``policy`` for the next attempt and make it obey the network rules.

    The only way a proposal should reach a scheduler: a retry the rules forbid becomes a
    :class:`Stop`, one proposed too early moves to the rules' ``not_before``.
    """
    return guard_proposal(policy.next_attempt(context), context, rules)


def guard_proposal(
    proposed: Proposal, context: PolicyContext, rules: NetworkRules = DEFAULT_RULES
) -> GuardedDecision:
    """Apply :func:`recoverkit.rules.may_retry` to one proposal (see :func:`guarded_next_attempt`).

    The rules are evaluated at the proposed time: budgets count the card's attempts in the windows
    ending then. A retry proposed in the past is moved to ``now``; one past the dunning window
    stops. ``NEVER`` and ``AFTER_PAYMENT_METHOD_CHANGE`` stop with
    ``awaiting_payment_method=True``: a card update re-plans the invoice.
    """
    if isinstance(proposed, Stop):
        return GuardedDecision(proposed, proposed)
    if proposed.at.tzinfo is None:
        raise ValueError(f"policy proposed a naive time for invoice {context.invoice_id}")
    at = max(proposed.at, context.now)
    notes: list[str] = [] if at == proposed.at else ["moved to now: proposed in the past"]
    for _ in range(4):
        if at > context.deadline:
            stop = Stop(f"next allowed attempt {at:%Y-%m-%d %H:%M} is after the dunning window")
            return GuardedDecision(stop, proposed, None, True, tuple(notes))
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
            decision = proposed if at == proposed.at else Retry(at, proposed.reason)
            return GuardedDecision(decision, proposed, answer, bool(notes), tuple(notes))
        if answer.verdict is Verdict.NEVER:
            # Never on this card; a different card from the customer lifts it (rules.may_retry),
            # so the invoice waits for one until the window ends.
            stop = Stop(answer.reason, awaiting_payment_method=True)
            return GuardedDecision(stop, proposed, answer, True, tuple(notes))
        if answer.verdict is Verdict.AFTER_PAYMENT_METHOD_CHANGE:
            stop = Stop(answer.reason, awaiting_payment_method=True)
            return GuardedDecision(stop, proposed, answer, True, tuple(notes))
        assert answer.not_before is not None
        notes.append(f"moved to {answer.not_before:%Y-%m-%d %H:%M}: {answer.reason}")
        at = answer.not_before
    # Later times only shrink rolling-window counts, so this is unreachable with the core rules;
    # refuse rather than schedule something unchecked.
    return GuardedDecision(Stop("network rules kept moving the retry"), proposed, None, True)
