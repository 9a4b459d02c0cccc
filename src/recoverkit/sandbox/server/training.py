"""Learning from what the sandbox has stored: training examples, the adaptive policy's online
updates, and the holdout uplift report.

One example per finished retry: the invoice as it stood just before the retry (the same
:func:`~recoverkit.sandbox.server.context.policy_context` the engine plans with), when the retry
ran, and whether the issuer approved it. Nothing after the retry's start is visible in its
context (``before=``), so no example leaks its own future.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, update

from recoverkit.sandbox.policies.base import TrainingExample
from recoverkit.sandbox.policies.holdout import in_holdout
from recoverkit.sandbox.server import store
from recoverkit.sandbox.server.context import policy_context
from recoverkit.sandbox.server.dunning import DunningBook, InvoiceState

__all__ = ["StoreLearner", "StoredUplift", "examples_from_sandbox", "uplift_from_sandbox"]


def examples_from_sandbox(book: DunningBook, *, after_id: int = 0) -> list[TrainingExample]:
    """Every finished retry in the sandbox's store (after attempt id ``after_id``)."""
    return [example for _, example in _examples(book, after_id)]


def _examples(book: DunningBook, after_id: int) -> list[tuple[int, TrainingExample]]:
    a = store.attempts.c
    with book.engine.connect() as conn:
        rows = conn.execute(
            select(store.attempts)
            .where(a.id > after_id, a.finished_at.is_not(None), a.success.is_not(None))
            .order_by(a.id)
        ).all()
    invoices: dict[str, InvoiceState | None] = {}
    out: list[tuple[int, TrainingExample]] = []
    for attempt in rows:
        if attempt.invoice_id not in invoices:
            invoices[attempt.invoice_id] = book.invoice(attempt.invoice_id)
        invoice = invoices[attempt.invoice_id]
        if invoice is None:
            continue
        context = policy_context(book, invoice, now=attempt.started_at, before=attempt.started_at)
        out.append(
            (attempt.id, TrainingExample(context, attempt.started_at, bool(attempt.success)))
        )
    return out


class StoreLearner:
    """Feeds a learning policy (``adaptive``) every finished retry once, and persists its state.

    :meth:`sync` reads the retries finished since the last one learned from, passes them to the
    policy's ``observe`` and writes the policy's JSON state and the watermark to
    ``sandbox_policy_state`` in one transaction; a new learner resumes from the stored state.
    """

    def __init__(self, book: DunningBook, policy: Any) -> None:
        self.book = book
        #: Needs ``name``, ``observe(outcomes)``, ``state_json()`` and ``load_state(text)``.
        self.policy = policy
        self.learned_through = 0
        s = store.policy_state.c
        with book.engine.connect() as conn:
            row = conn.execute(select(store.policy_state).where(s.name == policy.name)).first()
        if row is not None:
            policy.load_state(row.state)
            self.learned_through = int(row.learned_through)

    def sync(self, now: datetime) -> int:
        """Learn from the retries finished since the last sync; returns how many."""
        found = _examples(self.book, self.learned_through)
        if not found:
            return 0
        self.policy.observe([example for _, example in found])
        self.learned_through = found[-1][0]
        s = store.policy_state.c
        values = {
            "state": self.policy.state_json(),
            "learned_through": self.learned_through,
            "observations": int(getattr(self.policy, "observations", 0)),
            "updated_at": now,
        }
        with self.book.engine.begin() as conn:
            changed = conn.execute(
                update(store.policy_state).where(s.name == self.policy.name).values(**values)
            ).rowcount
            if not changed:
                conn.execute(insert(store.policy_state).values(name=self.policy.name, **values))
        return len(found)


@dataclass(frozen=True, slots=True)
class StoredUplift:
    """The holdout uplift of the sandbox's finished invoices (one currency)."""

    currency: str
    uplift: Any  # recoverkit.sandbox.simulator.uplift.Uplift (numpy: the sandbox extra)


def uplift_from_sandbox(
    book: DunningBook, *, share: float, salt: str = "recoverkit-holdout", seed: int = 0
) -> list[StoredUplift]:
    """Recovered-revenue uplift, treated vs holdout, over invoices whose dunning has ended.

    The split is recomputed from the invoice ids with the same share and salt the sandbox used
    (:func:`~recoverkit.sandbox.policies.holdout.in_holdout`). One result per currency.
    """
    import numpy as np

    from recoverkit.sandbox.simulator.uplift import holdout_uplift, to_cents

    i = store.invoices.c
    with book.engine.connect() as conn:
        rows = conn.execute(
            select(i.invoice_id, i.amount, i.currency, i.state).where(
                i.state.in_(("recovered", "ended"))
            )
        ).all()
    results = []
    for currency in sorted({r.currency for r in rows}):
        mine = [r for r in rows if r.currency == currency]
        held = np.asarray([in_holdout(r.invoice_id, share, salt) for r in mine], dtype=bool)
        risk = to_cents([Decimal(r.amount) for r in mine])
        got = np.where(np.asarray([r.state == "recovered" for r in mine]), risk, 0)
        uplift = holdout_uplift(got[~held], risk[~held], got[held], risk[held], seed=seed)
        results.append(StoredUplift(currency, uplift))
    return results
