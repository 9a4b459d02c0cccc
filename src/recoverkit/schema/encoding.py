"""Wire encoding: compact JSON for wire models, and validation errors naming field paths.

Amounts are ``Decimal`` in memory and JSON *numbers* on the wire (``12.23``, never ``"12.23"``);
:data:`~recoverkit.schema.types.Amount` keeps them to 15 significant digits, which a JSON number
carries exactly. Models are written by pydantic's own (Rust) serializer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from recoverkit.errors import WireValidationError
from recoverkit.schema.types import format_timestamp

M = TypeVar("M", bound=BaseModel)

__all__ = ["dumps", "field_path", "parse", "to_wire"]


def to_wire(model: BaseModel) -> dict[str, Any]:
    """The model as a JSON-ready dict: unset optional fields left out, amounts kept ``Decimal``."""
    return model.model_dump(mode="python", exclude_none=True, by_alias=True)


def _encode(value: Any, out: list[str]) -> None:
    if isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if i:
                out.append(",")
            out.append(json.dumps(str(key)))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, list | tuple):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot encode non-finite amount {value}")
        out.append(format(value, "f"))
    elif isinstance(value, datetime):
        out.append(json.dumps(format_timestamp(value)))
    elif isinstance(value, BaseModel):
        out.append(dumps(value))
    elif hasattr(value, "get_secret_value"):
        out.append(json.dumps(value.get_secret_value()))
    else:
        out.append(json.dumps(value, ensure_ascii=False, allow_nan=False))


def dumps(value: BaseModel | Mapping[str, Any] | list[Any]) -> str:
    """Compact JSON: amounts as exact JSON numbers, timestamps as UTC ``Z`` strings, unset
    optional fields left out. A mapping or list may hold models and plain JSON values."""
    if isinstance(value, BaseModel):
        return value.model_dump_json(exclude_none=True, by_alias=True)
    out: list[str] = []
    _encode(value, out)
    return "".join(out)


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
