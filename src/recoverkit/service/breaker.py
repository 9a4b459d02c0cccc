"""The worker's circuit breaker: when Recover fails across many calls, stop calling it.

States:

- **closed**: calls go out; ``threshold`` failed calls in a row (no answer, 5xx, 429) open it.
- **open**: nothing is sent until the cool-down ends (``cooldown``, doubling on every failed
  probe up to ``cooldown_cap``).
- **half-open**: one message is sent as a probe. If Recover answers (any status but 5xx/429), the
  breaker closes and the backlog flows; otherwise it opens again for a longer cool-down.

An outage therefore costs the calls in flight when it began plus one probe per cool-down, not
several calls per queued message. State changes are logged once each ("Recover unreachable",
"Recover back"), never once per request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Literal

__all__ = ["CircuitBreaker", "State", "is_failure_status"]

log = logging.getLogger("recoverkit.recover")

State = Literal["closed", "open", "half_open"]
_STATE_VALUES: dict[State, int] = {"closed": 0, "open": 1, "half_open": 2}


def is_failure_status(status: int) -> bool:
    """A call that says Recover is unwell: no answer (0), 429 or 5xx."""
    return status in {0, 429} or status >= 500


class CircuitBreaker:
    """Thread-safe; fed by every HTTP call's status (``record``)."""

    def __init__(
        self,
        *,
        threshold: int = 5,
        cooldown: float = 1.0,
        cooldown_cap: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[State], None] | None = None,
    ) -> None:
        if threshold < 1:
            raise ValueError("threshold must be at least 1")
        self.threshold = threshold
        self.cooldown = cooldown
        self.cooldown_cap = cooldown_cap
        self._clock = clock
        self._on_change = on_change
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._failures = 0  # consecutive failed calls while closed
        self._open_until = 0.0
        self._opened_at = 0.0
        self._trips = 0  # failed probes since the breaker opened (for the doubling)
        self._probe_in_flight = False
        self.probes = 0  # probes started since this breaker was made
        self.last_error = ""

    @property
    def state(self) -> State:
        """The current state (an open breaker whose cool-down ended reads as half-open)."""
        with self._lock:
            self._tick()
            return self._state

    @property
    def state_value(self) -> int:
        """0 closed, 1 open, 2 half-open (for a gauge)."""
        return _STATE_VALUES[self.state]

    def seconds_until_probe(self) -> float:
        """How long the worker may idle before a probe is due (0 when not open)."""
        with self._lock:
            self._tick()
            if self._state != "open":
                return 0.0
            return max(0.0, self._open_until - self._clock())

    def _tick(self) -> None:
        if self._state == "open" and self._clock() >= self._open_until:
            self._set("half_open")

    def _set(self, state: State) -> None:
        self._state = state
        if self._on_change is not None:
            self._on_change(state)

    def admit(self) -> int | None:
        """How many messages the next batch may send: ``None`` for no limit, 1 for a probe, 0."""
        with self._lock:
            self._tick()
            if self._state == "closed":
                return None
            if self._state == "open" or self._probe_in_flight:
                return 0
            self._probe_in_flight = True
            self.probes += 1
            return 1

    def probe_done(self) -> None:
        """The probe's batch finished (whatever its answer); another may start when due."""
        with self._lock:
            self._probe_in_flight = False

    def sending_allowed(self) -> bool:
        """True while closed or half-open (a queued message may still go out)."""
        return self.state != "open"

    def quick_tries_allowed(self) -> bool:
        """Quick tries only while closed: a probe is one call."""
        return self.state == "closed"

    def record(self, status: int, error: str = "") -> None:
        """Feed one HTTP call's status (0: no answer)."""
        with self._lock:
            self._tick()
            now = self._clock()
            if not is_failure_status(status):
                if self._state != "closed":
                    outage = now - self._opened_at
                    log.warning(
                        "Recover back after %.1f s (%d probe(s))",
                        outage,
                        self._trips + 1,
                        extra={"event": "recover_back", "outage_seconds": round(outage, 3)},
                    )
                    self._set("closed")
                self._failures = 0
                self._trips = 0
                return
            self.last_error = error or self.last_error
            if self._state == "closed":
                self._failures += 1
                if self._failures >= self.threshold:
                    self._opened_at = now
                    self._trips = 0
                    self._open(now)
                    log.error(
                        "Recover unreachable: %d failed calls in a row (last: %s); "
                        "pausing sends, probing again in %.1f s",
                        self._failures,
                        self.last_error or f"status {status}",
                        self._open_until - now,
                        extra={"event": "recover_unreachable", "status": status},
                    )
            elif self._state == "half_open":
                self._trips += 1
                self._open(now)
                log.info(
                    "Recover still unreachable (probe %d: %s); next probe in %.1f s",
                    self._trips,
                    error or f"status {status}",
                    self._open_until - now,
                    extra={"event": "recover_probe_failed", "status": status},
                )

    def _open(self, now: float) -> None:
        delay = min(self.cooldown_cap, self.cooldown * (2**self._trips))
        self._open_until = now + delay
        self._set("open")
