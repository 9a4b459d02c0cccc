"""A random holdout: a share of invoices goes to a baseline policy, so uplift can be measured.

:class:`HoldoutPolicy` is itself a policy (pure: the split is a hash of the invoice id and a
salt, so an invoice stays in its group for its whole dunning, across restarts). The sandbox
wraps its configured policy in it (``RECOVERKIT_SANDBOX_HOLDOUT_SHARE``, default 10 %) and
``recoverkit sandbox uplift`` reports the recovered-revenue uplift with a bootstrap CI.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from recoverkit.sandbox.policies.base import (
    PolicyContext,
    Proposal,
    Retry,
    RetryPolicy,
    Stop,
    TrainingExample,
    next_attempts,
)

__all__ = ["HoldoutPolicy", "in_holdout"]


def in_holdout(invoice_id: str, share: float, salt: str = "recoverkit-holdout") -> bool:
    """Whether ``invoice_id`` belongs to the holdout (stable for a given share and salt)."""
    if not 0 <= share < 1:
        raise ValueError("holdout share must be at least 0 and below 1")
    return zlib.crc32(f"{salt}:{invoice_id}".encode()) % 1_000_000 < round(share * 1_000_000)


class HoldoutPolicy:
    """``treated`` for most invoices, ``baseline`` for a random ``share`` of them."""

    def __init__(
        self,
        treated: RetryPolicy,
        baseline: RetryPolicy,
        *,
        share: float = 0.1,
        salt: str = "recoverkit-holdout",
    ) -> None:
        in_holdout("probe", share, salt)  # validates the share
        self.treated = treated
        self.baseline = baseline
        self.share = share
        self.salt = salt
        self.name = treated.name

    def holds_out(self, invoice_id: str) -> bool:
        """Whether the invoice is handled by the baseline."""
        return in_holdout(invoice_id, self.share, self.salt)

    def next_attempt(self, context: PolicyContext) -> Proposal:
        """The baseline's proposal for holdout invoices (reason prefixed), else the treated's."""
        return self.next_attempts([context])[0]

    def next_attempts(self, contexts: Sequence[PolicyContext]) -> list[Proposal]:
        """Both policies' batch decisions, each on its own invoices."""
        held = [self.holds_out(c.invoice_id) for c in contexts]
        base = iter(
            next_attempts(self.baseline, [c for c, h in zip(contexts, held, strict=True) if h])
        )
        main = iter(
            next_attempts(self.treated, [c for c, h in zip(contexts, held, strict=True) if not h])
        )
        out: list[Proposal] = []
        for h in held:
            if not h:
                out.append(next(main))
                continue
            proposal = next(base)
            tag = f"holdout ({self.baseline.name}): "
            if isinstance(proposal, Retry):
                out.append(Retry(proposal.at, tag + proposal.reason))
            else:
                out.append(Stop(tag + proposal.reason, proposal.awaiting_payment_method))
        return out

    def observe(self, outcomes: Sequence[TrainingExample]) -> None:
        """Pass retry outcomes (of both groups) to a learning treated policy."""
        observe = getattr(self.treated, "observe", None)
        if callable(observe):
            observe(outcomes)
