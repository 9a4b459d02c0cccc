"""The bridge's gate on ``transactions[].psp``: Butter's list plus the ``extra_psp_names`` setting.

A plugin for a PSP that is not on Butter's list builds its messages with its own name admitted
(``parse(..., context={"extra_psp_names": {name}})``); whether the merchant's Recover account takes
that name is the merchant's decision, so the worker checks every Payments message against
:data:`~recoverkit.schema.BUTTER_PSP_NAMES` and ``extra_psp_names`` before it is queued. A message
that fails is a translation failure naming the setting (retried, then given up like any other).
"""

from __future__ import annotations

from collections.abc import Iterable

from recoverkit.errors import WireValidationError
from recoverkit.schema import BUTTER_PSP_NAMES, PaymentEvent

__all__ = ["check_psp_names"]


def check_psp_names(payment: PaymentEvent, extra_psp_names: Iterable[str]) -> None:
    """Raise :class:`WireValidationError` when a transaction names a PSP Recover was not told of."""
    allowed = BUTTER_PSP_NAMES | frozenset(extra_psp_names)
    problems = [
        (
            f"transactions.{index}.psp",
            f"{transaction.psp!r} is not on Recover's PSP list "
            f"({', '.join(sorted(BUTTER_PSP_NAMES))}); add it to extra_psp_names "
            "(RECOVERKIT_EXTRA_PSP_NAMES) if your Recover account accepts it",
        )
        for index, transaction in enumerate(payment.transactions)
        if transaction.psp not in allowed
    ]
    if problems:
        raise WireValidationError("PaymentEvent", problems)
