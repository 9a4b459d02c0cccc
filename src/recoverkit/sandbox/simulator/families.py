"""Families of worlds: policies are tuned on some and judged on others they have never seen.

A *family* is a :class:`WorldConfig` whose knobs are drawn from wide ranges by
:func:`family_config` — payday calendars and their mix, time-zone spread and the share of unknown
time zones, the decline mix, per-reason recovery curves (fast or slow outages; generic declines
that clear at a hidden time, keep a steady chance or decay), card-update and cancellation rates,
Mastercard MAC frequency, issuer time-of-day effects and the dunning window. Each family is then
simulated with a seed like any world (common random numbers across policies).

Held-out families are numbered from 0 (``recoverkit simulate --families N`` runs 0 … N-1);
training families from :data:`TRAINING_FAMILY_OFFSET`. Nothing in the policies may depend on a
held-out family's draws: the ``learned`` model is trained on training families, and ``adaptive``
starts cold on every world. The ranges are ASSUMPTIONS, chosen wide on purpose (see
docs/simulator.md), not fitted to data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from recoverkit.rules import NetworkRules
from recoverkit.sandbox.policies.base import DEFAULT_RULES, RetryPolicy
from recoverkit.sandbox.simulator.engine import Outcome, run_policy
from recoverkit.sandbox.simulator.metrics import PolicySummary, summarize
from recoverkit.sandbox.simulator.report import PooledSummary, pool
from recoverkit.sandbox.simulator.uplift import Uplift, assign_holdout, holdout_uplift, to_cents
from recoverkit.sandbox.simulator.world import (
    COUNTRIES,
    COUNTRY_SHARES,
    DECLINE_TYPES,
    PAY_SCHEDULE_SHARES,
    World,
    WorldConfig,
)

__all__ = [
    "TRAINING_FAMILY_OFFSET",
    "FamilyResult",
    "describe",
    "family_config",
    "run_families",
    "training_families",
]

TRAINING_FAMILY_OFFSET = 1_000
"""Training families are numbered from here; held-out families from 0."""
_SALT = 0x14F4


def _loguniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(high))))


def family_config(family: int, *, invoices: int = 20_000, seed: int = 0) -> WorldConfig:
    """The world of family ``family`` (its knobs depend on ``family`` only), seeded ``seed``."""
    if family < 0:
        raise ValueError("family must be >= 0")
    rng = np.random.default_rng([_SALT, family])
    # Time zones: a US-heavy merchant, a European one, or a global one.
    regime = int(rng.integers(0, 3))
    if regime == 0:
        countries = np.asarray(COUNTRY_SHARES) + 0.01
    elif regime == 1:
        countries = np.asarray([0.05, 0.02, 0.30, 0.30, 0.25, 0.02, 0.02, 0.02, 0.02])
    else:
        countries = rng.dirichlet(np.full(len(COUNTRIES), 0.7))
    decline = np.asarray([d.share for d in DECLINE_TYPES]) * rng.lognormal(
        0, 0.5, len(DECLINE_TYPES)
    )
    pay = rng.dirichlet(np.asarray(PAY_SCHEDULE_SHARES) * 4 + 0.5)
    config = WorldConfig(
        invoices=invoices,
        seed=seed,
        dunning_window_days=int(rng.choice([14, 21, 28, 30, 30, 30])),
        funds_never=float(rng.uniform(0.1, 0.5)),
        payday_funded=float(rng.uniform(0.3, 0.8)),
        funds_mean_hours=_loguniform(rng, 12, 168),
        transfer_chance=float(rng.uniform(0.0, 0.4)),
        generic_clears=float(rng.uniform(0.3, 0.8)),
        generic_clear_mean_hours=_loguniform(rng, 12, 240),
        technical_clear_mean_hours=_loguniform(rng, 0.5, 48),
        approve_when_clear=float(rng.uniform(0.75, 0.95)),
        approve_new_card=float(rng.uniform(0.7, 0.95)),
        night_factor=float(rng.uniform(0.5, 1.0)),
        updater_refresh=float(rng.uniform(0.2, 0.8)),
        updater_mean_hours=_loguniform(rng, 6, 120),
        customer_update_hard=float(rng.uniform(0.1, 0.4)),
        customer_update_soft=float(rng.uniform(0.02, 0.12)),
        cancel_chance=float(rng.uniform(0.03, 0.25)),
        country_shares=tuple(float(x) for x in countries / countries.sum()),
        pay_schedule_shares=tuple(float(x) for x in pay),  # type: ignore[arg-type]
        decline_shares=tuple(float(x) for x in decline / decline.sum()),
        mac_rate=float(rng.uniform(0.0, 3.0)),
        unknown_time_zone=float(rng.uniform(0.0, 0.8)),
        zone_spread=True,
        generic_shape_shares=tuple(float(x) for x in rng.dirichlet([1.0, 1.0, 1.0])),  # type: ignore[arg-type]
        generic_steady_p=float(rng.uniform(0.05, 0.35)),
        generic_decay_p0=float(rng.uniform(0.3, 0.8)),
        generic_decay_hours=_loguniform(rng, 12, 200),
        limit_daily=float(rng.uniform(0.2, 0.8)),
        evening_factor=float(rng.uniform(0.75, 1.05)),
    )
    return config


def training_families(count: int) -> list[int]:
    """The first ``count`` training family numbers."""
    return [TRAINING_FAMILY_OFFSET + k for k in range(count)]


def describe(config: WorldConfig) -> str:
    """A one-line summary of a family's most telling knobs."""
    pay = "/".join(f"{100 * x:.0f}" for x in config.pay_schedule_shares)
    shape = "/".join(f"{100 * x:.0f}" for x in config.generic_shape_shares)
    return (
        f"window {config.dunning_window_days} d, pay w/bw/sm/m {pay} %, "
        f"unknown tz {100 * config.unknown_time_zone:.0f} %, generic clear/steady/decay {shape} %, "
        f"outage mean {config.technical_clear_mean_hours:.1f} h, night x{config.night_factor:.2f}"
    )


