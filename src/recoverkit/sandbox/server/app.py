"""Putting the sandbox together: the ingest API plus a background engine loop on one clock."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import httpx
from starlette.applications import Starlette

from recoverkit.provider import Provider
from recoverkit.sandbox.clock import Clock
from recoverkit.sandbox.policies.base import RetryPolicy
from recoverkit.sandbox.server.dunning import DunningBook
from recoverkit.sandbox.server.engine import DunningEngine
from recoverkit.sandbox.server.ingest import create_ingest_app
from recoverkit.sandbox.server.merchant import MerchantClient
from recoverkit.sandbox.server.settings import SandboxSettings
from recoverkit.store.engine import make_engine

if TYPE_CHECKING:
    from recoverkit.sandbox.server.training import StoreLearner

__all__ = ["Sandbox"]


def _learner(book: DunningBook, policy: RetryPolicy) -> StoreLearner | None:
    """A :class:`StoreLearner` when the policy (or the one a holdout wraps) learns online."""
    learning = getattr(policy, "treated", policy)
    if not callable(getattr(learning, "observe", None)) or not hasattr(learning, "state_json"):
        return None
    from recoverkit.sandbox.server.training import StoreLearner

    return StoreLearner(book, learning)


logger = logging.getLogger("recoverkit.sandbox")


@dataclass
class Sandbox:
    """A running embedded Recover: ``app`` to serve, ``engine`` to drive, ``run_in_background``."""

    settings: SandboxSettings
    clock: Clock
    book: DunningBook
    engine: DunningEngine
    app: Starlette
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    #: Feeds a learning policy (``adaptive``) the finished retries and persists its state.
    learner: StoreLearner | None = None

    @classmethod
    def create(
        cls,
        settings: SandboxSettings,
        *,
        policy: RetryPolicy,
        providers: Callable[[str], Provider],
        clock: Clock,
        merchant_transport: httpx.BaseTransport | None = None,
    ) -> Sandbox:
        """Build the store, engine and ASGI app; nothing runs until asked."""
        db = make_engine(settings.database_url)
        book = DunningBook(db, dunning_window=settings.dunning_window)
        merchant = MerchantClient(settings, transport=merchant_transport)
        engine = DunningEngine(settings, book, policy, providers, merchant)
        app = create_ingest_app(settings, book, clock.now)
        learner = _learner(book, policy)
        return cls(settings, clock, book, engine, app, learner=learner)

    def learn(self) -> int:
        """Let a learning policy learn from the retries finished since last time."""
        return self.learner.sync(self.clock.now()) if self.learner is not None else 0

    def run_until_idle(self, max_ticks: int = 1000) -> int:
        """Tick at the current time until nothing is due (tests, the demo); returns ticks run."""
        for ticks in range(1, max_ticks + 1):
            done = self.engine.tick(self.clock.now())
            self.learn()
            if done == 0:
                return ticks
        raise RuntimeError(f"sandbox still busy after {max_ticks} ticks")

    def run_in_background(self, poll_seconds: float = 0.2) -> None:
        """Tick the engine in a daemon thread every ``poll_seconds`` of real time."""

        def loop() -> None:
            while not self._stop.wait(poll_seconds):
                try:
                    self.engine.tick(self.clock.now())
                    self.learn()
                except Exception:  # keep the sandbox alive; the step logged what failed
                    logger.exception("sandbox: engine tick failed")

        self._thread = threading.Thread(target=loop, name="recoverkit-sandbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the background loop and close connections."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.engine.merchant.close()
        self.book.engine.dispose()
