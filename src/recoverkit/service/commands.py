"""The service's CLI commands: ``serve``, ``worker``, ``db upgrade``, ``outbox list|retry|purge``,
``doctor``, ``replay``, ``backfill``, ``purge``, ``forget`` and ``rotate-keys``.
``recoverkit.cli`` adds them with :func:`add_service_commands`.

Exit codes follow ``recoverkit.cli``: 0 success, 1 something failed, 2 bad input or settings.
Errors are one line on stderr.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from recoverkit.config import Settings, load_settings
from recoverkit.errors import RecoverkitError
from recoverkit.provider import Capability, ProviderEvent
from recoverkit.service import retention
from recoverkit.service.doctor import run_checks
from recoverkit.service.runtime import ProviderRegistry, utcnow
from recoverkit.service.server import (
    engine_for,
    load_plugins,
    logging_from,
    run_server,
    run_worker,
)
from recoverkit.store import crypto, current_revision, head_revision, repo, upgrade

__all__ = ["add_service_commands"]

stdout = Console(soft_wrap=True)
log = logging.getLogger(__name__)
stderr = Console(stderr=True, soft_wrap=True, highlight=False)

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML settings file", show_default=False)
]
PluginOpt = Annotated[
    list[str] | None,
    typer.Option("--plugin", help="Extra plugin object MODULE:ATTR (repeatable)"),
]


def _fail(message: str, code: int = 2) -> NoReturn:
    stderr.print(f"[bold red]error:[/] {' '.join(message.split())}", markup=True)
    raise typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except RecoverkitError as exc:
        _fail(str(exc))


def _settings(config: Path | None) -> Settings:
    with _errors():
        return load_settings(config)


def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    worker: Annotated[
        bool | None,
        typer.Option("--worker/--no-worker", help="Run a worker in this process (serve_worker)"),
    ] = None,
    plugin: PluginOpt = None,
) -> None:
    """Run the receiver and merchant endpoints (and, by default, a worker) under uvicorn."""
    settings = _settings(config)
    with _errors():
        run_server(settings, load_plugins(plugin or []), host=host, port=port, run_worker=worker)


def worker(config: ConfigOpt = None, plugin: PluginOpt = None) -> None:
    """Run a standalone worker (several may share a PostgreSQL database)."""
    settings = _settings(config)
    with _errors():
        run_worker(settings, load_plugins(plugin or []))


def db_upgrade(config: ConfigOpt = None) -> None:
    """Apply the database migrations shipped with this version."""
    settings = _settings(config)
    engine = engine_for(settings)
    before = current_revision(engine)
    upgrade(engine)
    stdout.print(f"database at {head_revision()} (was {before or 'empty'})")


def outbox_list(
    config: ConfigOpt = None,
    state: Annotated[str | None, typer.Option(help="pending, sent or dead")] = None,
    limit: Annotated[int, typer.Option(help="Rows to show")] = 50,
) -> None:
    """Show the newest outbox rows."""
    engine = engine_for(_settings(config))
    table = Table("id", "state", "endpoint", "invoice", "attempts", "status", "request id", "error")
    for row in repo.list_outbox(engine, state, limit):
        table.add_row(
            str(row.id),
            row.state,
            row.endpoint,
            row.invoice_id or "",
            str(row.attempts),
            "" if row.last_status is None else str(row.last_status),
            row.request_id or "",
            (row.last_error or "")[:80],
        )
    stdout.print(table)


def outbox_retry(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Row ids (default: every dead row)")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Queue dead (or the given) rows again; their dead-letter clock restarts."""
    engine = engine_for(_settings(config))
    n = repo.requeue_outbox(engine, utcnow(), ids or ())
    stdout.print(f"{n} row(s) queued again")


