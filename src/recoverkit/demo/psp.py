"""The demo's stand-in for the PSPs' APIs: a simulated issuer behind each real plugin.

Webhook verification, parsing and translation are the real plugins'. What would need a PSP
account — RetryStatus's view of the invoice, charging a retry, reconciling, ending dunning — is
answered here, so the loop runs with no account and no network. The issuer is deterministic and
simple on purpose (the seeded statistical world lives in ``recoverkit simulate``):

- ``insufficient_funds``: approves once funds arrive, three days after the first failure;
- ``issuer_unavailable`` / ``limit_exceeded``: approves from the first retry;
- ``generic_soft`` and anything else soft: approves on the second retry;
- hard declines: never (the network-rules guard keeps the sandbox from asking anyway).

Charges are idempotent per key, as every real PSP's API is: the same key returns the first
answer and moves no money twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from recoverkit.declines import DeclineCategory, NormalizedDecline, ResponseType
from recoverkit.provider import (
    Capability,
    EndOfDunningPolicy,
    InvoiceRef,
    Provider,
    ProviderEvent,
    RetryAttempt,
    RetryInstruction,
    Translation,
    WebhookRequest,
)
from recoverkit.schema import EndOfDunning, RetryResults, RetryStatusResponse

__all__ = ["SimulatedInvoice", "SimulatedPsp", "simulated"]

FUNDS_ARRIVE_AFTER = timedelta(days=3)


@dataclass
class SimulatedInvoice:
    """One invoice as the simulated PSP sees it."""

    invoice_id: str
    provider: str
    amount: Decimal
    currency: str
    decline: NormalizedDecline
    first_failed_at: datetime
    status: str = "open"  # open | paid | uncollectible
    retries: int = 0
    approved_charges: int = 0
    recover_ids: list[str] = field(default_factory=list)
    end_of_dunning: str | None = None


class SimulatedPsp:
    """Shared, thread-safe state of every simulated PSP account in the demo."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.invoices: dict[str, SimulatedInvoice] = {}
        self.charges: dict[str, RetryAttempt] = {}
        self.duplicate_key_calls = 0
        self._lock = threading.Lock()

    def open_invoice(
        self,
        provider: str,
        invoice_id: str,
        amount: Decimal,
        currency: str,
        decline: NormalizedDecline,
        failed_at: datetime,
    ) -> None:
        """Record a failed renewal from the scenario (what the PSP knows before dunning)."""
        with self._lock:
            self.invoices.setdefault(
                invoice_id,
                SimulatedInvoice(invoice_id, provider, amount, currency, decline, failed_at),
            )

    def _approves(self, invoice: SimulatedInvoice, now: datetime) -> bool:
        category = invoice.decline.category
        if invoice.decline.response_type is ResponseType.HARD:
            return False
        if category is DeclineCategory.INSUFFICIENT_FUNDS:
            return now >= invoice.first_failed_at + FUNDS_ARRIVE_AFTER
        if category in (DeclineCategory.ISSUER_UNAVAILABLE, DeclineCategory.LIMIT_EXCEEDED):
            return True
        return invoice.retries >= 2

    def retry_status(self, ref: InvoiceRef) -> RetryStatusResponse:
        """Is the invoice still open?"""
        with self._lock:
            invoice = self.invoices.get(ref.invoice_id)
            if invoice is None or invoice.status != "open":
                reason = "unknown invoice" if invoice is None else f"invoice is {invoice.status}"
                return RetryStatusResponse(retry=False, reason=reason)
            return RetryStatusResponse(retry=True, amount=invoice.amount)

    def execute_retry(self, instruction: RetryInstruction) -> RetryAttempt:
        """Charge once per idempotency key."""
        with self._lock:
            if instruction.idempotency_key in self.charges:
                self.duplicate_key_calls += 1
                return self.charges[instruction.idempotency_key]
            invoice = self.invoices[instruction.invoice.invoice_id]
            invoice.retries += 1
            now = self.now()
            approved = invoice.status == "open" and self._approves(invoice, now)
            if approved:
                invoice.approved_charges += 1
                invoice.status = "paid"
            result = RetryAttempt(
                success=approved,
                psp_transaction_id=f"sim_{invoice.provider}_{len(self.charges) + 1}",
                amount=instruction.amount,
                currency=instruction.currency,
                payment_method_id=instruction.payment_method_id,
                decline=None if approved else invoice.decline,
                created_at=now,
            )
            self.charges[instruction.idempotency_key] = result
            return result

    def reconcile(self, result: RetryResults, invoice: InvoiceRef) -> None:
        """Record Recover's result; a success leaves the invoice paid (idempotent)."""
        with self._lock:
            state = self.invoices.get(invoice.invoice_id)
            if state is None:
                return
            if result.success:
                state.status = "paid"
            if result.butter_id not in state.recover_ids:
                state.recover_ids.append(result.butter_id)

    def end_dunning(
        self, notice: EndOfDunning, invoice: InvoiceRef, policy: EndOfDunningPolicy
    ) -> None:
        """Apply the end-of-dunning policy (idempotent)."""
        with self._lock:
            state = self.invoices.get(invoice.invoice_id)
            if state is None:
                return
            state.end_of_dunning = "recovered" if notice.recovered else policy.value
            if not notice.recovered and policy is EndOfDunningPolicy.MARK_UNCOLLECTIBLE:
                state.status = "uncollectible"

    def __iter__(self) -> Iterator[SimulatedInvoice]:
        with self._lock:
            return iter(list(self.invoices.values()))


class _SimulatedAccount(Provider):
    """A real plugin for webhooks, the simulated PSP for everything that needs an account."""

    name: ClassVar[str] = "simulated"

    def __init__(self, real: Provider, psp: SimulatedPsp) -> None:
        super().__init__(real.settings)
        self.real = real
        self.psp = psp

    def verify(self, request: WebhookRequest) -> None:
        self.real.verify(request)

    def parse(self, request: WebhookRequest) -> list[ProviderEvent]:
        return self.real.parse(request)

    def translate(self, event: ProviderEvent) -> Translation:
        return self.real.translate(event)

    def sample_webhooks(self) -> list[WebhookRequest]:
        return self.real.sample_webhooks()

    def retry_status(self, invoice: InvoiceRef) -> RetryStatusResponse:
        return self.psp.retry_status(invoice)

    def execute_retry(self, instruction: RetryInstruction) -> RetryAttempt:
        return self.psp.execute_retry(instruction)

    def reconcile(self, result: RetryResults, invoice: InvoiceRef) -> None:
        self.psp.reconcile(result, invoice)

    def end_dunning(
        self, notice: EndOfDunning, invoice: InvoiceRef, policy: EndOfDunningPolicy
    ) -> None:
        self.psp.end_dunning(notice, invoice, policy)


def simulated(real: Provider, psp: SimulatedPsp) -> Provider:
    """``real`` with its PSP account replaced by ``psp`` (same name, ack and settings)."""
    attributes: dict[str, Any] = {
        "name": real.name,
        "webhook_ack": real.webhook_ack,
        "settings_class": type(real).settings_class,
        "capabilities": frozenset(Capability) - {Capability.BACKFILL},
        "__doc__": f"{type(real).__name__} with a simulated PSP account (demo).",
    }
    cls = type(f"Simulated{type(real).__name__}", (_SimulatedAccount,), attributes)
    provider = cls(real, psp)
    assert isinstance(provider, Provider)
    return provider
