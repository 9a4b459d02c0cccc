"""Fixtures for the sandbox tests; puts this folder on ``sys.path`` for ``sandbox_helpers``
(pytest runs with ``--import-mode=importlib``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from recoverkit.sandbox.policies.learned import ModelMetrics, SuccessModel
from recoverkit.sandbox.simulator.training import train_on_simulation
from recoverkit.sandbox.simulator.world import WorldConfig

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def trained() -> tuple[SuccessModel, ModelMetrics]:
    """A model fitted on a small seeded world (a few seconds)."""
    return train_on_simulation(WorldConfig(invoices=4_000, seed=321))