def outbox_purge(
    config: ConfigOpt = None,
    state: Annotated[str, typer.Option(help="sent or dead")] = "sent",
    older_than_days: Annotated[float, typer.Option(help="Age in days")] = 30.0,
) -> None:
    """Delete sent (or dead) rows older than the given age."""
    if state not in {"sent", "dead"}:
        _fail("--state must be sent or dead")
    engine = engine_for(_settings(config))
    n = repo.purge_outbox(engine, state, utcnow() - timedelta(days=older_than_days))
    stdout.print(f"{n} {state} row(s) deleted")


def _print_counts(counts: dict[str, int], dry_run: bool) -> None:
    verb = "would be" if dry_run else "were"
    for what, n in counts.items():
        stdout.print(f"{n:>8}  {what}" + (f" ({verb})" if dry_run else ""))


def purge(
    config: ConfigOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be purged; change nothing")
    ] = False,
) -> None:
    """Apply the retention settings now (the worker also does every retention_interval)."""
    settings = _settings(config)
    engine = engine_for(settings)
    _print_counts(retention.purge(engine, settings, utcnow(), dry_run=dry_run), dry_run)


def forget(
    customer: Annotated[
        str, typer.Option("--customer", help="The merchant's or the PSP's customer id")
    ],
    provider: Annotated[
        str | None, typer.Option("--provider", help="Only this provider's rows")
    ] = None,
    config: ConfigOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be erased; change nothing")
    ] = False,
) -> None:
    """Erase a customer (GDPR Art. 17): anonymise or delete their rows in every table."""
    if not customer.strip():
        _fail("--customer must not be empty")
    settings = _settings(config)
    engine = engine_for(settings)
    counts = retention.forget(
        engine, customer.strip(), utcnow(), provider=provider, dry_run=dry_run
    )
    _print_counts(counts, dry_run)


def rotate_keys(
    config: ConfigOpt = None,
    new_key: Annotated[
        bool, typer.Option("--new-key", help="Print a new random key and exit")
    ] = False,
) -> None:
    """Re-encrypt stored payloads with the first of payload_encryption_keys."""
    if new_key:
        stdout.print(crypto.generate_key())
        return
    settings = _settings(config)
    if not settings.payload_encryption_keys:
        _fail("payload_encryption_keys is empty: set RECOVERKIT_PAYLOAD_ENCRYPTION_KEYS first")
    with _errors():
        engine = engine_for(settings)
        n = retention.rotate_keys(engine)
    stdout.print(f"{n} payload(s) re-encrypted with the first key")


def doctor(config: ConfigOpt = None, plugin: PluginOpt = None) -> None:
    """Check the settings, the database, the merchant endpoints and every provider."""
    settings = _settings(config)
    with _errors():
        checks = run_checks(settings, load_plugins(plugin or []), engine_for(settings))
    table = Table("", "check", "detail")
    for check in checks:
        table.add_row("[green]ok[/]" if check.ok else "[red]FAIL[/]", check.name, check.detail)
    stdout.print(table)
    if not all(c.ok for c in checks):
        raise typer.Exit(1)


def _recorded(path: Path) -> tuple[str | None, bytes, dict[str, str]]:
    """A recorded webhook: ``{"provider", "headers", "body"}`` JSON, or the raw body itself."""
    raw = path.read_bytes()
    try:
        data = json.loads(raw)
    except ValueError:
        return None, raw, {}
    if isinstance(data, dict) and "body" in data and set(data) <= {"provider", "headers", "body"}:
        body = data["body"]
        text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
        return data.get("provider"), text.encode(), dict(data.get("headers") or {})
    return None, raw, {}


