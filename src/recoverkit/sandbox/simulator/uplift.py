"""Holdout uplift with a bootstrap confidence interval — how a merchant knows a policy pays.

A random share of invoices (the *holdout*) is handled by the baseline policy, the rest by the
policy under test. The uplift is the recovered revenue per invoice of the treated group over that
of the holdout, minus one; its confidence interval comes from resampling invoices with
replacement within each group (percentile bootstrap). Amounts are integer cents (exact); only
the ratio is a float. The sandbox reports the same statistic from its store.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

__all__ = ["Uplift", "assign_holdout", "holdout_uplift", "to_cents"]


@dataclass(frozen=True, slots=True)
class Uplift:
    """Recovered revenue per invoice, treated vs holdout, with a bootstrap CI of the ratio."""

    treated_invoices: int
    holdout_invoices: int
    treated_recovered: Decimal
    holdout_recovered: Decimal
    treated_at_risk: Decimal
    holdout_at_risk: Decimal
    #: Relative uplift (0.12 = 12 % more recovered revenue per invoice); ``None`` when undefined.
    uplift: float | None
    low: float | None
    high: float | None
    level: float

    def describe(self) -> str:
        """``+12.3 % [+4.1, +20.9]`` (95 % CI) or ``-`` when undefined."""
        if self.uplift is None or self.low is None or self.high is None:
            return "-"
        return f"{100 * self.uplift:+.1f} % [{100 * self.low:+.1f}, {100 * self.high:+.1f}]"


def to_cents(amounts: Sequence[Decimal]) -> npt.NDArray[np.int64]:
    """Decimal amounts as exact integer cents (refuses sub-cent amounts)."""
    cents = []
    for amount in amounts:
        scaled = amount * 100
        if scaled != scaled.to_integral_value():
            raise ValueError(f"amount {amount} has sub-cent digits")
        cents.append(int(scaled))
    return np.asarray(cents, dtype=np.int64)


def assign_holdout(
    invoice_ids: Sequence[str], share: float, seed: int = 0
) -> npt.NDArray[np.bool_]:
    """A random holdout of ``share`` of the invoices (seeded, stable per invoice id)."""
    if not 0 < share < 1:
        raise ValueError("holdout share must be between 0 and 1")
    keys = np.asarray([zlib.crc32(f"{seed}:{i}".encode()) for i in invoice_ids], dtype=np.int64)
    return (keys % 1_000_000) < round(share * 1_000_000)


def holdout_uplift(
    treated_recovered: npt.NDArray[np.int64],
    treated_at_risk: npt.NDArray[np.int64],
    holdout_recovered: npt.NDArray[np.int64],
    holdout_at_risk: npt.NDArray[np.int64],
    *,
    reps: int = 2_000,
    level: float = 0.95,
    seed: int = 0,
) -> Uplift:
    """Uplift of recovered revenue per invoice (cents arrays, one entry per invoice).

    Revenue *rates* (recovered / at risk) are compared so that groups with different amounts at
    risk compare fairly; the bootstrap resamples whole invoices within each group.
    """
    if reps < 100:
        raise ValueError("reps must be at least 100")
    n_t, n_h = len(treated_recovered), len(holdout_recovered)
    money = (
        Decimal(int(treated_recovered.sum())).scaleb(-2),
        Decimal(int(holdout_recovered.sum())).scaleb(-2),
        Decimal(int(treated_at_risk.sum())).scaleb(-2),
        Decimal(int(holdout_at_risk.sum())).scaleb(-2),
    )
    if not n_t or not n_h or not holdout_recovered.sum() or not holdout_at_risk.sum():
        return Uplift(n_t, n_h, *money, None, None, None, level)
    rate_t = treated_recovered.sum() / treated_at_risk.sum()
    rate_h = holdout_recovered.sum() / holdout_at_risk.sum()
    rng = np.random.default_rng(seed)
    ratios = np.empty(reps)
    chunk = max(1, 2_000_000 // max(n_t, 1))
    done = 0
    while done < reps:
        k = min(chunk, reps - done)
        it = rng.integers(0, n_t, (k, n_t))
        ih = rng.integers(0, n_h, (k, n_h))
        rt = treated_recovered[it].sum(axis=1) / treated_at_risk[it].sum(axis=1)
        rh_num = holdout_recovered[ih].sum(axis=1)
        rh = rh_num / holdout_at_risk[ih].sum(axis=1)
        ratios[done : done + k] = np.where(rh_num > 0, rt / np.where(rh > 0, rh, 1.0) - 1, np.nan)
        done += k
    finite = ratios[np.isfinite(ratios)]
    alpha = (1 - level) / 2
    low, high = (float(x) for x in np.quantile(finite, [alpha, 1 - alpha]))
    return Uplift(n_t, n_h, *money, float(rate_t / rate_h - 1), low, high, level)
