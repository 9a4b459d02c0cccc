"""Billing facts Adyen does not hold: customer, subscription, invoice and their dates.

Adyen has payments, not subscriptions or invoices. The merchant states which invoice a payment
belongs to when charging. Adyen's HMAC signs only eight item fields (``pspReference``,
``originalReference``, ``merchantAccountCode``, ``merchantReference``, ``amount.value``,
``amount.currency``, ``eventCode``, ``success``), so **which customer, subscription and invoice
an item belongs to is read from signed fields only** — the ``merchantReference`` convention, or
the merchant's ``billing_context`` hook, which is shown the signed fields alone
(:func:`signed_view`). Nothing in ``additionalData`` (metadata, ``shopperReference``) can move an
item to another invoice or customer.

**merchantReference** convention: ``rk1/<customer>/<subscription>/<invoice>/<sub start>/<invoice
at>`` with dates as ``YYYY-MM-DD`` (anything after a sixth ``/`` is ignored, e.g. ``/r2``).

Payment ``metadata`` (``additionalData["metadata.rk_*"]``, unsigned) may only *refine* the two
dates to a time of day within the signed day (``rk_sub_start``, ``rk_invoice_at``); identity keys
in metadata (``rk_customer``, ``rk_subscription``, ``rk_invoice``) are not used for identity, and
one that disagrees with the signed reference is logged. When a fact is still missing,
:class:`BillingContextMissingError` holds the event: it is kept for a later try, never forwarded
half-empty.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Final

from recoverkit.errors import MissingFactError
from recoverkit.provider import BillingContext, ProviderEvent

__all__ = [
    "METADATA_KEYS",
    "REFERENCE_PREFIX",
    "SIGNED_ITEM_FIELDS",
    "BillingContextMissingError",
    "default_billing_context",
    "format_reference",
    "reference_customer",
    "shopper_reference",
    "signed_view",
]

logger = logging.getLogger("recoverkit_adyen")

#: Metadata keys of the convention (Adyen limits metadata keys to 20 characters).
METADATA_KEYS: Final = {
    "customer_id": "rk_customer",
    "subscription_id": "rk_subscription",
    "invoice_id": "rk_invoice",
    "subscription_start": "rk_sub_start",
    "invoice_created_at": "rk_invoice_at",
}
REFERENCE_PREFIX: Final = "rk1"
_REFERENCE_FIELDS: Final = (
    "customer_id",
    "subscription_id",
    "invoice_id",
    "subscription_start",
    "invoice_created_at",
)


class BillingContextMissingError(MissingFactError):
    """An Adyen event names no customer, subscription or invoice: held, not forwarded.

    The message starts with ``held:``. The event stays in the inbox; fix the merchant's
    ``billing_context`` hook or the charging convention, then replay it.
    """


def _additional(item: Mapping[str, Any]) -> Mapping[str, Any]:
    additional = item.get("additionalData")
    return additional if isinstance(additional, dict) else {}


def shopper_reference(item: Mapping[str, Any]) -> str | None:
    """The shopper's reference in any of the spellings Adyen uses in ``additionalData``."""
    additional = _additional(item)
    for key in ("shopperReference", "recurring.shopperReference", "tokenization.shopperReference"):
        value = additional.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _from_reference(reference: Any) -> dict[str, str]:
    if not isinstance(reference, str) or not reference.startswith(REFERENCE_PREFIX + "/"):
        return {}
    parts = reference.split("/")
    values = parts[1 : 1 + len(_REFERENCE_FIELDS)]
    return {name: value for name, value in zip(_REFERENCE_FIELDS, values, strict=False) if value}


