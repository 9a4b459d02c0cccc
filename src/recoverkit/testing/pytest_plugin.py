"""pytest plugin entry point (``pytest11``): exposes the kit's fixtures-free helpers."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers the kit uses."""
    config.addinivalue_line(
        "markers", "conformance: a test inherited from recoverkit.testing.ProviderConformance"
    )
