"""Puts this folder on ``sys.path`` for ``adyen_helpers`` and provides the ``provider`` fixture."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from adyen_helpers import settings
from recoverkit_adyen import AdyenProvider


@pytest.fixture
def provider() -> AdyenProvider:
    """The provider with the documented test HMAC key and demo credentials (no network)."""
    return AdyenProvider(settings())
