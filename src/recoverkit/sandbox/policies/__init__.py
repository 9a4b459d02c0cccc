"""Retry policies: the interface, the network-rules guard and the built-in policies.

``LearnedPolicy`` and ``SuccessModel`` (numpy, scikit-learn: the ``sandbox`` extra) are imported
on first use, so the interface, the guard, ``fixed`` and ``rules`` need no extra dependency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recoverkit.rules import NetworkRules
from recoverkit.sandbox.policies.base import (
    DEFAULT_RULES,
    GuardedDecision,
    InvoiceAttempt,
    PaymentMethodUpdate,
    PolicyContext,
    Proposal,
    Retry,
    RetryPolicy,
    Stop,
    guard_proposal,
    guarded_next_attempt,
    next_attempts,
)
from recoverkit.sandbox.policies.decline_aware import DeclineAwarePolicy
from recoverkit.sandbox.policies.fixed import FixedSchedule

if TYPE_CHECKING:
    from recoverkit.sandbox.policies.learned import LearnedPolicy, SuccessModel

POLICY_NAMES = ("fixed", "rules", "learned", "adaptive")


def build_policy(
    name: str, *, model: SuccessModel | None = None, rules: NetworkRules = DEFAULT_RULES
) -> RetryPolicy:
    """A built-in policy by name; ``learned`` needs a fitted ``model``. ``rules`` are the
    network rules the policy fits its slots to (use the guard's)."""
    if name == "fixed":
        return FixedSchedule(rules=rules)
    if name == "rules":
        return DeclineAwarePolicy(rules=rules)
    if name == "learned":
        if model is None:
            raise ValueError("the learned policy needs a fitted SuccessModel")
        from recoverkit.sandbox.policies.learned import LearnedPolicy

        return LearnedPolicy(model)
    if name == "adaptive":
        from recoverkit.sandbox.policies.adaptive import AdaptivePolicy

        return AdaptivePolicy(rules=rules)
    raise ValueError(f"unknown policy {name!r}; choose from {', '.join(POLICY_NAMES)}")


def __getattr__(name: str) -> Any:
    if name in {"LearnedPolicy", "SuccessModel"}:
        from recoverkit.sandbox.policies import learned

        return getattr(learned, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "POLICY_NAMES",
    "DeclineAwarePolicy",
    "FixedSchedule",
    "GuardedDecision",
    "InvoiceAttempt",
    "LearnedPolicy",
    "PaymentMethodUpdate",
    "PolicyContext",
    "Proposal",
    "Retry",
    "RetryPolicy",
    "Stop",
    "SuccessModel",
    "build_policy",
    "guard_proposal",
    "guarded_next_attempt",
    "next_attempts",
]
