"""Fixtures: a sandbox on a frozen clock with a scripted issuer and a recording merchant."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sandbox_fakes import (
    SIGNING_SECRET,
    START,
    RecordingMerchant,
    ScriptedIssuer,
    ScriptedProvider,
)

from recoverkit.sandbox.clock import SimulatedClock
from recoverkit.sandbox.policies.fixed import FixedSchedule
from recoverkit.sandbox.server.app import Sandbox
from recoverkit.sandbox.server.settings import SandboxSettings


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


@pytest.fixture
def issuer() -> ScriptedIssuer:
    return ScriptedIssuer()


@pytest.fixture
def merchant(clock: SimulatedClock) -> RecordingMerchant:
    return RecordingMerchant(now=clock.now)


@pytest.fixture
def make_sandbox(
    tmp_path: Path, clock: SimulatedClock, issuer: ScriptedIssuer, merchant: RecordingMerchant
) -> Iterator[Callable[..., Sandbox]]:
    made: list[Sandbox] = []

    def make(**overrides: Any) -> Sandbox:
        settings = SandboxSettings(
            database_url=f"sqlite:///{tmp_path / 'sandbox.db'}",
            signing_secret=SIGNING_SECRET,
            **overrides,
        )
        provider = ScriptedProvider(issuer)
        sandbox = Sandbox.create(
            settings,
            policy=FixedSchedule(),
            providers=lambda name: provider,
            clock=clock,
            merchant_transport=httpx.MockTransport(merchant.handler),
        )
        made.append(sandbox)
        return sandbox

    yield make
    for sandbox in made:
        sandbox.stop()
