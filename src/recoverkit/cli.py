"""The ``recoverkit`` command line (typer + rich).

Exit codes: 0 success; 2 bad input (usage, unreadable file, malformed webhook, unknown provider,
bad settings, a missing optional dependency); 3 signature failure; 1 a PSP or Recover call failed.
Errors are one line on stderr, never a traceback.

Start-up stays small: ``plugins``, ``translate``, ``samples``, ``schema`` and ``demo`` are defined
here; the bridge service's commands (``serve``, ``worker``, ``db`` …) and the sandbox's
(``sandbox``, ``simulate``) are imported only when one of them (or the full ``--help``) is asked
for, so the service stack, the store and the sandbox never load for the light commands.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

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
from recoverkit.facts import FactNotAvailable, FactsFile, FactSource, NoFacts
from recoverkit.plugins import Plugins
from recoverkit.provider import Provider, ProviderEvent, WebhookRequest

__all__ = ["CORE_COMMANDS", "build_app", "main"]  # and ``app``, built on first use

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_SIGNATURE = 3

#: Commands defined in this module; every other command is imported only when asked for.
CORE_COMMANDS = frozenset({"plugins", "translate", "samples", "schema", "demo"})

#: Top-level module of an optional dependency → the extra that installs it.
EXTRAS = {
    "numpy": "sandbox",
    "sklearn": "sandbox",
    "scipy": "sandbox",
    "joblib": "sandbox",
    "matplotlib": "sandbox",
    "psycopg": "postgres",
    "stripe": "stripe",
    "braintree": "braintree",
    "Adyen": "adyen",
}

stdout = Console(soft_wrap=True)
stderr = Console(stderr=True, soft_wrap=True, highlight=False)

#: The registry ``main`` loaded (or the error it raised), reused by the commands it runs.
_loaded: list[Plugins | PluginError] = []


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Print one line to stderr and exit with ``code``."""
    stderr.print(f"[bold red]error:[/] {escape(message)}", markup=True)
    raise typer.Exit(code)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _prefixed(prefix: str, text: str) -> str:
    """``prefix`` + ``text`` unless the message already names the provider (no ``x: x: …``)."""
    line = _one_line(text)
    return line if not prefix or line.startswith(prefix) else prefix + line


def _settings_error(provider: str, exc: ValidationError) -> str:
    from recoverkit.schema import field_path

    problems = "; ".join(f"{field_path(e['loc'])}: {e['msg']}" for e in exc.errors())
    return f"{provider} settings: {problems}"


def missing_extra_message(exc: ModuleNotFoundError) -> str | None:
    """``pip install "recoverkit[<extra>]"`` advice for a missing optional dependency, or None."""
    root = (exc.name or "").partition(".")[0]
    extra = EXTRAS.get(root)
    if extra is None:
        return None
    return f'this needs {root}, which is not installed: pip install "recoverkit[{extra}]"'


@contextmanager
def cli_errors(provider: str = "") -> Iterator[None]:
    """Turn recoverkit's errors into one-line messages and the documented exit codes."""
    prefix = f"{provider}: " if provider else ""
    try:
        yield
    except SignatureError as exc:
        detail = _one_line(str(exc)).removeprefix(prefix)
        fail(f"{prefix}signature check failed: {detail}", EXIT_SIGNATURE)
    except (WebhookError, WireValidationError, ConfigurationError, PluginError) as exc:
        fail(_prefixed(prefix, str(exc)))
    except FactNotAvailable as exc:  # --facts FILE lacks an object: the file is the bad input
        fail(_prefixed(prefix, str(exc)))
    except ValidationError as exc:
        fail(_settings_error(provider or "recoverkit", exc))
    except ProviderError as exc:
        fail(_prefixed(prefix, str(exc)), EXIT_FAILED)
    except RecoverkitError as exc:
        fail(_prefixed(prefix, str(exc)), EXIT_FAILED)
    except ModuleNotFoundError as exc:
        advice = missing_extra_message(exc)
        if advice is None:
            raise
        fail(advice)
    except (RecursionError, UnicodeDecodeError) as exc:  # only hostile input gets these
        fail(
            _prefixed(
                prefix,
                f"bad input ({type(exc).__name__}): the body nests too deeply or is not valid text",
            )
        )
    except Exception as exc:  # a plugin bug must still end in one line, not a traceback
        fail(
            f"{prefix}unexpected {type(exc).__name__}: {_one_line(str(exc))} "
            "(a bug in recoverkit or the plugin; please report it with the webhook's event type)",
            EXIT_FAILED,
        )


