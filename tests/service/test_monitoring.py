"""Metrics an operator alerts on: every HTTP call to Recover counted, backlog gauges read from the
database, and the shipped alert rules and dashboard only name metrics the service exposes."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import yaml
from fake_provider import charge_event, signed
from prometheus_client.parser import text_string_to_metric_families
from service_support import API_KEY, Service, call

from recoverkit.client import RecoverClient
from recoverkit.service import Worker
from recoverkit.service.metrics import Metrics

DOCS = Path(__file__).parents[2] / "docs" / "monitoring"


def deliver(svc: Service, event_id: str, invoice: str = "inv_1") -> None:
    raw, headers = signed(charge_event(event_id, invoice=invoice))
    assert call(svc.app, "POST", "/webhooks/fake", content=raw, headers=headers).status_code == 200


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.render().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_every_http_call_to_recover_is_counted_quick_tries_included(service: Service) -> None:
    answers = iter([500, 500, 200, 503, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        return httpx.Response(status, json={"message": str(status), "request_id": "r"})

    client = RecoverClient(
        api_key=API_KEY,
        base_url=service.settings.recover_base_url,
        transport=httpx.MockTransport(handler),
        max_attempts=3,
        sleep=lambda _s: None,
    )
    worker = Worker(
        settings=service.settings.model_copy(update={"recover_concurrency": 1}),
        plugins=service.worker.plugins,
        engine=service.engine,
        providers=service.worker.providers,
        client=client,
        metrics=service.worker.metrics,
    )
    try:
        deliver(service, "evt_1", "inv_1")
        deliver(service, "evt_2", "inv_2")
        worker.translate_pending()
        assert worker.forward_pending() == 2
    finally:
        worker.close()
    got = samples(service.worker.metrics)
    key = "recoverkit_recover_requests_total"
    assert got[(key, (("endpoint", "payments"), ("status", "500")))] == 2
    assert got[(key, (("endpoint", "payments"), ("status", "503")))] == 1
    assert got[(key, (("endpoint", "payments"), ("status", "200")))] == 2
    assert got[("recoverkit_forwarded_total", (("endpoint", "payments"),))] == 2


def test_backlog_gauges_read_the_database(service: Service) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    metrics = Metrics(service.engine, clock=lambda: later)
    empty = samples(metrics)
    assert empty[("recoverkit_inbox_backlog", ())] == 0
    assert empty[("recoverkit_outbox_oldest_pending_age_seconds", ())] == 0
    deliver(service, "evt_1", "inv_1")
    deliver(service, "evt_2", "inv_2")
    got = samples(metrics)
    assert got[("recoverkit_inbox_backlog", ())] == 2
    assert 3590 < got[("recoverkit_inbox_oldest_pending_age_seconds", ())] <= 3600
    service.recover.mode = "refused"
    service.worker.translate_pending()
    service.worker.forward_pending()
    got = samples(metrics)
    assert got[("recoverkit_inbox_backlog", ())] == 0
    assert 3590 < got[("recoverkit_outbox_oldest_pending_age_seconds", ())] <= 3600
    assert got[("recoverkit_outbox_dead_letters", ())] == 0
    service.recover.mode = "400"
    service.worker.breaker.record(200)  # Recover answers again (the breaker may have opened)
    deliver(service, "evt_3", "inv_3")
    deadline = time.monotonic() + 20
    while samples(metrics)[("recoverkit_outbox_dead_letters", ())] < 3:  # backoffs of ~0.02 s
        assert time.monotonic() < deadline, "the messages were never dead-lettered"
        if not service.worker.run_once():
            time.sleep(0.02)
    got = samples(metrics)
    assert got[("recoverkit_outbox_dead_letters", ())] == 3
    assert got[("recoverkit_outbox_oldest_pending_age_seconds", ())] == 0
    assert samples(service.worker.metrics)[("recoverkit_recover_breaker_state", ())] == 0


def exposed_names(svc: Service) -> set[str]:
    """Every sample name /metrics can expose (counters with and without ``_total``)."""
    names: set[str] = set()
    for family in svc.app.state.service.metrics.registry.collect():
        names.add(family.name)
        suffixes = {"counter": ["_total", "_created"], "histogram": ["_bucket", "_sum", "_count"]}
        names.update(family.name + s for s in suffixes.get(family.type, []))
    return names


def referenced(expr: str) -> set[str]:
    return set(re.findall(r"\brecoverkit_[a-z_]+", expr))


def test_alert_rules_and_dashboard_name_only_metrics_the_service_exposes(service: Service) -> None:
    names = exposed_names(service)
    rules = yaml.safe_load((DOCS / "alerts.yml").read_text())
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(exprs) >= 5
    for rule in (r for g in rules["groups"] for r in g["rules"]):
        assert {"alert", "expr", "labels", "annotations"} <= set(rule)
    dashboard = json.loads((DOCS / "grafana-dashboard.json").read_text())
    exprs += [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = set().union(*(referenced(e) for e in exprs))
    assert used, "no metric referenced"
    assert used <= names, f"not exposed by /metrics: {sorted(used - names)}"
