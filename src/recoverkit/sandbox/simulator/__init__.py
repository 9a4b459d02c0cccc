"""The payment simulator behind ``recoverkit simulate``: a seeded world of failed renewals, an
issuer that answers retries, and an audit of every attempt against the network rules."""

from __future__ import annotations

from recoverkit.sandbox.simulator.engine import InvoiceLog, Outcome, PolicyRun, run_policy
from recoverkit.sandbox.simulator.metrics import (
    PolicySummary,
    Violation,
    find_violations,
    summarize,
)
from recoverkit.sandbox.simulator.run import simulate
from recoverkit.sandbox.simulator.world import World, WorldConfig

__all__ = [
    "InvoiceLog",
    "Outcome",
    "PolicyRun",
    "PolicySummary",
    "Violation",
    "World",
    "WorldConfig",
    "find_violations",
    "run_policy",
    "simulate",
    "summarize",
]
