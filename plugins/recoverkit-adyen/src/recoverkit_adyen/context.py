"""Billing facts Adyen does not hold: customer, subscription, invoice and their dates.

Adyen has payments, not subscriptions or invoices. The merchant states which invoice a payment
belongs to when charging, in one of two conventions this module reads (documented in
``docs/providers/adyen.md``):

1. **metadata** (preferred): the ``/payments`` request carries ``metadata`` keys, which Adyen
   returns in the AUTHORISATION item as ``additionalData["metadata.<key>"]``::

       rk_customer        customer id in the merchant's platform
       rk_subscription    subscription id
       rk_invoice         invoice id (Recover's {invoice_id})
       rk_sub_start       subscription start, ISO 8601 (a date means midnight UTC)
       rk_invoice_at      invoice creation time, ISO 8601

2. **merchantReference**: ``rk1/<customer>/<subscription>/<invoice>/<sub start>/<invoice at>``
   with dates as ``YYYY-MM-DD`` (anything after a sixth ``/`` is ignored, e.g. ``/r2``).

Each fact is taken from metadata first, then from the reference; the customer id finally falls
back to ``shopperReference``. When a fact is still missing, :class:`BillingContextMissingError`
holds the event: it is kept for a later try, never forwarded half-empty.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any, Final

from recoverkit.errors import MissingFactError
from recoverkit.provider import BillingContext, ProviderEvent

__all__ = [
    "METADATA_KEYS",
    "REFERENCE_PREFIX",
    "BillingContextMissingError",
    "default_billing_context",
    "format_reference",
    "shopper_reference",
]

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


_METADATA_FIELDS: Final = tuple((name, f"metadata.{key}") for name, key in METADATA_KEYS.items())


def default_billing_context(event: ProviderEvent) -> BillingContext:
    """Billing facts from the item's metadata / merchantReference; raises when any is missing."""
    item = event.data
    additional = _additional(item)
    from_reference: dict[str, str] | None = None
    found: dict[str, str] = {}
    for name, key in _METADATA_FIELDS:
        value = additional.get(key)
        if isinstance(value, str) and value.strip():
            found[name] = value.strip()
            continue
        if from_reference is None:  # parsed only when metadata lacks a fact
            from_reference = _from_reference(item.get("merchantReference"))
        if name in from_reference:
            found[name] = from_reference[name]
    if "customer_id" not in found and (shopper := shopper_reference(item)):
        found["customer_id"] = shopper
    dates: dict[str, datetime] = {}
    bad: list[str] = []
    for name in ("subscription_start", "invoice_created_at"):
        if name in found:
            parsed = _when(found[name])
            if parsed is None:
                bad.append(f"{name} {found[name]!r} is not an ISO 8601 date")
            else:
                dates[name] = parsed
    if len(found) < len(METADATA_KEYS) or bad:
        missing = [name for name in METADATA_KEYS if name not in found]
        problems = [f"no {name} (metadata.{METADATA_KEYS[name]})" for name in missing] + bad
        raise BillingContextMissingError(
            f"held: adyen {event.type} {event.dedupe_key} ({item.get('merchantReference')!r}) "
            f"names no complete billing context: {'; '.join(problems)}. Charge with the metadata "
            "or merchantReference convention, or implement the billing_context hook, then replay",
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
