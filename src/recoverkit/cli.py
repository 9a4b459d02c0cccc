"""The ``recoverkit`` command line (typer + rich).

Exit codes: 0 success; 2 bad input (usage, unreadable file, malformed webhook, unknown provider,
bad settings); 3 signature failure; 1 a PSP or Recover call failed. Errors are one line on stderr,
never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from recoverkit.config import load_settings, provider_overrides
from recoverkit.demo import demo
from recoverkit.errors import (
    ConfigurationError,
    MalformedWebhookError,
    PluginError,
    ProviderError,
    RecoverkitError,
    SignatureError,
    WebhookError,
    WireValidationError,
)
from recoverkit.plugins import Plugins
from recoverkit.provider import Provider, WebhookRequest
from recoverkit.sandbox.commands import add_simulation_commands, sandbox_app
from recoverkit.sandbox.server.commands import add_server_commands
from recoverkit.schema import WIRE_MESSAGES, field_path
from recoverkit.service.commands import add_service_commands

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_SIGNATURE = 3

app = typer.Typer(
    name="recoverkit",
    help="Connect payment service providers to Recover.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True, highlight=False)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    stderr.print(f"[bold red]error:[/] {message}", markup=True)
    raise typer.Exit(code)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _settings_error(provider: str, exc: ValidationError) -> str:
    problems = "; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors())
    return f"{provider} settings: {problems}"


@contextmanager
def cli_errors(provider: str = "") -> Iterator[None]:
    """Turn recoverkit's errors into one-line messages and the documented exit codes."""
    prefix = f"{provider}: " if provider else ""
    try:
        yield
    except SignatureError as exc:
        fail(f"{prefix}signature check failed: {_one_line(str(exc))}", EXIT_SIGNATURE)
    except (WebhookError, WireValidationError, ConfigurationError, PluginError) as exc:
        fail(prefix + _one_line(str(exc)))
    except ValidationError as exc:
        fail(_settings_error(provider or "recoverkit", exc))
    except ProviderError as exc:
        fail(prefix + _one_line(str(exc)), EXIT_FAILED)
    except RecoverkitError as exc:
        fail(prefix + _one_line(str(exc)), EXIT_FAILED)
    except Exception as exc:  # a plugin bug must still end in one line, not a traceback
        fail(
            f"{prefix}unexpected {type(exc).__name__}: {_one_line(str(exc))} "
            "(a bug in recoverkit or the plugin; please report it with the webhook's event type)",
            EXIT_FAILED,
        )


def load_plugins() -> Plugins:
    """The installed plugins, or a one-line error."""
    with cli_errors():
        return Plugins()
    raise AssertionError("unreachable")  # pragma: no cover


def parse_header(raw: str) -> tuple[str, str]:
    """``"Name: value"`` → ``("Name", "value")``."""
    name, sep, value = raw.partition(":")
    if not sep or not name.strip() or name.strip() != name.strip().split()[0]:
        fail(f'--header {raw!r} is not of the form "Name: value"')
    return name.strip(), value.strip()


def _guess_content_type(body: bytes) -> str:
    return (
        "application/json"
        if body.lstrip()[:1] in (b"{", b"[")
        else ("application/x-www-form-urlencoded")
    )


@app.command()
def plugins() -> None:
    """List the installed providers: name, distribution, version and capabilities."""
    registry = load_plugins()
    table = Table(title="recoverkit providers", title_justify="left")
    table.add_column("provider", style="bold cyan")
    table.add_column("distribution")
    table.add_column("version")
    table.add_column("capabilities")
    for name, cls in registry.providers.items():
        origin = registry.origin(name)
        caps = ", ".join(sorted(cap.value for cap in cls.capabilities))
        table.add_row(
            name,
            origin.distribution if origin else cls.__module__,
            origin.version if origin else "-",
            caps,
        )
    if not registry.providers:
        stdout.print("no providers installed (pip install recoverkit-stripe, …)")
        return
    stdout.print(table)


def build_provider(
    registry: Plugins, name: str, *, secret: str | None = None, config: Path | None = None
) -> Provider:
    """Provider ``name`` configured like the service: ``[providers.<name>]`` of the TOML file,
    then ``RECOVERKIT_<NAME>_*`` variables; ``secret`` replaces the webhook secrets."""
    with cli_errors(name):
        overrides = provider_overrides(load_settings(config), name)
        return registry.create_provider(name, secret=secret, **overrides)
    raise AssertionError("unreachable")  # pragma: no cover


@app.command()
def translate(
    provider: Annotated[str, typer.Argument(help="Provider name, e.g. stripe.")],
    file: Annotated[Path, typer.Argument(help="Raw webhook body as the PSP sent it; - for stdin.")],
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help='A request header, "Name: value"; repeatable.'),
    ] = None,
    secret: Annotated[
        str | None, typer.Option(help="Webhook secret to verify with (else from settings).")
    ] = None,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Skip the signature check.")
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(help="recoverkit.toml (default: $RECOVERKIT_CONFIG or ./recoverkit.toml)."),
    ] = None,
) -> None:
    """Verify a raw PSP webhook and print the Recover messages it becomes, one JSON per line."""
    if secret is not None and no_verify:
        fail("--secret and --no-verify exclude each other")
    try:
        body = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    headers = dict(parse_header(h) for h in header or [])
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = _guess_content_type(body)
    registry = load_plugins()
    instance = build_provider(registry, provider, secret=secret, config=config)
    request = WebhookRequest(body, headers)
    with cli_errors(provider):
        if not no_verify:
            instance.verify(request)
        events = instance.parse(request)
        if not events:
            raise MalformedWebhookError("the webhook holds no event")
        lines = [line for event in events for line in instance.translate(event).to_json_lines()]
    for line in lines:
        sys.stdout.write(line + "\n")


@app.command()
def schema(
    out: Annotated[Path, typer.Option(help="Folder to write one JSON Schema file per message.")],
) -> None:
    """Write the JSON Schema of every Recover wire message."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, model in WIRE_MESSAGES.items():
            target = out / f"{name}.schema.json"
            document = {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                **model.model_json_schema(mode="validation"),
            }
            target.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write to {out}: {exc.strerror or exc}")
    stdout.print(f"wrote {len(WIRE_MESSAGES)} schemas to {out}")


app.command()(demo)
add_service_commands(app)
add_simulation_commands(app)
add_server_commands(sandbox_app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``recoverkit`` script."""
    registry: Plugins | None
    try:
        registry = Plugins()
    except PluginError as exc:
        # Plugin commands cannot be added, but `recoverkit plugins` etc. should still explain.
        stderr.print(f"[bold red]error:[/] {_one_line(str(exc))}")
        registry = None
    if registry is not None:
        registry.register_commands(app)
    command: Callable[..., object] = typer.main.get_command(app)
    try:
        command(args=argv, prog_name="recoverkit", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_FAILED
    return EXIT_OK
