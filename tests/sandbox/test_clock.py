"""Clocks: the system clock, a frozen simulated clock and a compressed one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from recoverkit.sandbox import Clock, SimulatedClock, SystemClock

START = datetime(2026, 1, 1, tzinfo=UTC)


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(SimulatedClock(START), Clock)


def test_system_clock_is_timezone_aware_and_current() -> None:
    now = SystemClock().now()
    assert now.tzinfo is not None
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_frozen_clock_moves_only_when_advanced_or_slept() -> None:
    clock = SimulatedClock(START)
    assert clock.now() == START
    assert clock.advance(timedelta(hours=2)) == START + timedelta(hours=2)
    clock.sleep(86_400 * 3)  # returns at once
    assert clock.now() == START + timedelta(days=3, hours=2)


def test_frozen_clock_refuses_to_go_backwards_or_start_naive() -> None:
    with pytest.raises(ValueError, match="backwards"):
        SimulatedClock(START).advance(-1)
    with pytest.raises(ValueError, match="timezone-aware"):
        SimulatedClock(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="positive"):
        SimulatedClock(START, speed=0)


def test_compressed_clock_runs_speed_simulated_seconds_per_real_second() -> None:
    real = [100.0]
    clock = SimulatedClock(START, speed=86_400, monotonic=lambda: real[0])
    real[0] += 0.5  # half a real second is half a simulated day
    assert clock.now() == START + timedelta(hours=12)
    clock.advance(timedelta(days=1))
    assert clock.now() == START + timedelta(days=1, hours=12)


def test_compressed_clock_sleep_waits_the_scaled_real_time() -> None:
    clock = SimulatedClock(START, speed=3_600 * 1_000)
    before = clock.now()
    clock.sleep(3_600)  # one simulated hour is 1 ms of real time
    assert clock.now() - before >= timedelta(hours=1)
