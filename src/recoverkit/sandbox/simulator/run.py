"""Run several policies on the same seeded worlds."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from recoverkit.rules import NetworkRules
from recoverkit.sandbox.policies.base import DEFAULT_RULES, RetryPolicy
from recoverkit.sandbox.simulator.engine import run_policy
from recoverkit.sandbox.simulator.metrics import PolicySummary, summarize
from recoverkit.sandbox.simulator.world import World, WorldConfig


def simulate(
    policies: Sequence[RetryPolicy],
    config: WorldConfig,
    seeds: Sequence[int],
    *,
    rules: NetworkRules = DEFAULT_RULES,
    progress: Callable[[int, str], None] | None = None,
) -> dict[str, list[PolicySummary]]:
    """Every policy on the world of every seed (``config.seed`` is replaced by each seed).

    Within a seed every policy meets the same invoices and the same hidden issuer state.
    """
    names = [policy.name for policy in policies]
    if len(set(names)) != len(names):
        raise ValueError(f"policy names must be unique, got {names}")
    results: dict[str, list[PolicySummary]] = {name: [] for name in names}
    for seed in seeds:
        world = World(_with_seed(config, seed))
        for policy in policies:
            if progress:
                progress(seed, policy.name)
            results[policy.name].append(summarize(run_policy(world, policy, rules), rules))
    return results


def _with_seed(config: WorldConfig, seed: int) -> WorldConfig:
    from dataclasses import replace

    return replace(config, seed=seed)
