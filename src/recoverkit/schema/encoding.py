"""Wire encoding: compact JSON for wire models, and validation errors naming field paths.

Amounts are ``Decimal`` in memory and JSON *numbers* on the wire, written with their exact
decimal text and the currency's number of decimals: ``8.00`` GBP, ``1200`` JPY, ``3.000`` KWD —
never a float's text (``8.0``, ``1200.0``) and never a string (``"8.00"``). Models are turned into
Python values by pydantic's (Rust) serializer and written by msgspec's JSON encoder, which writes a
``Decimal`` as a number with its own digits; no amount ever passes through a ``float``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeVar

import msgspec
from pydantic import BaseModel, SecretStr, ValidationError

from recoverkit.errors import WireValidationError

M = TypeVar("M", bound=BaseModel)

__all__ = ["dumpb", "dumps", "field_path", "parse", "to_wire"]


def to_wire(model: BaseModel) -> dict[str, Any]:
    """The model as a JSON-ready dict: unset optional fields left out, amounts kept ``Decimal``
    (with the currency's number of decimals), credentials still ``SecretStr``."""
    return model.model_dump(mode="python", exclude_none=True, by_alias=True)


def _encode_other(value: Any) -> Any:
    # msgspec calls this only for types it does not write itself.
    if isinstance(value, BaseModel):
        return to_wire(value)
    if isinstance(value, SecretStr):  # revealed only here, when writing the wire JSON
        return value.get_secret_value()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


_ENCODER: Final = msgspec.json.Encoder(enc_hook=_encode_other, decimal_format="number")


def dumpb(value: BaseModel | Mapping[str, Any] | list[Any]) -> bytes:
    """:func:`dumps` as UTF-8 bytes (what goes in an HTTP body or a database column)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="python", exclude_none=True, by_alias=True)
    try:
        return _ENCODER.encode(value)
    except msgspec.EncodeError as exc:  # e.g. a non-finite Decimal
        raise ValueError(f"cannot encode as wire JSON: {exc}") from None


def dumps(value: BaseModel | Mapping[str, Any] | list[Any]) -> str:
    """Compact JSON: amounts as exact JSON numbers, timestamps as UTC ``Z`` strings, unset
    optional fields left out. A mapping or list may hold models and plain JSON values; a
    ``datetime`` there is written as RFC 3339 with its own offset (``Z`` for UTC)."""
    return dumpb(value).decode("utf-8")


def field_path(loc: tuple[int | str, ...]) -> str:
    """``("transactions", 0, "amount")`` → ``transactions[0].amount``."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(body)"


def parse(model: type[M], data: Any, *, context: Mapping[str, Any] | None = None) -> M:
    """Validate ``data`` (a dict, or JSON ``str``/``bytes``) as ``model``.

    Raises :class:`~recoverkit.errors.WireValidationError` naming every failing field path.
    """
    ctx = None if context is None else dict(context)
    try:
        if isinstance(data, str | bytes):
            return model.model_validate_json(data, context=ctx)
        return model.model_validate(data, context=ctx)
    except ValidationError as exc:
        errors = [(field_path(err["loc"]), err["msg"]) for err in exc.errors()]
        raise WireValidationError(model.__name__, errors) from None
