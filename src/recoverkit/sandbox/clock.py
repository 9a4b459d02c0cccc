"""Clocks: the one place the sandbox and the simulator read time.

Pure code takes ``now`` as an argument; the edges (scheduler, demo, CLI) ask a :class:`Clock`.
:class:`SimulatedClock` lets tests and the demo run days of dunning in seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """What the sandbox needs from time: the current instant and a way to wait."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        """``datetime.now(UTC)``."""
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        """``time.sleep`` (negative values sleep 0)."""
        time.sleep(max(0.0, seconds))


class SimulatedClock:
    """A clock that moves only when told to, or ``speed`` simulated seconds per real second.

    ``SimulatedClock(start)`` is frozen: :meth:`advance` and :meth:`sleep` move it instantly.
    ``SimulatedClock(start, speed=86_400)`` runs one simulated day per real second; its
    :meth:`sleep` waits the matching (short) real time. Thread-safe.
    """

    def __init__(
        self,
        start: datetime | None = None,
        *,
        speed: float | None = None,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        start = start or datetime(2026, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs a timezone-aware start time")
        if speed is not None and speed <= 0:
            raise ValueError(f"SimulatedClock speed must be positive, got {speed}")
        self._lock = threading.Lock()
        self._base = start
        self._speed = speed
        self._monotonic = monotonic or time.monotonic
        self._real_base = self._monotonic()

    @property
    def speed(self) -> float | None:
        """Simulated seconds per real second, or ``None`` when the clock only moves manually."""
        return self._speed

    def now(self) -> datetime:
        """The simulated time."""
        with self._lock:
            if self._speed is None:
                return self._base
            elapsed = self._monotonic() - self._real_base
            return self._base + timedelta(seconds=elapsed * self._speed)

    def advance(self, delta: timedelta | float) -> datetime:
        """Move the clock forward by ``delta`` (a timedelta or seconds); returns the new time."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._base += step
        return self.now()

    def advance_to(self, at: datetime) -> datetime:
        """Move the clock forward to ``at`` if it is behind (never backwards); the new time.

        A restarted ``--speed`` sandbox resumes from the simulated time its store last saw.
        """
        behind = at - self.now()
        if behind > timedelta(0):
            with self._lock:
                self._base += behind
        return self.now()

    def sleep(self, seconds: float) -> None:
        """Frozen: advance instantly. Compressed: wait ``seconds / speed`` real seconds."""
        if seconds <= 0:
            return
        if self._speed is None:
            self.advance(seconds)
        else:
            time.sleep(seconds / self._speed)
