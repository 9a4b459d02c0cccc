"""Facts a webhook lacks, fetched through the Stripe API with ``expand`` and cached per object.

:class:`Facts` is the interface :mod:`.translate` reads (tests pass a dict-backed fake);
:class:`StripeFacts` implements it over a :class:`stripe.StripeClient` with a small LRU cache.

What is cached, and why it is safe:

- charges and subscriptions: the fields we read (card funding, network, country, network
  transaction id, outcome; subscription start date) never change after the fact;
- PaymentIntents: their ``latest_charge`` moves on with every retry, so a cached copy is only used
  for an event created *before* the copy was fetched (then every charge the event can refer to is
  already visible in it).

Given a :class:`recoverkit.facts.FactSource` (``recoverkit translate --offline`` / ``--facts``),
:class:`StripeFacts` serves every lookup from it instead (no cache, no API call). Its kinds are the
cache's: ``charge``, ``subscription``, ``payment_intent`` (``latest_charge`` expanded),
``charges_of`` (a list page of a PaymentIntent's charges, keyed by the PaymentIntent id),
``invoice_payments`` (the invoice with ``payments`` expanded), ``invoice_of`` (a list page of
InvoicePayments, keyed by the PaymentIntent id) and ``invoice``; :data:`ADDS` says what each
supplies. ``samples/objects.json`` is such a file for the bundled samples.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

import stripe

from recoverkit.errors import MissingFactError
from recoverkit.facts import FactSource, lookup

__all__ = ["ADDS", "Facts", "LruCache", "StripeFacts"]

Obj = dict[str, Any]

#: What each kind of lookup adds to Recover's message (``translate --offline`` prints it).
ADDS: dict[str, str] = {
    "charge": "the transaction's card funding, network, issuer country, network transaction id, "
    "outcome and decline code",
    "subscription": "the subscription's start date, billing period and product",
    "payment_intent": "the attempt's charge and its last payment error (decline and advice codes)",
    "charges_of": "which of the PaymentIntent's charges made this attempt",
    "invoice_payments": "which charge and PaymentIntent attempted the invoice",
    "invoice_of": "whether the charge pays an invoice, and which",
    "invoice": "the invoice's subscription and creation time",
}


class Facts(Protocol):
    """Read-only lookups :mod:`.translate` needs; each raises ``MissingFactError`` on failure."""

    def charge(self, charge_id: str) -> Obj:
        """The Charge with ``payment_method_details`` (card funding, network, country …)."""
        ...

    def subscription(self, subscription_id: str) -> Obj:
        """The Subscription (for ``start_date``)."""
        ...

    def payment_intent(self, payment_intent_id: str, *, seen_at: int) -> Obj:
        """The PaymentIntent with ``latest_charge`` expanded, as of a time after ``seen_at``."""
        ...

    def charges_of_payment_intent(self, payment_intent_id: str, *, created_lte: int) -> list[Obj]:
        """The PaymentIntent's charges created at or before ``created_lte``, newest first."""
        ...

    def invoice_payments(self, invoice_id: str, *, seen_at: int) -> list[Obj]:
        """The invoice's ``payments`` (basil+, ``expand=["payments"]``) as of after ``seen_at``."""
        ...

    def invoice_of_payment_intent(self, payment_intent_id: str) -> str | None:
        """The invoice a PaymentIntent pays (basil+: via InvoicePayment), or None."""
        ...

    def invoice(self, invoice_id: str) -> Obj:
        """The Invoice (backfill: a charge's invoice, for its subscription and creation time)."""
        ...


