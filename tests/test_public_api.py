"""The public API is exactly what __all__ lists, and every name in it exists."""

from __future__ import annotations

import importlib

import pytest

import recoverkit

MODULES = [
    "recoverkit",
    "recoverkit.schema",
    "recoverkit.schema.money",
    "recoverkit.schema.wire",
    "recoverkit.provider",
    "recoverkit.plugins",
    "recoverkit.testing",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist_and_are_documented(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__doc__, f"{name} has no module docstring"
    exported = module.__all__
    assert len(exported) == len(set(exported)), f"{name}.__all__ has duplicates"
    for attr in exported:
        obj = getattr(module, attr)
        if callable(obj) and not attr.isupper():
            assert obj.__doc__, f"{name}.{attr} has no docstring"


def test_all_is_sorted_for_review() -> None:
    assert list(recoverkit.__all__) == sorted(recoverkit.__all__, key=str)