def with_seed(config: WorldConfig, seed: int, invoices: int | None = None) -> WorldConfig:
    """``config`` with another seed (and size)."""
    return replace(config, seed=seed, invoices=invoices or config.invoices)


@dataclass(frozen=True, slots=True)
class FamilyResult:
    """Every policy on one family (pooled over its seeds), with the holdout statistic."""

    family: int
    config: WorldConfig
    summaries: dict[str, PooledSummary]
    #: Per policy: the holdout uplift over the baseline (``None`` for the baseline itself).
    uplifts: dict[str, Uplift | None]

    def lift(self, policy: str, baseline: str = "fixed") -> float:
        """Recovered revenue of ``policy`` over ``baseline``, minus one."""
        base = self.summaries[baseline].recovered_revenue
        return float(self.summaries[policy].recovered_revenue / base - 1) if base else 0.0

    def attempts_per_invoice(self, policy: str) -> float:
        """Retries per failed invoice."""
        pooled = self.summaries[policy]
        return pooled.retries / pooled.invoices


def run_families(
    factories: dict[str, Callable[[], RetryPolicy]],
    families: Sequence[int],
    *,
    invoices: int,
    seeds: Sequence[int],
    rules: NetworkRules = DEFAULT_RULES,
    baseline: str = "fixed",
    holdout_share: float = 0.1,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[FamilyResult]:
    """Every policy (a fresh, cold one per world: ``factories``) on every family and seed.

    The holdout statistic simulates what the sandbox does: a seeded random ``holdout_share`` of
    the invoices is credited with the baseline's outcome, the rest with the policy's (both ran on
    the same world), and the uplift's bootstrap CI is computed as in the sandbox.
    """
    if baseline not in factories:
        raise ValueError(f"the baseline {baseline!r} must be one of the policies")
    results = []
    for family in families:
        per_policy: dict[str, list[PolicySummary]] = {name: [] for name in factories}
        revenue: dict[str, list[npt.NDArray[np.int64]]] = {name: [] for name in factories}
        at_risk: list[npt.NDArray[np.int64]] = []
        holdout: list[npt.NDArray[np.bool_]] = []
        config = family_config(family, invoices=invoices)
        for seed in seeds:
            world = World(replace(config, seed=seed))
            for name, factory in factories.items():
                if progress:
                    progress(family, seed, name)
                run = run_policy(world, factory(), rules)
                per_policy[name].append(summarize(run, rules))
                revenue[name].append(
                    to_cents(
                        [
                            log.amount if log.outcome is Outcome.RECOVERED else Decimal(0)
                            for log in run.logs
                        ]
                    )
                )
                if name == baseline:
                    at_risk.append(to_cents([log.amount for log in run.logs]))
                    holdout.append(
                        assign_holdout([log.invoice_id for log in run.logs], holdout_share, seed)
                    )
        risk = np.concatenate(at_risk)
        held = np.concatenate(holdout)
        base_revenue = np.concatenate(revenue[baseline])
        uplifts: dict[str, Uplift | None] = {}
        for name in factories:
            if name == baseline:
                uplifts[name] = None
                continue
            mine = np.concatenate(revenue[name])
            uplifts[name] = holdout_uplift(
                mine[~held], risk[~held], base_revenue[held], risk[held], seed=family
            )
        summaries = {name: pool(runs) for name, runs in per_policy.items()}
        results.append(FamilyResult(family, config, summaries, uplifts))
    return results
