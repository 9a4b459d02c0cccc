"""Pool policy runs over seeds, print them as a rich table, draw the recovery chart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from recoverkit.sandbox.simulator.metrics import PolicySummary

if TYPE_CHECKING:
    from recoverkit.sandbox.simulator.families import FamilyResult

_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class PooledSummary:
    """One policy's numbers summed over every seed of a run (money as Decimal)."""

    policy: str
    seeds: int
    invoices: int
    revenue_at_risk: Decimal
    recovered_invoices: int
    recovered_revenue: Decimal
    retries: int
    violations: int
    cancelled: int
    mean_days_to_recovery: float | None
    cumulative_by_day: tuple[float, ...]

    @property
    def invoices_recovered_pct(self) -> Decimal:
        """Recovered invoices, % of failed invoices."""
        return (Decimal(self.recovered_invoices) * 100 / self.invoices).quantize(_CENT)

    @property
    def revenue_recovered_pct(self) -> Decimal:
        """Recovered revenue, % of revenue at risk."""
        return (self.recovered_revenue * 100 / self.revenue_at_risk).quantize(_CENT)

    @property
    def attempts_per_recovery(self) -> float | None:
        """Retries per recovered invoice."""
        return self.retries / self.recovered_invoices if self.recovered_invoices else None


def pool(summaries: Sequence[PolicySummary]) -> PooledSummary:
    """Sum one policy's per-seed summaries (the mean delay is weighted by recoveries)."""
    if not summaries:
        raise ValueError("nothing to pool")
    recovered = sum(s.recovered_invoices for s in summaries)
    at_risk = sum((s.revenue_at_risk for s in summaries), Decimal(0))
    weighted = sum((s.mean_days_to_recovery or 0.0) * s.recovered_invoices for s in summaries)
    days = len(summaries[0].cumulative_by_day)
    cumulative = tuple(
        float(sum(Decimal(s.cumulative_by_day[d]) * s.revenue_at_risk for s in summaries) / at_risk)
        for d in range(days)
    )
    return PooledSummary(
        policy=summaries[0].policy,
        seeds=len(summaries),
        invoices=sum(s.invoices for s in summaries),
        revenue_at_risk=at_risk,
        recovered_invoices=recovered,
        recovered_revenue=sum((s.recovered_revenue for s in summaries), Decimal(0)),
        retries=sum(s.retries for s in summaries),
        violations=sum(s.violations for s in summaries),
        cancelled=sum(s.cancelled for s in summaries),
        mean_days_to_recovery=weighted / recovered if recovered else None,
        cumulative_by_day=cumulative,
    )


def relative_change(value: Decimal | int, baseline: Decimal | int) -> Decimal | None:
    """``value`` vs ``baseline`` in percent (``+12.30`` means 12.3 % more)."""
    if not baseline:
        return None
    return ((Decimal(value) - Decimal(baseline)) * 100 / Decimal(baseline)).quantize(_CENT)


def results_table(pooled: Sequence[PooledSummary], *, baseline: str = "fixed") -> Table:
    """The simulate command's table; the last two columns compare with ``baseline``."""
    base = next((p for p in pooled if p.policy == baseline), None)
    p0 = pooled[0] if pooled else None
    title = (
        f"Simulated dunning: {p0.invoices:,} failed invoices, ${p0.revenue_at_risk:,.2f} at risk "
        f"({p0.seeds} seed(s), pooled)"
        if p0
        else "Simulated dunning"
    )
    table = Table(title=title, title_justify="left")
    for header in (
        "policy",
        "invoices recovered",
        "revenue recovered",
        "retries",
        "retries / recovery",
        "mean days to recovery",
        "cancelled",
        "rule violations",
        f"revenue vs {baseline}",
        f"retries vs {baseline}",
    ):
        table.add_column(header, justify="left" if header == "policy" else "right")
    for p in pooled:
        revenue_lift = retry_change = None
        if base is not None:
            revenue_lift = relative_change(p.recovered_revenue, base.recovered_revenue)
            retry_change = relative_change(p.retries, base.retries)
        table.add_row(
            p.policy,
            f"{p.recovered_invoices:,} ({p.invoices_recovered_pct}%)",
            f"${p.recovered_revenue:,.2f} ({p.revenue_recovered_pct}%)",
            f"{p.retries:,}",
            f"{p.attempts_per_recovery:.2f}" if p.attempts_per_recovery else "-",
            f"{p.mean_days_to_recovery:.2f}" if p.mean_days_to_recovery is not None else "-",
            f"{p.cancelled:,}",
            f"[bold red]{p.violations}[/]" if p.violations else "0",
            _signed(revenue_lift),
            _signed(retry_change),
        )
    return table


def _signed(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:+}%"


def write_chart(pooled: Sequence[PooledSummary], path: Path) -> Path:
    """A PNG of cumulative revenue recovered (% of revenue at risk) by day of dunning."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        for p in pooled:
            days = range(len(p.cumulative_by_day))
            ax.step(days, [100 * v for v in p.cumulative_by_day], where="post", label=p.policy)
        ax.set_xlabel("days since the first failure")
        ax.set_ylabel("revenue recovered (% of revenue at risk)")
        seeds = pooled[0].seeds if pooled else 0
        ax.set_title(f"Cumulative recovery by day ({seeds} seed(s))")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
    return path


def family_table(results: Sequence[FamilyResult], names: Sequence[str], holdout: float) -> Table:
    """``simulate --families``: per held-out family, each policy's revenue lift over ``fixed``
    (attempts per invoice, violations) and its holdout uplift CI; then the mean and the worst."""
    table = Table(
        title=f"Held-out world families ({len(results)}), revenue vs fixed; holdout uplift "
        f"({holdout:.0%} of invoices on fixed, 95 % bootstrap CI)",
        title_justify="left",
    )
    table.add_column("family", justify="right")
    table.add_column("fixed recovered", justify="right")
    others = [n for n in names if n != "fixed"]
    for name in others:
        table.add_column(f"{name} vs fixed", justify="right")
        table.add_column(f"{name} holdout uplift", justify="right")
    table.add_column("attempts / invoice (" + " / ".join(names) + ")", justify="right")
    table.add_column("violations", justify="right")
    for r in results:
        row = [str(r.family), f"{r.summaries['fixed'].revenue_recovered_pct}%"]
        for name in others:
            uplift = r.uplifts.get(name)
            row += [f"{100 * r.lift(name):+.2f}%", uplift.describe() if uplift else "-"]
        row.append(" / ".join(f"{r.attempts_per_invoice(n):.2f}" for n in names))
        violations = sum(r.summaries[n].violations for n in names)
        row.append(f"[bold red]{violations}[/]" if violations else "0")
        table.add_row(*row)
    if results:
        mean_row, worst_row = ["mean", "-"], ["worst", "-"]
        for name in others:
            lifts = [r.lift(name) for r in results]
            mean_row += [f"{100 * sum(lifts) / len(lifts):+.2f}%", ""]
            worst_row += [f"{100 * min(lifts):+.2f}%", ""]
        mean_row.append(
            " / ".join(
                f"{sum(r.attempts_per_invoice(n) for r in results) / len(results):.2f}"
                for n in names
            )
        )
        worst_row.append("")
        mean_row.append("")
        worst_row.append("")
        table.add_row(*mean_row)
        table.add_row(*worst_row)
    return table
