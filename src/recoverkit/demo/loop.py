"""The end-to-end demo: bridge and sandbox as real servers, one compressed month of dunning.

1. Each installed plugin's signed sample webhooks (its bundled scenario) are POSTed to the bridge.
2. The bridge verifies them, stores them, translates them and forwards Payments and Payment
   Method Updates to the sandbox over HTTP.
3. The sandbox plans each failed invoice through the network-rules guard, asks the bridge's
   RetryStatus endpoint, retries through the plugin (its PSP account simulated, see
   :mod:`recoverkit.demo.psp`), and sends signed Retry Results and End of Dunning webhooks that
   the bridge verifies and reconciles.

The sandbox runs on a simulated clock advanced six hours per step, so a month passes in seconds.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy import Engine, Table, func, select

from recoverkit.config import EndpointAuth, Settings
from recoverkit.demo.psp import SimulatedPsp, simulated
from recoverkit.demo.servers import LoopbackServer
from recoverkit.errors import RecoverkitError
from recoverkit.plugins import Plugins
from recoverkit.provider import Provider, WebhookRequest
from recoverkit.sandbox.clock import SimulatedClock
from recoverkit.sandbox.policies.decline_aware import DeclineAwarePolicy
from recoverkit.sandbox.server import store as sandbox_tables
from recoverkit.sandbox.server.app import Sandbox
from recoverkit.sandbox.server.settings import SandboxSettings
from recoverkit.schema import PaymentEvent
from recoverkit.service.app import create_app
from recoverkit.store import butter_webhooks, make_engine, upgrade

__all__ = ["DemoError", "DemoReport", "ProviderTally", "run_demo"]

STEP = timedelta(hours=6)
SANDBOX_KEY = "demo_sandbox_key"
MERCHANT_KEY = "demo_merchant_key"
SIGNING_SECRET = "demo_butter_signing_secret"  # noqa: S105 - a throwaway value for this run


class DemoError(RecoverkitError):
    """The demo could not run its loop (a server did not start, events did not arrive)."""


@dataclass
class ProviderTally:
    """What happened for one provider."""

    webhooks: int = 0
    failed_invoices: int = 0
    method_updates: int = 0
    held_back: int = 0
    retries: int = 0
    recovered: int = 0
    ended: int = 0
    recovered_amount: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class DemoReport:
    """The demo's outcome; ``problems`` lists every broken guarantee (empty when all held)."""

    providers: dict[str, ProviderTally]
    forwarded: int
    webhooks_sent: int
    webhooks_verified: int
    idempotent_replays: int
    started_at: datetime
    ended_at: datetime
    seconds: float
    problems: list[str]

    @property
    def ok(self) -> bool:
        """True when every guarantee held."""
        return not self.problems


@dataclass(frozen=True)
class _Replay:
    provider: str
    request: WebhookRequest
    label: str


def _scenario(
    providers: dict[str, Provider], psp: SimulatedPsp, tallies: dict[str, ProviderTally]
) -> tuple[list[_Replay], dict[str, Provider], tuple[datetime, datetime]]:
    """What to replay, which provider serves each ``transactions[].psp``, the first and last
    failure times."""
    replays: list[_Replay] = []
    by_psp: dict[str, Provider] = {}
    failures: list[datetime] = []
    for name, provider in providers.items():
        tally = tallies[name]
        samples = provider.sample_webhooks()
        failed: set[str] = set()
        decoded = []
        for request in samples:
            provider.verify(request)
            messages = [m for e in provider.parse(request) for m in provider.translate(e).messages]
            decoded.append((request, messages))
            for message in messages:
                body = message.body
                if isinstance(body, PaymentEvent) and not body.transactions[-1].success:
                    failed.add(body.invoice.id)
        for request, messages in decoded:
            payments = [m.body for m in messages if isinstance(m.body, PaymentEvent)]
            if any(p.invoice.id in failed and p.transactions[-1].success for p in payments):
                # The sample's own later success of a failed invoice is left out: in the demo
                # the sandbox's retry is what collects it.
                tally.held_back += 1
                continue
            replays.append(
                _Replay(name, request, ", ".join(sorted({m.endpoint for m in messages})))
            )
            tally.webhooks += 1
            for message in messages:
                body = message.body
                if not isinstance(body, PaymentEvent):
                    tally.method_updates += 1
                    continue
                last = body.transactions[-1]
                by_psp[last.psp] = provider
                if last.success or message.decline is None:
                    continue
                tally.failed_invoices += 1
                psp.open_invoice(
                    name,
                    body.invoice.id,
                    last.amount,
                    last.currency,
                    message.decline,
                    last.psp_transaction_created_at,
                )
                failures.append(last.psp_transaction_created_at)
    if not failures:
        failures.append(datetime.now(UTC))
    return replays, by_psp, (min(failures), max(failures))


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise DemoError(f"demo: timed out waiting for {what}")
        time.sleep(0.05)


