"""Prometheus metrics, one registry per app (so tests can build many apps in one process)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from recoverkit.redact import RedactionCollector
from recoverkit.redact import RedactionCollector
from recoverkit.store import repo

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


class Metrics:
    """The counters and histograms the receiver and the worker update."""

    def __init__(self, engine: Engine | None = None) -> None:
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
        r.register(RedactionCollector())  # recoverkit_redactions_total (docs/security.md)
        if engine is not None:
            r.register(_QueueDepth(engine))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
