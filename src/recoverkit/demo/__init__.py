"""``recoverkit demo``: the whole loop on one machine, in well under a minute.

It shows, for every installed provider plugin, what its bundled signed webhooks become in
Recover's schema, then runs them through the real bridge and the real sandbox (both served on
loopback) with a compressed clock: decisions, RetryStatus calls, retries, Retry Results
reconciled, End of Dunning. It exits non-zero if any guarantee broke.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from recoverkit.errors import RecoverkitError
from recoverkit.plugins import Plugins
from recoverkit.provider import Provider
from recoverkit.schema import PaymentEvent

if TYPE_CHECKING:
    from recoverkit.demo.loop import DemoReport, ProviderTally
    from recoverkit.demo.psp import SimulatedPsp

__all__ = ["demo"]

console = Console()


def _show_samples(provider: Provider) -> None:
    table = Table(title=f"{provider.name}: bundled signed webhooks", title_justify="left")
    for column in ("event", "Recover message", "invoice / customer", "amount", "decline"):
        table.add_column(column)
    for request in provider.sample_webhooks():
        provider.verify(request)
        for event in provider.parse(request):
            translation = provider.translate(event)
            if translation.ignored is not None:
                table.add_row(event.type, "[dim]ignored[/]", translation.ignored, "", "")
            for message in translation.messages:
                body = message.body
                if isinstance(body, PaymentEvent):
                    last = body.transactions[-1]
                    who = body.invoice.id
                    amount = f"{last.amount} {last.currency}"
                    outcome = "approved" if last.success else "declined"
                else:
                    who = body.customer_id
                    amount, outcome = "", "card update"
                decline = message.decline
                table.add_row(
                    event.type,
                    f"POST /{message.endpoint}",
                    who,
                    amount,
                    f"[yellow]{decline.category.value}[/] ({decline.response_type.value})"
                    if decline
                    else outcome,
                )
    console.print(table)


def _amounts(amounts: dict[str, Decimal]) -> str:
    return ", ".join(f"{amount} {currency}" for currency, amount in sorted(amounts.items())) or "-"


def _live_table(now: datetime, psp: SimulatedPsp) -> Table:
    table = Table(title=f"sandbox clock: {now:%Y-%m-%d %H:%M} UTC", title_justify="left")
    for column in ("provider", "invoice", "amount", "decline", "retries", "state"):
        table.add_column(column)
    for invoice in psp:
        state = {
            "paid": "[green]recovered[/]",
            "open": "[yellow]in dunning[/]",
        }.get(invoice.status, invoice.status)
        if invoice.status == "open" and invoice.end_of_dunning is not None:
            state = "[red]dunning ended[/]"
        table.add_row(
            invoice.provider,
            invoice.invoice_id,
            f"{invoice.amount} {invoice.currency}",
            invoice.decline.category.value,
            str(invoice.retries),
            state,
        )
    return table


def _summary(report: DemoReport) -> Group:
    table = Table(title="demo summary", title_justify="left")
    for column in (
        "provider",
        "webhooks",
        "failed invoices",
        "card updates",
        "retries",
        "recovered",
        "recovered amount",
        "dunning ended",
    ):
        table.add_column(column, justify="left" if column == "provider" else "right")
    for name, tally in report.providers.items():
        table.add_row(
            name,
            str(tally.webhooks),
            str(tally.failed_invoices),
            str(tally.method_updates),
            str(tally.retries),
            str(tally.recovered),
            _amounts(tally.recovered_amount),
            str(tally.ended),
        )
    checks = Text()
    checks.append(
        f"{report.forwarded} messages forwarded by the bridge to the sandbox; "
        f"{report.webhooks_sent} Recover webhooks sent, {report.webhooks_verified} verified and "
        f"processed by the bridge; {report.idempotent_replays} charge replays answered by "
        f"idempotency; sandbox clock from {report.started_at:%Y-%m-%d} (the samples' first "
        f"failure) to {report.ended_at:%Y-%m-%d} in {report.seconds:.1f} s of real time.\n"
    )
    if report.ok:
        checks.append("✓ every invoice charged at most once, every webhook verified", "green")
    for problem in report.problems:
        checks.append(f"✗ {problem}\n", "red")
    return Group(table, checks)


def demo() -> None:
    """Run the whole loop: PSP webhooks → bridge → sandbox → retries → reconciled results."""
    try:
        registry = Plugins()
    except RecoverkitError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if not registry.providers:
        console.print(
            "No provider plugins are installed. Install one with its extra, e.g. "
            'pip install "recoverkit[stripe]" (or braintree, adyen, all).',
            markup=False,
        )
        raise typer.Exit(1)
    console.rule("[bold]1. what the plugins make of their signed sample webhooks")
    try:
        for cls in registry.providers.values():
            _show_samples(cls.for_demo())
    except RecoverkitError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    console.rule("[bold]2. the loop: bridge and sandbox on loopback, a compressed month")
    console.print(
        "Webhooks, signatures, translation, the bridge, the sandbox and every HTTP call are "
        "real. [bold]PSP API calls[/] (RetryStatus's invoice check, charging a retry, "
        "reconciling, ending dunning) are [bold]answered by the demo's simulated issuer[/], "
        "not by cassettes: no cassette matches a scenario's fresh idempotency keys."
    )
    with Live(console=console, refresh_per_second=8, transient=False) as live:

        def on_step(now: datetime, psp: SimulatedPsp, _: dict[str, ProviderTally]) -> None:
            live.update(Panel(_live_table(now, psp), title="dunning"))

        try:
            # Imported here: the loop pulls in the service and the sandbox (uvicorn, SQLAlchemy),
            # which every other `recoverkit` command would otherwise pay for at start-up.
            from recoverkit.demo.loop import run_demo

            report = run_demo(registry, on_step=on_step)
        except RecoverkitError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            raise typer.Exit(1) from None
    console.rule("[bold]3. summary")
    console.print(_summary(report))
    if not report.ok:
        raise typer.Exit(1)
