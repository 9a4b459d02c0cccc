"""Prometheus metrics, one registry per app (so tests can build many apps in one process).

Counters and histograms are updated as things happen; the backlog gauges (queue rows by state,
oldest pending message's age, inbox backlog, dead letters) are read from the database at scrape
time, so every receiver and worker process reports the same shared truth. The full list, with
example alert rules and a Grafana dashboard, is in ``docs/operations.md`` and
``docs/monitoring/``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select

from recoverkit.redact import RedactionCollector
from recoverkit.store import inbox, outbox, repo

__all__ = ["Metrics"]

log = logging.getLogger(__name__)


class _QueueDepth(Collector):
    """Inbox and outbox rows by state, read from the database at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "recoverkit_queue_rows", "Inbox and outbox rows by state", labels=["queue", "state"]
        )
        try:
            for queue, states in repo.counts(self.engine).items():
                for state, n in states.items():
                    family.add_metric([queue, state], n)
        except Exception:  # a scrape must not fail because the database is briefly unavailable
            log.warning("could not read queue depths for /metrics", exc_info=True)
        yield family


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())


class _Backlog(Collector):
    """How far behind the bridge is: ages of the oldest pending rows, backlog, dead letters."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime]) -> None:
        self.engine = engine
        self.clock = clock

    def collect(self) -> Iterator[Metric]:
        oldest_outbox = GaugeMetricFamily(
            "recoverkit_outbox_oldest_pending_age_seconds",
            "Age of the oldest outbox message not yet accepted by Recover (0: none pending)",
        )
        oldest_inbox = GaugeMetricFamily(
            "recoverkit_inbox_oldest_pending_age_seconds",
            "Age of the oldest PSP event not yet translated (0: none pending)",
        )
        backlog = GaugeMetricFamily(
            "recoverkit_inbox_backlog", "PSP events stored and not yet translated"
        )
        dead = GaugeMetricFamily(
            "recoverkit_outbox_dead_letters",
            "Outbox messages dead-lettered and not requeued or purged",
        )
        failed = GaugeMetricFamily(
            "recoverkit_inbox_failed",
            "PSP events whose translation gave up after inbox_max_attempts",
        )
        try:
            now = self.clock()
            with self.engine.connect() as conn:
                first_out = conn.execute(
                    select(func.min(outbox.c.created_at)).where(outbox.c.state == "pending")
                ).scalar()
                first_in, pending = conn.execute(
                    select(func.min(inbox.c.received_at), func.count()).where(
                        inbox.c.state == "pending"
                    )
                ).one()
                n_dead = conn.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.state == "dead")
                ).scalar()
                n_failed = conn.execute(
                    select(func.count()).select_from(inbox).where(inbox.c.state == "failed")
                ).scalar()
        except Exception:  # a scrape must not fail because the database is briefly unavailable
            log.warning("could not read the backlog for /metrics", exc_info=True)
            return
        oldest_outbox.add_metric([], _age(now, first_out))
        oldest_inbox.add_metric([], _age(now, first_in))
        backlog.add_metric([], int(pending or 0))
        dead.add_metric([], int(n_dead or 0))
        failed.add_metric([], int(n_failed or 0))
        yield from (oldest_outbox, oldest_inbox, backlog, dead, failed)


class Metrics:
    """The counters and histograms the receiver and the worker update."""

    def __init__(
        self, engine: Engine | None = None, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.webhooks_received = Counter(
            "recoverkit_webhooks_received", "PSP webhooks accepted", ["provider"], registry=r
        )
        self.webhooks_rejected = Counter(
            "recoverkit_webhooks_rejected",
            "PSP webhooks refused, by reason",
            ["provider", "reason"],
            registry=r,
        )
        self.events_stored = Counter(
            "recoverkit_inbox_events_stored", "New inbox rows", ["provider"], registry=r
        )
        self.recover_webhooks = Counter(
            "recoverkit_recover_webhooks",
            "Retry Results / End of Dunning / RetryStatus calls, by outcome",
            ["kind", "outcome"],
            registry=r,
        )
        self.forward_latency = Histogram(
            "recoverkit_forward_latency_seconds",
            "Time from inbox to Recover's acceptance",
            ["endpoint"],
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 3600, 86400),
            registry=r,
        )
        self.forwarded = Counter(
            "recoverkit_forwarded", "Messages Recover accepted", ["endpoint"], registry=r
        )
        self.recover_requests = Counter(
            "recoverkit_recover_requests",
            "HTTP calls to Recover, every quick try and probe counted, by status (0: no answer)",
            ["endpoint", "status"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "recoverkit_recover_breaker_state",
            "The worker's circuit breaker for Recover: 0 closed, 1 open, 2 half-open",
            registry=r,
        )
        self.breaker_probes = Counter(
            "recoverkit_recover_breaker_probes",
            "Probe messages sent while the breaker was half-open",
            registry=r,
        )
        self.dead_letters = Counter(
            "recoverkit_dead_letters", "Messages dead-lettered", ["endpoint"], registry=r
        )
        self.translation_errors = Counter(
            "recoverkit_translation_errors",
            "Inbox events that failed to translate",
            ["provider"],
            registry=r,
        )
        r.register(RedactionCollector())  # recoverkit_redactions_total (docs/security.md)
        if engine is not None:
            r.register(_QueueDepth(engine))
            r.register(_Backlog(engine, clock or (lambda: datetime.now(UTC))))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