class LruCache:
    """A small least-recently-used cache of (value, fetched_at) by key."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[tuple[str, ...], tuple[Any, float]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, ...]) -> tuple[Any, float] | None:
        """The cached (value, fetched_at), refreshed as most recently used; or None."""
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item

    def put(self, key: tuple[str, ...], value: Any, fetched_at: float) -> None:
        """Store ``value``; evicts the least recently used entry beyond ``maxsize``."""
        self._items[key] = (value, fetched_at)
        self._items.move_to_end(key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class StripeFacts:
    """:class:`Facts` over the Stripe API; every object fetched once per cache lifetime."""

    def __init__(
        self,
        client: stripe.StripeClient,
        cache: LruCache,
        clock: Callable[[], float] = time.time,
        *,
        source: FactSource | None = None,
    ) -> None:
        self._client = client
        self.cache = cache
        self._clock = clock
        #: When set, every lookup is served from here: no cache, no API call.
        self.source = source

    def _from_source(self, source: FactSource, kind: str, object_id: str) -> Any:
        return lookup(source, provider="stripe", kind=kind, object_id=object_id, adds=ADDS[kind])

    def _fetch(self, kind: str, object_id: str, what: str, call: Callable[[], Any]) -> Any:
        if self.source is not None:
            return self._from_source(self.source, kind, object_id)
        key = (kind, object_id)
        cached = self.cache.get(key)
        if cached is not None:
            return cached[0]
        value = self._call(object_id, what, call)
        self.cache.put(key, value, self._clock())
        return value

    def _call(self, object_id: str, what: str, call: Callable[[], Any]) -> Any:
        try:
            result = call()
        except stripe.StripeError as exc:
            raise MissingFactError(
                f"stripe: could not fetch {what} for {object_id}: {exc.user_message or exc}. "
                "Check RECOVERKIT_STRIPE_API_KEY and RECOVERKIT_STRIPE_API_BASE, then replay "
                "the event.",
                provider="stripe",
                object_id=object_id,
            ) from exc
        if isinstance(result, stripe.StripeObject):
            return result.to_dict()
        return result

    def charge(self, charge_id: str) -> Obj:
        """See :meth:`Facts.charge`."""
        value: Obj = self._fetch(
            "charge",
            charge_id,
            "the charge (card funding, network, issuer country)",
            lambda: self._client.v1.charges.retrieve(charge_id),
        )
        return value

    def subscription(self, subscription_id: str) -> Obj:
        """See :meth:`Facts.subscription`."""
        value: Obj = self._fetch(
            "subscription",
            subscription_id,
            "the subscription (start date)",
            lambda: self._client.v1.subscriptions.retrieve(subscription_id),
        )
        return value

    def _fresh(self, key: tuple[str, str], seen_at: int, what: str, call: Callable[[], Any]) -> Any:
        # Objects that move on (a PaymentIntent's latest charge, an invoice's payments): a cached
        # copy serves only events created before it was fetched.
        if self.source is not None:
            return self._from_source(self.source, key[0], key[1])
        cached = self.cache.get(key)
        if cached is not None and cached[1] >= seen_at:
            return cached[0]
        value = self._call(key[1], what, call)
        self.cache.put(key, value, self._clock())
        return value

    def payment_intent(self, payment_intent_id: str, *, seen_at: int) -> Obj:
        """See :meth:`Facts.payment_intent`; a copy fetched before ``seen_at`` is refetched."""
        value: Obj = self._fresh(
            ("payment_intent", payment_intent_id),
            seen_at,
            "the payment intent (latest charge)",
            lambda: self._client.v1.payment_intents.retrieve(
                payment_intent_id, params={"expand": ["latest_charge"]}
            ),
        )
        return value

    def charges_of_payment_intent(self, payment_intent_id: str, *, created_lte: int) -> list[Obj]:
        """See :meth:`Facts.charges_of_payment_intent`; filtered locally: one fetch serves all."""
        page: Obj = self._fresh(
            ("charges_of", payment_intent_id),
            created_lte,
            "the payment intent's charges",
            lambda: self._client.v1.charges.list(
                params={"payment_intent": payment_intent_id, "limit": 100}
            ),
        )
        found = [c for c in page.get("data") or [] if int(c.get("created", 0)) <= created_lte]
        found.sort(key=lambda c: int(c.get("created", 0)), reverse=True)
        return found

    def invoice_payments(self, invoice_id: str, *, seen_at: int) -> list[Obj]:
        """See :meth:`Facts.invoice_payments`."""
        invoice: Obj = self._fresh(
            ("invoice_payments", invoice_id),
            seen_at,
            "the invoice's payments",
            lambda: self._client.v1.invoices.retrieve(invoice_id, params={"expand": ["payments"]}),
        )
        return list((invoice.get("payments") or {}).get("data") or [])

    def invoice_of_payment_intent(self, payment_intent_id: str) -> str | None:
        """See :meth:`Facts.invoice_of_payment_intent`."""
        page: Obj = self._fetch(
            "invoice_of",
            payment_intent_id,
            "the invoice payments of the payment intent",
            lambda: self._client.v1.invoice_payments.list(
                params={
                    "payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
                    "limit": 1,
                }
            ),
        )
        for item in page.get("data") or []:
            invoice = item.get("invoice")
            if isinstance(invoice, dict):
                invoice = invoice.get("id")
            if isinstance(invoice, str):
                return invoice
        return None

    def invoice(self, invoice_id: str) -> Obj:
        """See :meth:`Facts.invoice`."""
        value: Obj = self._fetch(
            "invoice",
            invoice_id,
            "the invoice (subscription, creation time)",
            lambda: self._client.v1.invoices.retrieve(invoice_id),
        )
        return value
