"""Braintree API objects served from a :class:`recoverkit.facts.FactSource` (no API call).

``recoverkit translate braintree … --offline`` / ``--facts FILE`` set the provider's
``facts_source``; :class:`SourceLookups` then stands in for :class:`~.gateway.CachedLookups`.
Braintree's API speaks XML, so a facts file holds each object as the API's XML answer, by kind
and id::

    {"transaction": {"txn_1": "<transaction>…</transaction>"},
     "subscription": {"sub_1": "<subscription>…</subscription>"}}

:func:`sample_facts` builds that file for the bundled samples from ``samples/api/*.xml``.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

import braintree
from braintree.util.xml_util import XmlUtil

from recoverkit.errors import ConfigurationError
from recoverkit.facts import FactSource, lookup
from recoverkit_braintree.gateway import CachedLookups

__all__ = ["ADDS", "SourceLookups", "sample_facts"]

#: What each kind of lookup adds to Recover's message (``translate --offline`` prints it).
ADDS = {
    "transaction": "the attempt's amount, card (type, funding, issuer country), processor "
    "response and decline code",
    "subscription": "the subscription's start date, billing period, plan and past attempts",
}


def _parse(value: Any, kind: str, object_id: str, origin: str) -> dict[str, Any]:
    if not isinstance(value, str) or not value.lstrip().startswith("<"):
        raise ConfigurationError(
            f"braintree: {origin}: {kind} {object_id!r} must be the API's XML answer as a string"
        )
    if "<!DOCTYPE" in value or "<!ENTITY" in value:
        raise ConfigurationError(f"braintree: {origin}: {kind} {object_id!r} holds a DTD")
    try:
        parsed = XmlUtil.dict_from_xml(value.encode("utf-8"))
    except Exception as exc:  # the SDK's minidom parser raises ExpatError and friends
        raise ConfigurationError(
            f"braintree: {origin}: {kind} {object_id!r} is not XML: {exc}"
        ) from None
    attributes = parsed.get(kind) if isinstance(parsed, dict) else None
    if not isinstance(attributes, dict):
        raise ConfigurationError(
            f"braintree: {origin}: {kind} {object_id!r} is not a <{kind.replace('_', '-')}>"
        )
    return attributes


class SourceLookups(CachedLookups):
    """``transaction.find`` / ``subscription.find`` answered from a facts source only."""

    def __init__(self, source: FactSource) -> None:
        super().__init__(None, 0)
        self.source = source

    def _find(self, kind: str, object_id: str) -> dict[str, Any]:
        value = lookup(
            self.source, provider="braintree", kind=kind, object_id=object_id, adds=ADDS[kind]
        )
        return _parse(value, kind, object_id, self.source.origin)

    def transaction(self, transaction_id: str) -> Any:
        """The transaction from the source (or ``FactNotAvailable``)."""
        return braintree.Transaction(None, self._find("transaction", transaction_id))

    def subscription(self, subscription_id: str) -> Any:
        """The subscription from the source (or ``FactNotAvailable``)."""
        return braintree.Subscription(None, self._find("subscription", subscription_id))

    def fresh_subscription(self, subscription_id: str) -> Any:
        """The same: a facts source has one version of each object."""
        return self.subscription(subscription_id)

    def remember_transaction(self, transaction: Any) -> None:
        """Nothing to remember: the source is the only truth here."""
        del transaction


def sample_facts() -> dict[str, dict[str, str]]:
    """The bundled API answers (``samples/api/*.xml``) as a facts file."""
    facts: dict[str, dict[str, str]] = {}
    folder = files("recoverkit_braintree") / "samples" / "api"
    for item in sorted(folder.iterdir(), key=lambda i: i.name):
        if not item.name.endswith(".xml"):
            continue
        text = item.read_text(encoding="utf-8")
        parsed = XmlUtil.dict_from_xml(text.encode("utf-8"))
        for kind, attributes in parsed.items():
            facts.setdefault(kind, {})[str(attributes["id"])] = text
    return facts
