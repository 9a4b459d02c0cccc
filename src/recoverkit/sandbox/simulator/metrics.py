"""What a policy run achieved, and an after-the-fact audit of every attempt against the rules."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from recoverkit.rules import NetworkRules, Verdict, may_retry
from recoverkit.sandbox.policies.base import DEFAULT_RULES
from recoverkit.sandbox.simulator.engine import InvoiceLog, Outcome, PolicyRun

_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Violation:
    """One attempt the network rules did not allow when it was made."""

    invoice_id: str
    attempt: int
    reason: str


def find_violations(
    logs: Sequence[InvoiceLog], rules: NetworkRules = DEFAULT_RULES
) -> list[Violation]:
    """Re-check every retry in the logs against :func:`recoverkit.rules.may_retry`.

    Independent of the guard: it rebuilds each attempt's situation from the log alone — the
    previous decline, the card's earlier attempts, whether the card changed in between — and asks
    the rules whether that attempt was allowed at the time it was made.
    """
    found = []
    for log in logs:
        for k in range(1, len(log.attempts)):
            attempt, previous = log.attempts[k], log.attempts[k - 1]
            if previous.decline is None:
                found.append(Violation(log.invoice_id, k, "attempt after an approval"))
                continue
            between = [u for u in log.updates if previous.at < u.at <= attempt.at]
            latest = max(between, key=lambda u: u.at) if between else None
            new_card = (
                latest is not None
                and latest.source == "customer"
                and latest.payment_method_id != previous.payment_method_id
            )
            answer = may_retry(
                previous.decline,
                log.card_history(attempt.payment_method_id, before=k),
                now=attempt.at,
                rules=rules,
                payment_method_changed_since_decline=bool(between),
                new_payment_method_from_customer=new_card,
                amount=log.amount,
            )
            if answer.verdict is not Verdict.RETRY:
                found.append(Violation(log.invoice_id, k, f"{answer.verdict}: {answer.reason}"))
    return found


@dataclass(frozen=True, slots=True)
class PolicySummary:
    """The headline numbers of one policy run (money as Decimal)."""

    policy: str
    invoices: int
    revenue_at_risk: Decimal
    recovered_invoices: int
    recovered_revenue: Decimal
    retries: int
    violations: int
    mean_days_to_recovery: float | None
    #: Cumulative share of revenue at risk recovered by the end of day d (d = 0..window).
    cumulative_by_day: tuple[float, ...]
    cancelled: int

    @property
    def invoices_recovered_pct(self) -> Decimal:
        """Recovered invoices as a percentage of failed invoices."""
        return _pct(Decimal(self.recovered_invoices), Decimal(self.invoices))

    @property
    def revenue_recovered_pct(self) -> Decimal:
        """Recovered revenue as a percentage of revenue at risk."""
        return _pct(self.recovered_revenue, self.revenue_at_risk)

    @property
    def attempts_per_recovery(self) -> float | None:
        """Retries made (all invoices) per recovered invoice."""
        return self.retries / self.recovered_invoices if self.recovered_invoices else None


def _pct(part: Decimal, whole: Decimal) -> Decimal:
    return (part * 100 / whole).quantize(_CENT) if whole else Decimal(0)


def summarize(run: PolicyRun, rules: NetworkRules = DEFAULT_RULES) -> PolicySummary:
    """Summarize a run; violations come from :func:`find_violations`, not from the guard."""
    logs = run.logs
    at_risk = sum((log.amount for log in logs), Decimal(0))
    recovered = [log for log in logs if log.outcome is Outcome.RECOVERED]
    window_days = max((log.dunning_window.days for log in logs), default=30)
    day = timedelta(days=1)
    by_day = [Decimal(0)] * (window_days + 1)
    delays = []
    for log in recovered:
        assert log.recovered_at is not None
        delay = log.recovered_at - log.first_failure_at
        delays.append(delay / day)
        by_day[min(int(delay / day), window_days)] += log.amount
    cumulative, total = [], Decimal(0)
    for amount in by_day:
        total += amount
        cumulative.append(float(total / at_risk) if at_risk else 0.0)
    return PolicySummary(
        policy=run.policy,
        invoices=len(logs),
        revenue_at_risk=at_risk,
        recovered_invoices=len(recovered),
        recovered_revenue=sum((log.amount for log in recovered), Decimal(0)),
        retries=sum(log.retries for log in logs),
        violations=len(find_violations(logs, rules)),
        mean_days_to_recovery=sum(delays) / len(delays) if delays else None,
        cumulative_by_day=tuple(cumulative),
        cancelled=sum(log.outcome is Outcome.CANCELLED for log in logs),
    )