def run_demo(
    plugins: Plugins,
    *,
    on_step: Callable[[datetime, SimulatedPsp, dict[str, ProviderTally]], None] | None = None,
    days: int = 32,
) -> DemoReport:
    """Run the whole loop once; ``on_step`` is called after every simulated step (live view)."""
    started = time.monotonic()
    tallies = {name: ProviderTally() for name in plugins.providers}
    with tempfile.TemporaryDirectory(prefix="recoverkit-demo-") as folder:
        tmp = Path(folder)
        clock = SimulatedClock(datetime.now(UTC))
        psp = SimulatedPsp(clock.now)
        demo_providers = {
            name: simulated(cls.for_demo(), psp) for name, cls in plugins.providers.items()
        }
        replays, by_psp, (first_failure, last_failure) = _scenario(demo_providers, psp, tallies)
        clock = SimulatedClock(first_failure.replace(microsecond=0))
        psp.now = clock.now

        sandbox_server = LoopbackServer("recoverkit-demo-sandbox")
        bridge = LoopbackServer("recoverkit-demo-bridge")
        sandbox_settings = SandboxSettings(
            merchant_url=bridge.url,
            database_url=f"sqlite:///{tmp / 'sandbox.db'}",
            api_keys=[SecretStr(SANDBOX_KEY)],
            merchant_api_key=SecretStr(MERCHANT_KEY),
            signing_secret=SecretStr(SIGNING_SECRET),
            # The sandbox's clock starts at the scenario's first failure (the samples carry
            # their own dates) and runs ahead; the bridge checks expiry on the wall clock, so
            # the webhooks' expiry must reach past both.
            webhook_ttl=abs(datetime.now(UTC) - first_failure) + timedelta(days=days * 2),
            extra_psp_names=sorted(by_psp),
        )
        sandbox = Sandbox.create(
            sandbox_settings,
            policy=DeclineAwarePolicy(),
            providers=lambda psp_name: by_psp[psp_name],
            clock=clock,
        )
        sandbox_server.start(sandbox.app)

        auth = EndpointAuth(api_key=SecretStr(MERCHANT_KEY))
        bridge_settings = Settings(
            database_url=f"sqlite:///{tmp / 'bridge.db'}",
            sqlite_synchronous="NORMAL",
            recover_base_url=f"{sandbox_server.url}/recover",
            recover_api_key=SecretStr(SANDBOX_KEY),
            butter_signing_secrets=[SecretStr(SIGNING_SECRET)],
            retry_status=EndpointAuth(api_key=SecretStr(MERCHANT_KEY), require_signature=False),
            retry_results=auth,
            end_of_dunning=auth,
            worker_poll_interval=0.05,
            extra_psp_names=sorted(by_psp),
            # The sandbox's webhooks carry expiries on its compressed clock, which may run ahead
            # of the wall clock the bridge checks them against by up to the TTL plus the run.
            butter_max_expiry_ahead=(
                sandbox_settings.webhook_ttl
                + abs(datetime.now(UTC) - first_failure)
                + timedelta(days=days)
            ).total_seconds(),
        )
        bridge_db = make_engine(bridge_settings.database_url)
        upgrade(bridge_db)
        bridge.start(create_app(bridge_settings, plugins, bridge_db, providers=demo_providers))
        problems: list[str] = []
        try:
            with httpx.Client(base_url=bridge.url, timeout=30) as http:
                for replay in replays:
                    response = http.post(
                        f"/webhooks/{replay.provider}",
                        content=replay.request.body,
                        headers=dict(replay.request.headers),
                    )
                    if not response.is_success:
                        problems.append(
                            f"{replay.provider}: webhook answered {response.status_code}: "
                            f"{response.text[:200]}"
                        )
            expected = sum(t.failed_invoices for t in tallies.values())
            _wait(
                lambda: _count(sandbox, sandbox_tables.invoices) >= expected,
                f"{expected} failed invoices to reach the sandbox",
            )
            end = last_failure + timedelta(days=days)
            while clock.now() < end:
                sandbox.run_until_idle()
                if on_step is not None:
                    on_step(clock.now(), psp, tallies)
                due = sandbox.book.next_due()
                if due is None:
                    break
                # Six-hour steps while something is near; a jump over quiet stretches.
                clock.advance(max(STEP, due - clock.now()))
            report = _report(
                sandbox, bridge_db, psp, tallies, problems, first_failure, clock.now(), started
            )
        finally:
            bridge.stop()
            sandbox_server.stop()
            sandbox.stop()
            bridge_db.dispose()
    return report


