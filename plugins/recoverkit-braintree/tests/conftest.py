"""Fixtures for recoverkit-braintree's tests; helpers live in ``bt_support``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# --import-mode=importlib puts no test folder on sys.path; the helpers module needs it.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bt_support import make_provider
from recoverkit_braintree import BraintreeProvider


@pytest.fixture
def provider() -> BraintreeProvider:
    """A provider with two key pairs, the emulator URL and in-memory claims."""
    return make_provider()
