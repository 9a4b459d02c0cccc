"""Hook specifications: plugin registration and merchant customisation.

Behaviour lives on the registered :class:`~recoverkit.provider.Provider` class; hooks are few.
Each hook has a page in ``docs/hooks/`` with its exact signature (a test checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer

    from recoverkit.provider import BillingContext, InvoiceRef, Provider, ProviderEvent
    from recoverkit.schema import EndOfDunning, PaymentEvent, RetryResults, RetryStatusResponse

hookspec = pluggy.HookspecMarker("recoverkit")
hookimpl = pluggy.HookimplMarker("recoverkit")


@dataclass(frozen=True, slots=True)
class PaymentAmendment:
    """What a merchant adds to an outgoing Payments event: ``custom`` keys, a reporting group."""

    custom: dict[str, Any] = field(default_factory=dict)
    reporting_group: str | None = None


@hookspec
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Called once at start-up: call ``register(ProviderSubclass)`` for each PSP the plugin adds."""


@hookspec
def register_commands(cli: typer.Typer) -> None:
    """Called when the CLI is built: add commands or sub-apps to the ``recoverkit`` CLI."""


@hookspec(firstresult=True)
def billing_context(provider: str, event: ProviderEvent) -> BillingContext | None:
    """Called while translating an event whose PSP lacks billing facts (e.g. Adyen).

    Return the customer, subscription and invoice the payment belongs to, or None to defer to
    the next implementation (the provider's documented default comes last).
    """


@hookspec
def amend_payment_event(event: ProviderEvent, payment: PaymentEvent) -> PaymentAmendment | None:
    """Called for every Payments event before it is queued for Recover.

    Return ``custom`` keys and/or a ``reporting_group`` to add; every implementation's amendment
    is applied, later-registered plugins first (pluggy order), a later key winning.
    """


@hookspec(firstresult=True)
def retry_veto(invoice: InvoiceRef, status: RetryStatusResponse) -> str | None:
    """Called when Recover asks whether ``invoice`` may be retried and the PSP says yes.

    Return a reason to refuse the retry (it becomes RetryStatus's ``reason``), or None.
    """


@hookspec
def on_retry_result(result: RetryResults, invoice: InvoiceRef) -> None:
    """Called after a verified, de-duplicated Retry Results webhook was reconciled at the PSP."""


@hookspec
def on_end_of_dunning(notice: EndOfDunning, invoice: InvoiceRef) -> None:
    """Called after a verified, de-duplicated End of Dunning webhook was applied at the PSP."""