def _when(value: str) -> datetime | None:
    """ISO 8601 (``Z`` allowed since Python 3.11); a bare date is midnight UTC; naive is UTC."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def format_reference(
    *,
    customer_id: str,
    subscription_id: str,
    invoice_id: str,
    subscription_start: date,
    invoice_created_at: date,
    suffix: str | None = None,
) -> str:
    """A ``merchantReference`` in the convention (ids must not contain ``/``)."""
    for name, value in (
        ("customer_id", customer_id),
        ("subscription_id", subscription_id),
        ("invoice_id", invoice_id),
    ):
        if "/" in value or not value:
            raise ValueError(f"{name} {value!r} cannot go into a merchantReference (empty or '/')")
    parts = [
        REFERENCE_PREFIX,
        customer_id,
        subscription_id,
        invoice_id,
        subscription_start.isoformat()[:10],
        invoice_created_at.isoformat()[:10],
    ]
    if suffix:
        parts.append(suffix)
    return "/".join(parts)


#: The item fields Adyen's HMAC covers (``amount`` only with ``value`` and ``currency``).
SIGNED_ITEM_FIELDS: Final = (
    "pspReference",
    "originalReference",
    "merchantAccountCode",
    "merchantReference",
    "eventCode",
    "success",
)


def signed_view(event: ProviderEvent) -> ProviderEvent:
    """The event with ``data`` reduced to the HMAC-signed fields (what may decide identity).

    A typed webhook is signed as a whole (``HmacSignature`` over the raw body): it is returned
    unchanged. ``occurred_at`` (``eventDate``) is not signed either: do not choose an invoice by it.
    """
    item = event.data
    if "eventCode" not in item:
        return event
    view: dict[str, Any] = {key: item[key] for key in SIGNED_ITEM_FIELDS if key in item}
    amount = item.get("amount")
    if isinstance(amount, dict):
        view["amount"] = {k: amount[k] for k in ("value", "currency") if k in amount}
    return dataclasses.replace(event, data=view)


def reference_customer(item: Mapping[str, Any]) -> str | None:
    """The customer id of an ``rk1/<customer>[/…]`` merchantReference (signed), else None."""
    return _from_reference(item.get("merchantReference")).get("customer_id")


def _refine(signed_day: str, metadata: Any) -> str:
    """The metadata time when it is written on the signed day (more precise), else the day.

    ``2026-11-15T09:00:00Z`` refines ``2026-11-15``; another day cannot move the signed date. An
    unparseable refinement is dropped by the caller's check of the signed day alone.
    """
    if metadata.__class__ is not str or not metadata.startswith(signed_day[:10] + "T"):
        return signed_day
    return metadata if _when(metadata) is not None else signed_day


def default_billing_context(event: ProviderEvent) -> BillingContext:
    """Billing facts from the signed merchantReference; raises when any is missing."""
    item = event.data
    additional = _additional(item)
    found = _from_reference(item.get("merchantReference"))
    for name in ("subscription_start", "invoice_created_at"):
        key = f"metadata.{METADATA_KEYS[name]}"
        if name in found:
            found[name] = _refine(found[name], additional.get(key))
    for name in ("customer_id", "subscription_id", "invoice_id"):
        claimed = additional.get(f"metadata.{METADATA_KEYS[name]}")
        if isinstance(claimed, str) and claimed.strip() and claimed.strip() != found.get(name):
            logger.warning(
                "adyen %s: unsigned metadata.%s does not match the signed merchantReference; "
                "ignored (identity comes from signed fields only)",
                event.dedupe_key,
                METADATA_KEYS[name],
            )
    dates: dict[str, datetime] = {}
    bad: list[str] = []
    for name in ("subscription_start", "invoice_created_at"):
        if name in found:
            parsed = _when(found[name])
            if parsed is None:
                bad.append(f"{name} {found[name][:40]!r} is not an ISO 8601 date")
            else:
                dates[name] = parsed
    if len(found) < len(METADATA_KEYS) or bad:
        missing = [name for name in METADATA_KEYS if name not in found]
        problems = [f"no {name}" for name in missing] + bad
        reference = item.get("merchantReference")
        reference = reference[:80] if isinstance(reference, str) else None
        raise BillingContextMissingError(
            f"held: adyen {event.type} {event.dedupe_key} (merchantReference {reference!r}) "
            f"names no complete billing context: {'; '.join(problems)}. Charge with the signed "
            "merchantReference convention (rk1/<customer>/<subscription>/<invoice>/<YYYY-MM-DD>/"
            "<YYYY-MM-DD>; metadata is not signed by Adyen and cannot name them), or implement "
            "the billing_context hook, then replay",
            provider="adyen",
            object_id=event.object_id,
        )
    return BillingContext(
        customer_id=found["customer_id"],
        subscription_id=found["subscription_id"],
        invoice_id=found["invoice_id"],
        subscription_start=dates["subscription_start"],
        invoice_created_at=dates["invoice_created_at"],
    )
