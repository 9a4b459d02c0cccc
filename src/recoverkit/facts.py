"""Where a provider's ``translate`` gets the API objects a webhook lacks, when not from the PSP.

A webhook rarely carries everything Recover's payment event needs: Stripe's
``invoice.payment_failed`` names neither the card's funding nor the subscription's start date,
so the Stripe plugin fetches the charge and the subscription ("enrichment"). A
:class:`FactSource` given to a provider (:attr:`recoverkit.provider.Provider.facts_source`)
replaces those API calls:

- :class:`FactsFile` serves the objects from a JSON file (``recoverkit translate --facts FILE``);
- :class:`NoFacts` serves nothing (``recoverkit translate --offline``): the translation uses only
  what the payload carries, and the first lookup it needs raises :class:`FactNotAvailable`, which
  names the object and the fields enrichment would have added.

A provider that honours ``facts_source`` never calls its PSP while one is set. Plugins look
objects up with :func:`lookup`.

The file's format is one JSON object mapping an object kind (the plugin's name for a lookup, e.g.
``charge``, ``subscription``) to either a list of objects, each with an ``id``, or an object
keyed by id::

    {"charge": [{"id": "ch_1", ...}], "subscription": {"sub_1": {"id": "sub_1", ...}}}

The objects are what the PSP's API returns (JSON as the API sends it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from recoverkit.errors import ConfigurationError, MissingFactError

__all__ = ["FactNotAvailable", "FactSource", "FactsFile", "NoFacts", "lookup"]


@runtime_checkable
class FactSource(Protocol):
    """API objects by kind and id, served instead of the PSP's API."""

    #: Shown in messages: where the facts come from ("--offline", a file name).
    origin: str

    def get(self, kind: str, object_id: str) -> Any | None:
        """The object of ``kind`` with ``object_id``, or None when the source does not hold it."""
        ...


class NoFacts:
    """Holds nothing: ``translate --offline`` uses only what the webhook carries."""

    origin = "--offline"

    def get(self, kind: str, object_id: str) -> Any | None:
        """Always None: no API object is available offline."""
        del kind, object_id
        return None


class FactsFile:
    """API objects read from a JSON file (see the module docstring for the format)."""

    def __init__(self, objects: Mapping[str, Mapping[str, Any]], origin: str = "facts") -> None:
        self.objects = objects
        self.origin = origin

    @classmethod
    def load(cls, path: Path) -> FactsFile:
        """Read ``path``; a file that cannot be read or has another shape is a
        :class:`~recoverkit.errors.ConfigurationError` naming the problem."""
        try:
            document = json.loads(path.read_bytes())
        except OSError as exc:
            raise ConfigurationError(
                f"cannot read facts file {path}: {exc.strerror or exc}"
            ) from None
        except ValueError as exc:
            raise ConfigurationError(f"facts file {path} is not JSON: {exc}") from None
        return cls(cls.index(document, str(path)), origin=str(path))

    @staticmethod
    def index(document: Any, origin: str) -> dict[str, dict[str, Any]]:
        """``{kind: {id: object}}`` from either accepted shape; ConfigurationError otherwise."""
        if not isinstance(document, dict):
            raise ConfigurationError(
                f"facts file {origin}: expected an object mapping kinds to objects, "
                f"got {type(document).__name__}"
            )
        objects: dict[str, dict[str, Any]] = {}
        for kind, items in document.items():
            if isinstance(items, dict):
                objects[kind] = {str(key): value for key, value in items.items()}
                continue
            if not isinstance(items, list):
                raise ConfigurationError(
                    f"facts file {origin}: {kind!r} must be a list of objects or an object by id"
                )
            by_id: dict[str, Any] = {}
            for position, item in enumerate(items):
                if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                    raise ConfigurationError(
                        f"facts file {origin}: {kind}[{position}] is not an object with an id"
                    )
                by_id[item["id"]] = item
            objects[kind] = by_id
        return objects

    def get(self, kind: str, object_id: str) -> Any | None:
        """The object, or None when the file does not hold it."""
        return self.objects.get(kind, {}).get(object_id)


class FactNotAvailable(MissingFactError):
    """The facts source does not hold an object ``translate`` needs.

    ``kind`` and ``object_id`` name the object; ``adds`` says which fields of Recover's message
    it would have supplied.
    """

    def __init__(self, *, provider: str, kind: str, object_id: str, adds: str, origin: str) -> None:
        self.kind = kind
        self.adds = adds
        self.origin = origin
        if origin == NoFacts.origin:
            message = (
                f"{provider}: the webhook alone is not enough: enrichment would fetch {kind} "
                f"{object_id} for {adds}"
            )
        else:
            message = f"{provider}: {origin} holds no {kind} {object_id!r} (needed for {adds})"
        super().__init__(message, provider=provider, object_id=object_id)

    def as_dict(self) -> dict[str, str]:
        """``{"object": kind, "id": …, "adds": …}`` for ``translate --offline``'s output."""
        return {"object": self.kind, "id": self.object_id or "", "adds": self.adds}


def lookup(source: FactSource, *, provider: str, kind: str, object_id: str, adds: str) -> Any:
    """The object from ``source``, or :class:`FactNotAvailable` naming what it would add."""
    value = source.get(kind, object_id)
    if value is None:
        raise FactNotAvailable(
            provider=provider, kind=kind, object_id=object_id, adds=adds, origin=source.origin
        )
    return value
