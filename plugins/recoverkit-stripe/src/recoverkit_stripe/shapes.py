"""Reading Stripe objects in both invoice shapes (before and after API version 2025-03-31.basil).

Before basil an Invoice carries ``charge``, ``payment_intent`` and ``subscription``; from basil on
the subscription is at ``parent.subscription_details.subscription`` and attempts are in
``payments`` (an InvoicePayment list, only present when expanded). Webhooks arrive in the
*endpoint's* API version, so one receiver sees both shapes during a migration.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "expandable_id",
    "invoice_is_legacy_shape",
    "invoice_payment_refs",
    "invoice_subscription_id",
]


def expandable_id(value: Any) -> str | None:
    """The id of an expandable field: ``"ch_1"`` or ``{"id": "ch_1", …}`` → ``"ch_1"``."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping):
        inner = value.get("id")
        return inner if isinstance(inner, str) and inner else None
    return None


def invoice_is_legacy_shape(invoice: Mapping[str, Any]) -> bool:
    """True for a pre-basil invoice (it has the ``charge`` / ``payment_intent`` keys, even null)."""
    return "charge" in invoice or "payment_intent" in invoice


def invoice_subscription_id(invoice: Mapping[str, Any]) -> str | None:
    """The subscription an invoice bills, in either shape; None for a one-off invoice."""
    legacy = expandable_id(invoice.get("subscription"))
    if legacy:
        return legacy
    parent = invoice.get("parent") or {}
    details = parent.get("subscription_details") or {}
    return expandable_id(details.get("subscription"))


def invoice_payment_refs(
    payments: list[Mapping[str, Any]], *, paid: bool
) -> tuple[str | None, str | None]:
    """(payment_intent_id, charge_id) of the InvoicePayment that an attempt event is about.

    A failed attempt leaves its InvoicePayment ``open``; a successful one makes it ``paid``. Among
    matching entries the default one wins, then the most recently created.
    """
    wanted = {"paid"} if paid else {"open", "canceled"}
    usable = [
        p for p in payments if (p.get("payment") or {}).get("type") in ("payment_intent", "charge")
    ]
    matching = [p for p in usable if p.get("status") in wanted] or usable
    if not matching:
        return None, None
    best = max(matching, key=lambda p: (bool(p.get("is_default")), p.get("created") or 0))
    payment = best.get("payment") or {}
    return expandable_id(payment.get("payment_intent")), expandable_id(payment.get("charge"))
