"""Suite-wide: learned-policy model files are keyed by a test secret, never a key file in $HOME
(tests never read files outside the repository)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _model_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECOVERKIT_MODEL_KEY", "test-model-key")
