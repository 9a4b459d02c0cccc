"""Training data for the ``learned`` policy from simulated dunning histories."""

from __future__ import annotations

from collections.abc import Sequence

from recoverkit.rules import NetworkRules
from recoverkit.sandbox.policies.base import DEFAULT_RULES
from recoverkit.sandbox.policies.learned import (
    ExplorationPolicy,
    ModelMetrics,
    SuccessModel,
    TrainingExample,
    train_success_model,
)
from recoverkit.sandbox.simulator.engine import InvoiceLog, run_policy
from recoverkit.sandbox.simulator.world import World, WorldConfig


def examples_from_logs(logs: Sequence[InvoiceLog]) -> list[TrainingExample]:
    """One example per retry: the invoice as it stood before the retry, its time and result."""
    examples = []
    for log in logs:
        for k in range(1, len(log.attempts)):
            attempt = log.attempts[k]
            context = log.context(attempt.at, attempts=k)
            examples.append(TrainingExample(context, attempt.at, attempt.approved))
    return examples


def simulated_history(
    config: WorldConfig, rules: NetworkRules = DEFAULT_RULES
) -> list[TrainingExample]:
    """Retries (successes and failures) of a world run with the exploration policy."""
    run = run_policy(World(config), ExplorationPolicy(seed=config.seed), rules)
    return examples_from_logs(run.logs)


def train_on_simulation(
    config: WorldConfig, *, holdout: float = 0.25, rules: NetworkRules = DEFAULT_RULES
) -> tuple[SuccessModel, ModelMetrics]:
    """Fit a :class:`SuccessModel` on a simulated history; held-out metrics."""
    return train_success_model(simulated_history(config, rules), holdout=holdout, seed=config.seed)


def train_on_families(
    families: int,
    *,
    invoices: int = 20_000,
    holdout: float = 0.25,
    rules: NetworkRules = DEFAULT_RULES,
    seed: int = 0,
) -> tuple[SuccessModel, ModelMetrics]:
    """Fit a :class:`SuccessModel` on exploration histories of the first ``families`` training
    families (``invoices`` in all, split evenly) — never on a held-out family."""
    from recoverkit.sandbox.simulator.families import family_config, training_families

    if families < 1:
        raise ValueError("train on at least one family")
    per_family = max(100, invoices // families)
    examples: list[TrainingExample] = []
    for family in training_families(families):
        config = family_config(family, invoices=per_family, seed=seed)
        examples += simulated_history(config, rules)
    return train_success_model(examples, holdout=holdout, seed=seed)