def _count(sandbox: Sandbox, table: Table) -> int:
    with sandbox.book.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _all_done(sandbox: Sandbox) -> bool:
    c = sandbox_tables.invoices.c
    with sandbox.book.engine.connect() as conn:
        open_ = conn.execute(
            select(func.count()).where(c.state.notin_(("recovered", "ended")))
        ).scalar_one()
    return int(open_) == 0


def _undelivered(sandbox: Sandbox) -> int:
    w = sandbox_tables.webhooks.c
    with sandbox.book.engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(w.delivered_at.is_(None))).scalar_one())


def _report(
    sandbox: Sandbox,
    bridge_db: Engine,
    psp: SimulatedPsp,
    tallies: dict[str, ProviderTally],
    problems: list[str],
    started_at: datetime,
    ended_at: datetime,
    started: float,
) -> DemoReport:
    a = sandbox_tables.attempts.c
    with sandbox.book.engine.connect() as conn:
        keys = [r.idempotency_key for r in conn.execute(select(a.idempotency_key))]
        webhooks = conn.execute(select(sandbox_tables.webhooks)).all()
        invoices = conn.execute(select(sandbox_tables.invoices)).all()
        forwarded = int(
            conn.execute(
                select(func.count()).select_from(sandbox_tables.payment_events)
            ).scalar_one()
        ) + int(
            conn.execute(
                select(func.count()).select_from(sandbox_tables.payment_method_updates)
            ).scalar_one()
        )
    with bridge_db.connect() as conn:
        verified = int(conn.execute(select(func.count()).select_from(butter_webhooks)).scalar_one())
    if len(keys) != len(set(keys)):
        problems.append("an idempotency key was used for two attempts")
    for invoice in psp:
        tally = tallies[invoice.provider]
        tally.retries += invoice.retries
        if invoice.approved_charges > 1:
            problems.append(f"{invoice.invoice_id} was charged {invoice.approved_charges} times")
        if invoice.status == "paid":
            tally.recovered += 1
            tally.recovered_amount[invoice.currency] = (
                tally.recovered_amount.get(invoice.currency, Decimal(0)) + invoice.amount
            )
        elif invoice.end_of_dunning is not None:
            tally.ended += 1
        if invoice.end_of_dunning is None:
            problems.append(f"{invoice.invoice_id}: no End of Dunning reached the bridge")
    for row in invoices:
        if row.state not in ("recovered", "ended"):
            problems.append(f"{row.invoice_id} is still {row.state} in the sandbox")
    undelivered = [row for row in webhooks if row.delivered_at is None]
    if undelivered:
        problems.append(f"{len(undelivered)} webhook(s) were not accepted by the bridge")
    if verified != len(webhooks):
        problems.append(f"the bridge verified {verified} of {len(webhooks)} webhooks")
    return DemoReport(
        providers=tallies,
        forwarded=forwarded,
        webhooks_sent=len(webhooks),
        webhooks_verified=verified,
        idempotent_replays=psp.duplicate_key_calls,
        started_at=started_at,
        ended_at=ended_at,
        seconds=time.monotonic() - started,
        problems=problems,
    )
