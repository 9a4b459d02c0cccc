"""Retry status and retry execution through Braintree.

Subscription invoices are retried with ``subscription.retry_charge`` — the only call that ties the
payment to Braintree's subscription (balance and status update). It takes no idempotency key, so a
per-subscription claim is recorded first, and a claimed attempt is looked up in the subscription's
transactions before any second charge. Other invoices use ``transaction.sale`` with the vaulted
token, ``transaction_source="recurring"`` and ``api_request_key`` = the instruction's key.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from recoverkit.errors import MissingFactError, ProviderError
from recoverkit.provider import InvoiceRef, RetryAttempt, RetryInstruction
from recoverkit.schema import RetryStatusResponse
from recoverkit_braintree.claims import Claim, ClaimStore
from recoverkit_braintree.codes import SUCCESS_STATUSES, decline_for
from recoverkit_braintree.gateway import CachedLookups, api_errors
from recoverkit_braintree.translate import utc

__all__ = ["CLAIM_SKEW", "execute_retry", "find_claimed_attempt", "retry_status"]

PSP = "braintree"
PAST_DUE = "Past Due"
#: Clock difference tolerated between our claim time and Braintree's ``created_at``.
CLAIM_SKEW = timedelta(minutes=5)
_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
_locks_guard = threading.Lock()


def _lock(subscription_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks[subscription_id]


def retry_status(lookups: CachedLookups, invoice: InvoiceRef) -> RetryStatusResponse:
    """Retry a subscription only while it is Past Due with a positive balance (read fresh).

    A one-off charge has no balance at Braintree: it may be retried while its original
    transaction is declined.
    """
    if invoice.psp_subscription_id:
        sub = lookups.fresh_subscription(invoice.psp_subscription_id)
        status = str(sub.status)
        balance = Decimal(getattr(sub, "balance", None) or 0)
        meta = {
            "subscription_status": status,
            "failure_count": getattr(sub, "failure_count", None),
            "days_past_due": getattr(sub, "days_past_due", None),
        }
        if status == PAST_DUE and balance > 0:
            return RetryStatusResponse(retry=True, amount=balance, metadata=meta)
        return RetryStatusResponse(
            retry=False,
            reason=f"Braintree subscription {sub.id} is {status} with balance {balance}",
            metadata=meta,
        )
    if not invoice.psp_transaction_id:
        raise MissingFactError(
            f"braintree: invoice {invoice.invoice_id} has neither psp_subscription_id nor "
            "psp_transaction_id in the ledger",
            provider=PSP,
            object_id=invoice.invoice_id,
        )
    txn = lookups.transaction(invoice.psp_transaction_id)
    if txn.status in SUCCESS_STATUSES:
        return RetryStatusResponse(
            retry=False, reason=f"Braintree transaction {txn.id} is {txn.status}"
        )
    return RetryStatusResponse(retry=True, amount=Decimal(txn.amount))


def _attempt(txn: Any, instruction: RetryInstruction) -> RetryAttempt:
    card = getattr(txn, "credit_card_details", None)
    token = getattr(card, "token", None) or instruction.payment_method_id
    decline = decline_for(txn)
    return RetryAttempt(
        success=decline is None,
        psp_transaction_id=str(txn.id),
        amount=Decimal(txn.amount),
        currency=str(getattr(txn, "currency_iso_code", None) or instruction.currency),
        payment_method_id=token,
        network_transaction_id=getattr(txn, "network_transaction_id", None) or None,
        decline=decline,
        created_at=utc(getattr(txn, "created_at", None)),
    )


def find_claimed_attempt(subscription: Any, claim: Claim, amount: Decimal | None) -> Any | None:
    """The subscription's sale created since the claim (same amount when given), newest first.

    Transaction search has no ``subscription_id`` filter, so the subscription's own
    ``transactions`` list is where a retry_charge attempt is found.
    """
    since = claim.claimed_at - CLAIM_SKEW
    found = [
        t
        for t in getattr(subscription, "transactions", None) or []
        if (utc(getattr(t, "created_at", None)) or since) >= since
        and (amount is None or Decimal(t.amount) == amount)
    ]
    if not found:
        return None
    return max(found, key=lambda t: utc(t.created_at) or since)


def _errors(result: Any) -> str:
    deep = getattr(getattr(result, "errors", None), "deep_errors", None) or []
    codes = ", ".join(f"{e.code} {e.message}" for e in deep)
    return codes or str(getattr(result, "message", "unknown error"))


def execute_retry(
    gateway: Any,
    claims: ClaimStore,
    instruction: RetryInstruction,
    *,
    now: datetime,
) -> RetryAttempt:
    """Charge once; a decline is a :class:`RetryAttempt` with a decline, never an exception."""
    if instruction.invoice.psp_subscription_id:
        return _retry_subscription(gateway, claims, instruction, now)
    return _sale(gateway, instruction)


def _retry_subscription(
    gateway: Any, claims: ClaimStore, instruction: RetryInstruction, now: datetime
) -> RetryAttempt:
    sub_id = str(instruction.invoice.psp_subscription_id)
    with _lock(sub_id):
        claim = claims.get(sub_id)
        if claim is not None and claim.transaction_id is None:
            # An attempt was claimed but its outcome never recorded (crash, timeout): find it.
            with api_errors("subscription", sub_id):
                current = gateway.subscription.find(sub_id)
            same = claim.idempotency_key == instruction.idempotency_key
            found = find_claimed_attempt(current, claim, instruction.amount if same else None)
            if found is not None:
                claims.complete(sub_id, str(found.id))
                if same:
                    return _attempt(found, instruction)
        elif claim is not None and claim.idempotency_key == instruction.idempotency_key:
            with api_errors("transaction", claim.transaction_id):
                done = gateway.transaction.find(claim.transaction_id)
            return _attempt(done, instruction)

        with api_errors("subscription", sub_id):
            current = gateway.subscription.find(sub_id)
        if current.status != PAST_DUE:
            raise ProviderError(
                f"braintree: subscription {sub_id} is {current.status}, not Past Due; Braintree "
                "refuses retry_charge (error 91531). Ask retry_status first.",
                provider=PSP,
                object_id=sub_id,
            )
        claims.put(Claim(sub_id, instruction.idempotency_key, now))
        with api_errors("subscription retry_charge", sub_id, mutating=True):
            result = gateway.subscription.retry_charge(sub_id, str(instruction.amount), True)
        txn = getattr(result, "transaction", None)
        if txn is None:
            claims.release(sub_id)  # validation error: nothing was charged
            raise ProviderError(
                f"braintree: retry_charge on subscription {sub_id} refused: {_errors(result)}",
                provider=PSP,
                object_id=sub_id,
            )
        claims.complete(sub_id, str(txn.id))
        return _attempt(txn, instruction)


def _sale(gateway: Any, instruction: RetryInstruction) -> RetryAttempt:
    invoice = instruction.invoice
    token = instruction.payment_method_id or invoice.payment_method_id
    if not token:
        raise MissingFactError(
            f"braintree: invoice {invoice.invoice_id} has no payment method token to charge",
            provider=PSP,
            object_id=invoice.invoice_id,
        )
    params = {
        "amount": str(instruction.amount),
        "payment_method_token": token,
        "transaction_source": "recurring",
        "order_id": invoice.psp_invoice_id or invoice.invoice_id,
        # Braintree returns the original transaction for a repeated key (SDK ≥ 4.43).
        "api_request_key": instruction.idempotency_key,
        "options": {"submit_for_settlement": True},
    }
    with api_errors("transaction sale for invoice", invoice.invoice_id, mutating=True):
        result = gateway.transaction.sale(params)
    txn = getattr(result, "transaction", None)
    if txn is None:
        raise ProviderError(
            f"braintree: sale for invoice {invoice.invoice_id} refused: {_errors(result)}",
            provider=PSP,
            object_id=invoice.invoice_id,
        )
    return _attempt(txn, instruction)