def replay(
    files: Annotated[list[Path], typer.Argument(help="Recorded webhooks", exists=True)],
    url: Annotated[str, typer.Option(help="The running server")] = "http://127.0.0.1:8000",
    provider: Annotated[str | None, typer.Option(help="Provider, if the file does not say")] = None,
    resign: Annotated[bool, typer.Option(help="Sign again with the configured secret")] = True,
    config: ConfigOpt = None,
    plugin: PluginOpt = None,
) -> None:
    """POST recorded webhooks to a running server (signatures expire, so re-sign by default)."""
    settings = _settings(config)
    registry = ProviderRegistry(settings, load_plugins(plugin or []))
    failed = 0
    with httpx.Client(timeout=30) as client:
        for path in files:
            name, body, headers = _recorded(path)
            name = name or provider
            if name is None:
                _fail(f"{path}: no provider in the file; pass --provider")
            if resign:
                with _errors():
                    signed = registry.get(name).sign_test_webhook(body)
                body, headers = signed.body, dict(signed.headers)
            try:
                answer = client.post(
                    f"{url.rstrip('/')}/webhooks/{name}", content=body, headers=headers
                )
            except httpx.TransportError as exc:
                _fail(f"cannot reach {url}: {exc}", 1)
            ok = 200 <= answer.status_code < 300
            failed += not ok
            colour = "green" if ok else "red"
            stdout.print(f"[{colour}]{answer.status_code}[/] {path} {answer.text[:120]}")
    if failed:
        raise typer.Exit(1)


def _date(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"not an ISO date: {value!r}")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def backfill(
    provider: Annotated[str, typer.Argument(help="Provider name")],
    since: Annotated[str, typer.Option(help="ISO date, e.g. 2026-01-01")],
    until: Annotated[str | None, typer.Option(help="ISO date (default: now)")] = None,
    restart: Annotated[bool, typer.Option(help="Ignore a saved position")] = False,
    chunk: Annotated[int, typer.Option(help="Events stored per transaction")] = 100,
    config: ConfigOpt = None,
    plugin: PluginOpt = None,
) -> None:
    """Stream a provider's history into the inbox (the worker forwards it); resumable."""
    settings = _settings(config)
    logging_from(settings)
    engine = engine_for(settings)
    with _errors():
        instance = ProviderRegistry(settings, load_plugins(plugin or [])).get(provider)
    if not instance.supports(Capability.BACKFILL):
        _fail(f"provider {provider!r} does not support backfill")
    cursor, done = (None, 0) if restart else repo.get_backfill_cursor(engine, provider)
    start, end = _date(since), _date(until) if until else utcnow()
    if cursor:
        stdout.print(f"resuming after {done} event(s)")
    batch: list[ProviderEvent] = []
    new = 0
    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn()]
    with Progress(*columns, TextColumn("{task.completed} events"), TimeElapsedColumn()) as bar:
        task = bar.add_task(f"{provider} backfill", total=None)
        with _errors():
            for event, position in instance.backfill(start, end, cursor):
                batch.append(event)
                if len(batch) >= chunk:
                    new += repo.insert_events(engine, batch, utcnow())
                    done += len(batch)
                    repo.set_backfill_cursor(engine, provider, position, done, utcnow())
                    bar.advance(task, len(batch))
                    log.info(
                        "backfill %s: %d event(s) read, %d new, position saved",
                        provider,
                        done,
                        new,
                        extra={"event": "backfill_progress", "provider": provider, "read": done},
                    )
                    batch = []
            new += repo.insert_events(engine, batch, utcnow())
            done += len(batch)
            bar.advance(task, len(batch))
        repo.set_backfill_cursor(engine, provider, None, 0, utcnow())
    stdout.print(f"{done} event(s) read, {new} new in the inbox")


def add_service_commands(app: typer.Typer) -> None:
    """Add the service's commands to the ``recoverkit`` CLI."""
    app.command("serve")(serve)
    app.command("worker")(worker)
    app.command("doctor")(doctor)
    app.command("replay")(replay)
    app.command("backfill")(backfill)
    app.command("purge")(purge)
    app.command("forget")(forget)
    app.command("rotate-keys")(rotate_keys)
    db = typer.Typer(help="Database migrations.", no_args_is_help=True)
    db.command("upgrade")(db_upgrade)
    app.add_typer(db, name="db")
    box = typer.Typer(
        help="Inspect and repair the queue of messages for Recover.", no_args_is_help=True
    )
    box.command("list")(outbox_list)
    box.command("retry")(outbox_retry)
    box.command("purge")(outbox_purge)
    app.add_typer(box, name="outbox")
