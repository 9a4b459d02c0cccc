"""``recoverkit demo``: the README's first command.

For now it translates the bundled, signed sample webhooks of every installed provider plugin and
shows the Recover messages they become. It runs offline: each provider's ``for_demo()`` uses its
documented test secret and the PSP responses bundled with its samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from recoverkit.errors import RecoverkitError
from recoverkit.plugins import Plugins
from recoverkit.provider import Provider

console = Console()


@dataclass
class _Tally:
    samples: int = 0
    payments: int = 0
    method_updates: int = 0
    ignored: int = 0
    errors: int = 0


def _show_provider(provider: Provider) -> _Tally:
    tally = _Tally()
    console.rule(f"[bold cyan]{provider.name}")
    for request in provider.sample_webhooks():
        tally.samples += 1
        try:
            provider.verify(request)
            events = provider.parse(request)
            translations = [provider.translate(event) for event in events]
        except RecoverkitError as exc:
            tally.errors += 1
            console.print(f"[red]✗ {type(exc).__name__}:[/] {exc}")
            continue
        for translation in translations:
            event = translation.event
            title = f"[bold]{event.type}[/]  [dim]{event.dedupe_key}[/]"
            if translation.ignored is not None:
                tally.ignored += 1
                console.print(f"[dim]• {event.type}: ignored — {translation.ignored}[/]")
                continue
            for message in translation.messages:
                if message.endpoint == "payments":
                    tally.payments += 1
                else:
                    tally.method_updates += 1
                wire = json.loads(message.to_json())
                parts: list[Text | Syntax] = [
                    Text.from_markup(f"POST [green]/{message.endpoint}[/]"),
                    Syntax(json.dumps(wire["body"], indent=2), "json", background_color="default"),
                ]
                if message.decline is not None:
                    d = message.decline
                    parts.append(
                        Text.from_markup(
                            f"decline: [yellow]{d.category.value}[/] ({d.response_type.value}), "
                            f"raw [bold]{d.raw_code}[/]"
                        )
                    )
                console.print(Panel(Group(*parts), title=title, title_align="left"))
    return tally


def demo() -> None:
    """Translate every installed plugin's signed sample webhooks and show the Recover payloads."""
    try:
        registry = Plugins()
    except RecoverkitError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if not registry.providers:
        console.print(
            "No provider plugins are installed. Install one (e.g. plugins/recoverkit-stripe)."
        )
        raise typer.Exit(1)
    summary = Table(title="demo summary", title_justify="left")
    for column in ("provider", "samples", "payments", "method updates", "ignored", "errors"):
        summary.add_column(column, justify="left" if column == "provider" else "right")
    failed = False
    for name, cls in registry.providers.items():
        try:
            tally = _show_provider(cls.for_demo())
        except RecoverkitError as exc:
            console.print(f"[red]✗ {name}: {exc}[/]")
            tally = _Tally(errors=1)
        failed = failed or tally.errors > 0 or tally.samples == 0
        summary.add_row(
            name,
            str(tally.samples),
            str(tally.payments),
            str(tally.method_updates),
            str(tally.ignored),
            f"[red]{tally.errors}[/]" if tally.errors else "0",
        )
    console.print(summary)
    if failed:
        raise typer.Exit(1)
