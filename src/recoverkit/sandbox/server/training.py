"""Training data for the ``learned`` policy from what the sandbox has stored.

One example per finished retry: the invoice as it stood just before the retry (the same
:func:`~recoverkit.sandbox.server.context.policy_context` the engine plans with), when the retry
ran, and whether the issuer approved it.
"""

from __future__ import annotations

from sqlalchemy import select

from recoverkit.sandbox.policies.learned import TrainingExample
from recoverkit.sandbox.server import store
from recoverkit.sandbox.server.context import policy_context
from recoverkit.sandbox.server.dunning import DunningBook, InvoiceState

__all__ = ["examples_from_sandbox"]


def examples_from_sandbox(book: DunningBook) -> list[TrainingExample]:
    """Every finished retry in the sandbox's store, successes and failures."""
    with book.engine.connect() as conn:
        rows = conn.execute(select(store.invoices).order_by(store.invoices.c.invoice_id)).all()
    examples: list[TrainingExample] = []
    for row in rows:
        invoice = InvoiceState.from_row(row)
        for attempt in book.attempts_of(invoice.invoice_id):
            if attempt.finished_at is None or attempt.success is None:
                continue
            context = policy_context(
                book, invoice, now=attempt.started_at, before=attempt.started_at
            )
            examples.append(TrainingExample(context, attempt.started_at, bool(attempt.success)))
    return examples