def load_plugins() -> Plugins:
    """The installed plugins (loaded once per run), or a one-line error."""
    if _loaded:
        found = _loaded[0]
        if isinstance(found, PluginError):
            fail(_one_line(str(found)))
        return found
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
    start = body.lstrip()[:1]
    if start in (b"{", b"["):
        return "application/json"
    if start == b"<":
        return "application/xml"
    return "application/x-www-form-urlencoded"


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("recoverkit")
        except PackageNotFoundError:  # pragma: no cover - a source tree without an install
            found = "0+unknown"
        stdout.print(f"recoverkit {found}")
        raise typer.Exit(EXIT_OK)


def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Connect payment service providers to Recover."""


# -- plugins --------------------------------------------------------------------------------------


def plugins(
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per provider instead of a table.")
    ] = False,
) -> None:
    """List the installed providers: name, distribution, version and capabilities."""
    registry = load_plugins()
    rows: list[dict[str, Any]] = []
    for name, cls in registry.providers.items():
        origin = registry.origin(name)
        rows.append(
            {
                "provider": name,
                "distribution": origin.distribution if origin else cls.__module__,
                "version": origin.version if origin else None,
                "capabilities": sorted(cap.value for cap in cls.capabilities),
            }
        )
    if as_json:
        for row in rows:
            sys.stdout.write(json.dumps(row) + "\n")
        return
    if not rows:
        stdout.print(
            'no providers installed: pip install "recoverkit[stripe]" (or braintree, adyen, all)',
            markup=False,
        )
        return
    table = Table(title="recoverkit providers", title_justify="left")
    table.add_column("provider", style="bold cyan")
    table.add_column("distribution")
    table.add_column("version")
    table.add_column("capabilities")
    for row in rows:
        table.add_row(
            str(row["provider"]),
            str(row["distribution"]),
            str(row["version"] or "-"),
            ", ".join(row["capabilities"]),
        )
    stdout.print(table)


# -- translate ------------------------------------------------------------------------------------


def build_provider(
    registry: Plugins, name: str, *, secret: str | None = None, config: Path | None = None
) -> Provider:
    """Provider ``name`` configured like the service: ``[providers.<name>]`` of the TOML file,
    then ``RECOVERKIT_<NAME>_*`` variables; ``secret`` replaces the webhook secrets."""
    from recoverkit.config import load_settings, provider_overrides

    with cli_errors(name):
        overrides = provider_overrides(load_settings(config), name)
        return registry.create_provider(name, secret=secret, **overrides)
    raise AssertionError("unreachable")  # pragma: no cover


def _offline_line(event: ProviderEvent, missing: FactNotAvailable) -> str:
    return json.dumps(
        {
            "offline": event.type,
            "dedupe_key": event.dedupe_key,
            "needs": missing.as_dict(),
        }
    )


def translate(
    provider: Annotated[
        str, typer.Argument(help="Provider name, e.g. stripe.", metavar="PROVIDER")
    ],
    file: Annotated[
        Path,
        typer.Argument(help="Raw webhook body as the PSP sent it; - for stdin.", metavar="FILE"),
    ],
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            "-H",
            metavar='"NAME: VALUE"',
            help="A request header; repeatable (pass the PSP's signature header here).",
        ),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(metavar="SECRET", help="Webhook secret to verify with (else from settings)."),
    ] = None,
    no_verify: Annotated[
        bool, typer.Option("--no-verify", help="Skip the signature check.")
    ] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="Call no PSP API: translate with what the webhook carries; an event that needs "
            "more prints what enrichment would have added.",
        ),
    ] = False,
    facts: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Serve the PSP API objects translation needs from this JSON file (no network).",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="recoverkit.toml (default: $RECOVERKIT_CONFIG or ./recoverkit.toml).",
        ),
    ] = None,
) -> None:
    """Verify a raw PSP webhook and print the Recover messages it becomes, one JSON per line."""
    if secret is not None and no_verify:
        fail("--secret and --no-verify exclude each other")
    if offline and facts is not None:
        fail("--offline and --facts exclude each other (--facts FILE already calls no API)")
    try:
        body = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        fail(f"cannot read {file}: {exc.strerror or exc}")
    source: FactSource | None = NoFacts() if offline else None
    if facts is not None:
        with cli_errors():
            source = FactsFile.load(facts)
    headers = dict(parse_header(h) for h in header or [])
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = _guess_content_type(body)
    registry = load_plugins()
    instance = build_provider(registry, provider, secret=secret, config=config)
    instance.facts_source = source
    request = WebhookRequest(body, headers)
    lines: list[str] = []
    skipped = 0
    with cli_errors(provider):
        if not no_verify:
            instance.verify(request)
        events = instance.parse(request)
        if not events:
            raise MalformedWebhookError("the webhook holds no event")
        for event in events:
            try:
                translation = instance.translate(event)
            except FactNotAvailable as exc:
                if not offline:
                    raise
                lines.append(_offline_line(event, exc))
                skipped += 1
                continue
            lines.extend(translation.to_json_lines())
    for line in lines:
        sys.stdout.write(line + "\n")
    if skipped:
        stderr.print(
            f"{provider}: --offline: {skipped} event(s) need API objects the webhook lacks "
            '(see "needs"); pass them with --facts FILE, or drop --offline to fetch them'
        )


# -- samples --------------------------------------------------------------------------------------

_EXTENSIONS = {"json": ".json", "xml": ".xml"}


def _extension(request: WebhookRequest) -> str:
    content_type = (request.header("content-type") or "").lower()
    for marker, extension in _EXTENSIONS.items():
        if marker in content_type:
            return extension
    return ".txt"


def samples(
    provider: Annotated[
        str, typer.Argument(help="Provider name, e.g. stripe.", metavar="PROVIDER")
    ],
    out: Annotated[
        Path, typer.Option(metavar="DIR", help="Folder to write the samples to.")
    ] = Path("samples"),
) -> None:
    """Write a provider's sample webhooks and a facts file of the API objects they refer to.

    For trying ``translate --offline`` / ``--facts`` without a PSP account or network.
    """
    registry = load_plugins()
    with cli_errors(provider):
        instance = registry.provider_class(provider).for_demo()
        requests = instance.sample_webhooks()
        named = []
        for request in requests:
            events = instance.parse(request)
            kind = events[0].type if events else "webhook"
            named.append((kind, request))
        facts = instance.sample_facts()
    if not named:
        fail(f"{provider}: the plugin bundles no sample webhooks")
    folder = out / provider
    written: list[Path] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for kind, request in named:
            stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in kind)
            target = folder / f"{stem}{_extension(request)}"
            counter = 2
            while target in written:
                target = folder / f"{stem}-{counter}{_extension(request)}"
                counter += 1
            target.write_bytes(request.body)
            written.append(target)
        if facts:
            (folder / "facts.json").write_text(json.dumps(facts, indent=2) + "\n", "utf-8")
    except OSError as exc:
        fail(f"cannot write to {folder}: {exc.strerror or exc}")
    for target in written:
        stdout.print(str(target))
    if facts:
        stdout.print(f"{folder / 'facts.json'}  (API objects: translate --facts)")


# -- schema ---------------------------------------------------------------------------------------


def schema(
    out: Annotated[
        Path,
        typer.Option(metavar="DIR", help="Folder to write one JSON Schema file per message."),
    ],
) -> None:
    """Write the JSON Schema of every Recover wire message."""
    from recoverkit.schema import WIRE_MESSAGES

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


# -- demo ---------------------------------------------------------------------------------------


def demo() -> None:
    """Run the whole loop: PSP webhooks → bridge → sandbox → retries → reconciled results."""
    from recoverkit.demo import demo as run_demo

    run_demo()


# -- the application ------------------------------------------------------------------------------


def _add_service_and_sandbox_commands(cli: typer.Typer) -> None:
    """The bridge service's and the sandbox's commands (heavy imports: only when needed)."""
    from recoverkit.sandbox.commands import add_simulation_commands, sandbox_app
    from recoverkit.sandbox.server.commands import add_server_commands
    from recoverkit.service.commands import add_service_commands

    add_service_commands(cli)
    add_simulation_commands(cli)
    if "serve" not in {c.name for c in sandbox_app.registered_commands}:
        add_server_commands(sandbox_app)


def build_app(*, everything: bool = True) -> typer.Typer:
    """The ``recoverkit`` application; ``everything=False`` leaves out the service's and the
    sandbox's commands (and their imports)."""
    cli = typer.Typer(
        name="recoverkit",
        help="Connect payment service providers to Recover.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    cli.callback()(root)
    cli.command()(plugins)
    cli.command()(translate)
    cli.command()(samples)
    cli.command()(schema)
    cli.command()(demo)
    if everything:
        _add_service_and_sandbox_commands(cli)
    return cli


@cache
def _full_app() -> typer.Typer:
    return build_app()


def __getattr__(name: str) -> Any:
    # ``recoverkit.cli.app``: every command, built (and its modules imported) on first use.
    if name == "app":
        return _full_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _hide_type(ctx: object) -> None:
    del ctx


def tidy_help(command: Any) -> None:
    """Show a parameter's type in ``--help`` only where it helps: numbers, paths and choices keep
    theirs; flags show none; text options and arguments show their name (``--host HOST``)."""
    ctx = typer.Context(command)
    params = list(command.params)
    help_option = command.get_help_option(ctx)
    if help_option is not None:
        params.append(help_option)
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        annotation = descriptor.annotation if descriptor is not None else None
        if getattr(param, "is_flag", False):
            if param.metavar is None:
                param.metavar = ""
        elif param.param_type_name == "argument":
            if annotation in (str, Path) or param.metavar is not None:
                param.display_type_rich = _hide_type
        elif param.metavar is None and annotation in (str, list[str]):
            param.metavar = (param.name or "value").upper()
    for sub in getattr(command, "commands", {}).values():
        tidy_help(sub)


def _command_name(argv: list[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg
    return None


def _missing_module(exc: ModuleNotFoundError) -> int:
    advice = missing_extra_message(exc)
    if advice is not None:
        stderr.print(f"[bold red]error:[/] {escape(advice)}")
        return EXIT_BAD_INPUT
    # Not an optional dependency: a broken installation, still said in one line.
    stderr.print(
        f"[bold red]error:[/] {escape(str(exc))}: recoverkit's installation is incomplete; "
        "reinstall it (pip install --force-reinstall recoverkit)"
    )
    return EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``recoverkit`` script."""
    args = sys.argv[1:] if argv is None else list(argv)
    name = _command_name(args)
    light = name in CORE_COMMANDS or (name is None and "--version" in args)
    _loaded.clear()
    registry: Plugins | None = None
    try:
        registry = Plugins()
    except PluginError as exc:
        # Said once, by the command that needs the plugins (see load_plugins).
        _loaded.append(exc)
    else:
        _loaded.append(registry)
    try:
        cli = build_app(everything=not light)
    except ModuleNotFoundError as exc:
        return _missing_module(exc)
    if registry is not None:
        registry.register_commands(cli)
    command: Callable[..., object] = typer.main.get_command(cli)
    tidy_help(command)
    try:
        command(args=args, prog_name="recoverkit", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_FAILED
    except ModuleNotFoundError as exc:
        return _missing_module(exc)
    finally:
        _loaded.clear()
    return EXIT_OK
