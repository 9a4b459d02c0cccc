"""CLI commands: ``recoverkit simulate`` and ``recoverkit sandbox train``.

``sandbox_app`` is the ``recoverkit sandbox`` sub-app; the sandbox server's commands are added to
the same object. The lead wires :func:`add_simulation_commands` into ``recoverkit.cli``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from recoverkit.rules import NetworkRules
from recoverkit.sandbox.policies import POLICY_NAMES, RetryPolicy, build_policy

# numpy, scikit-learn and matplotlib (the ``sandbox`` extra) load when a command runs, not when
# the ``recoverkit`` CLI starts.
if TYPE_CHECKING:
    from recoverkit.sandbox.policies.learned import ModelMetrics, SuccessModel

TRAINING_SEED_OFFSET = 10_000
"""Models trained inside ``simulate`` use worlds seeded far from the evaluated ones."""

sandbox_app = typer.Typer(
    name="sandbox",
    help="The local Recover sandbox: retry decisions, scheduler and webhooks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
# Tables are wide: keep them readable when the output is a pipe or a file (rich's default is 80).
_out = Console() if Console().is_terminal else Console(width=220)
_err = Console(stderr=True, soft_wrap=True, highlight=False)


def _fail(message: str) -> typer.Exit:
    _err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(2)


def _visa_rules(visa_reattempts: int) -> NetworkRules:
    try:
        return NetworkRules(visa_reattempts_per_30_days=visa_reattempts)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def metrics_table(metrics: ModelMetrics, title: str) -> Table:
    """Held-out model metrics as a table."""
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("retries for training / held out", f"{metrics.train_rows:,} / {metrics.test_rows:,}"),
        ("held-out approval rate", f"{metrics.test_approval_rate:.3f}"),
        ("AUC", f"{metrics.auc:.3f}"),
        ("log-loss", f"{metrics.log_loss:.4f}"),
        ("log-loss of a constant predictor", f"{metrics.constant_log_loss:.4f}"),
        ("Brier score", f"{metrics.brier:.4f}"),
        ("calibration error (10 bins)", f"{metrics.calibration_error:.4f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def simulate(
    invoices: Annotated[int, typer.Option(min=1, help="Failed invoices per seed.")] = 20_000,
    seeds: Annotated[int, typer.Option(min=1, help="How many seeded worlds to run.")] = 1,
    seed: Annotated[int, typer.Option(help="The first seed.")] = 0,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", "-p", help=f"Policies to compare ({', '.join(POLICY_NAMES)})."),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(help="A model from `recoverkit sandbox train`; default: train one now."),
    ] = None,
    train_invoices: Annotated[
        int, typer.Option(min=100, help="Invoices of the training world when no --model.")
    ] = 20_000,
    chart: Annotated[Path, typer.Option(help="Where to write the PNG chart.")] = Path(
        "recoverkit-simulation.png"
    ),
    visa_reattempts: Annotated[
        int, typer.Option(help="Visa reattempts per 30 days (15 default, Visa allows 20).")
    ] = 15,
    families: Annotated[
        int,
        typer.Option(
            min=0,
            help="Judge on N held-out world families (0 … N-1) instead of the default world: "
            "each policy's lift over fixed per family, the mean and the worst.",
        ),
    ] = 0,
    train_families: Annotated[
        int,
        typer.Option(min=1, help="Training families the learned model is fitted on (--families)."),
    ] = 4,
    holdout: Annotated[
        float, typer.Option(help="Holdout share credited to fixed for the uplift CI (--families).")
    ] = 0.1,
) -> None:
    """Compare retry policies on a seeded synthetic world of failed renewals."""
    from recoverkit.sandbox.simulator.report import pool, results_table, write_chart
    from recoverkit.sandbox.simulator.run import simulate as run_simulation
    from recoverkit.sandbox.simulator.training import train_on_simulation
    from recoverkit.sandbox.simulator.world import WorldConfig

    names = policy or list(POLICY_NAMES)
    unknown = [n for n in names if n not in POLICY_NAMES]
    if unknown:
        raise _fail(f"unknown policy {unknown[0]!r}; choose from {', '.join(POLICY_NAMES)}")
    rules = _visa_rules(visa_reattempts)
    if families:
        if not 0 < holdout < 1:
            raise _fail("--holdout must be between 0 and 1")
        _simulate_families(
            names, families, invoices, range(seed, seed + seeds), model, train_families,
            train_invoices, rules, holdout,
        )  # fmt: skip
        return
    config = WorldConfig(invoices=invoices, seed=seed)
    learned_model: SuccessModel | None = None
    if "learned" in names:
        if model is not None:
            learned_model = _load_model(model)
        else:
            train_config = replace(
                config, invoices=train_invoices, seed=TRAINING_SEED_OFFSET + seed
            )
            _out.print(
                f"training the learned model on a separate world "
                f"(seed {train_config.seed}, {train_invoices:,} invoices) ..."
            )
            learned_model, metrics = train_on_simulation(train_config, rules=rules)
            _out.print(metrics_table(metrics, "learned model, held-out metrics"))
    policies = [build_policy(n, model=learned_model, rules=rules) for n in names]
    started = time.perf_counter()
    with _out.status("simulating ...") as status:
        results = run_simulation(
            policies,
            config,
            range(seed, seed + seeds),
            rules=rules,
            progress=lambda s, n: status.update(f"simulating seed {s}, policy {n} ..."),
        )
    elapsed = time.perf_counter() - started
    pooled = [pool(results[n]) for n in names]
    _out.print(results_table(pooled))
    total = invoices * seeds * len(names)
    _out.print(f"{total:,} invoice runs in {elapsed:.1f} s ({total / elapsed:,.0f} invoices/s)")
    write_chart(pooled, chart)
    _out.print(f"chart: {chart}")
    if any(p.violations for p in pooled):
        _err.print("[bold red]network-rule violations found[/]")
        raise typer.Exit(1)


def _load_model(model: Path) -> SuccessModel:
    from recoverkit.sandbox.policies.learned import SuccessModel

    try:
        return SuccessModel.load(model)
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot load model {model}: {exc}") from None


def _simulate_families(
    names: list[str],
    families: int,
    invoices: int,
    seeds: range,
    model: Path | None,
    train_families: int,
    train_invoices: int,
    rules: NetworkRules,
    holdout: float,
) -> None:
    """``simulate --families N``: lift per held-out family, the mean and the worst."""
    from recoverkit.sandbox.simulator.families import run_families
    from recoverkit.sandbox.simulator.report import family_table

    if "fixed" not in names:
        names = ["fixed", *names]
    learned_model: SuccessModel | None = None
    if "learned" in names:
        if model is not None:
            learned_model = _load_model(model)
        else:
            from recoverkit.sandbox.simulator.training import train_on_families

            _out.print(
                f"training the learned model on {train_families} training families "
                f"({train_invoices:,} invoices in all) ..."
            )
            learned_model, metrics = train_on_families(
                train_families, invoices=train_invoices, rules=rules
            )
            _out.print(metrics_table(metrics, "learned model, held-out metrics"))

    def factory(name: str) -> Callable[[], RetryPolicy]:
        return lambda: build_policy(name, model=learned_model, rules=rules)

    factories = {n: factory(n) for n in names}
    started = time.perf_counter()
    with _out.status("simulating ...") as status:
        results = run_families(
            factories,
            range(families),
            invoices=invoices,
            seeds=seeds,
            rules=rules,
            holdout_share=holdout,
            progress=lambda f, s, n: status.update(f"family {f}, seed {s}, policy {n} ..."),
        )
    elapsed = time.perf_counter() - started
    _out.print(family_table(results, names, holdout))
    total = invoices * len(seeds) * len(names) * families
    _out.print(f"{total:,} invoice runs in {elapsed:.1f} s ({total / elapsed:,.0f} invoices/s)")
    if any(r.summaries[n].violations for r in results for n in names):
        _err.print("[bold red]network-rule violations found[/]")
        raise typer.Exit(1)


@sandbox_app.command()
def train(
    out: Annotated[Path, typer.Option(help="Where to write the model.")] = Path(
        "recoverkit-model.pkl"
    ),
    invoices: Annotated[int, typer.Option(min=100, help="Invoices of the history.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the history.")] = TRAINING_SEED_OFFSET,
    holdout: Annotated[float, typer.Option(help="Share of invoices held out.")] = 0.25,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="Train on a sandbox's stored retries (e.g. sqlite:///recoverkit-sandbox.db) "
            "instead of a simulated history."
        ),
    ] = None,
) -> None:
    """Fit the learned policy's model and report held-out metrics.

    The history is the sandbox's stored retries (``--database-url``), or else a simulated one
    (the exploration policy on a seeded world). The model file is a pickle: load only files you
    wrote.
    """
    if not 0 < holdout < 1:
        raise _fail("--holdout must be between 0 and 1")
    if database_url is not None:
        from datetime import timedelta

        from recoverkit.sandbox.policies.learned import train_success_model
        from recoverkit.sandbox.server.dunning import DunningBook
        from recoverkit.sandbox.server.training import examples_from_sandbox
        from recoverkit.store.engine import make_engine

        book = DunningBook(make_engine(database_url), dunning_window=timedelta(days=30))
        examples = examples_from_sandbox(book)
        approved = sum(e.approved for e in examples)
        if len({e.context.invoice_id for e in examples}) < 20 or approved in (0, len(examples)):
            raise _fail(
                f"the sandbox at {database_url} holds {len(examples)} finished retries "
                f"({approved} approved) — too few to fit and hold out; let it run longer, or "
                "train on a simulated history (omit --database-url)"
            )
        try:
            model, metrics = train_success_model(examples, holdout=holdout, seed=seed)
        except ValueError as exc:
            raise _fail(str(exc)) from None
    else:
        from recoverkit.sandbox.simulator.training import train_on_simulation
        from recoverkit.sandbox.simulator.world import WorldConfig

        config = WorldConfig(invoices=invoices, seed=seed)
        model, metrics = train_on_simulation(config, holdout=holdout)
    _out.print(metrics_table(metrics, f"held-out metrics ({holdout:.0%} of invoices)"))
    try:
        model.save(out)
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc}") from None
    _out.print(f"model: {out}")


@sandbox_app.command()
def uplift(
    database_url: Annotated[
        str, typer.Option(help="The sandbox's database (e.g. sqlite:///recoverkit-sandbox.db).")
    ],
    holdout_share: Annotated[
        float, typer.Option(help="The holdout share the sandbox ran with.")
    ] = 0.1,
) -> None:
    """Recovered-revenue uplift of the sandbox's policy over its holdout, with a 95 % CI.

    Over the invoices whose dunning has ended; the holdout (``RECOVERKIT_SANDBOX_HOLDOUT_SHARE``)
    is recomputed from the invoice ids.
    """
    if not 0 < holdout_share < 1:
        raise _fail("--holdout-share must be between 0 and 1")
    from datetime import timedelta

    from recoverkit.sandbox.server.dunning import DunningBook
    from recoverkit.sandbox.server.training import uplift_from_sandbox
    from recoverkit.store.engine import make_engine

    try:
        book = DunningBook(make_engine(database_url), dunning_window=timedelta(days=30))
        results = uplift_from_sandbox(book, share=holdout_share)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    table = Table(title=f"Holdout uplift ({holdout_share:.0%} of invoices on the baseline)")
    for header in ("currency", "treated / holdout invoices", "recovered (treated)",
                   "recovered (holdout)", "uplift [95 % CI]"):  # fmt: skip
        table.add_column(header, justify="right")
    for r in results:
        u = r.uplift
        table.add_row(
            r.currency,
            f"{u.treated_invoices:,} / {u.holdout_invoices:,}",
            f"{u.treated_recovered:,} of {u.treated_at_risk:,}",
            f"{u.holdout_recovered:,} of {u.holdout_at_risk:,}",
            u.describe(),
        )
    _out.print(table)
    if not results:
        _out.print("no invoice has finished dunning yet")


def train_from_store(
    from_store: Annotated[
        str,
        typer.Option(
            "--from-store",
            help="The bridge's DATABASE_URL (what the bridge and `recoverkit backfill` stored).",
        ),
    ],
    out: Annotated[Path, typer.Option(help="Where to write the model.")] = Path(
        "recoverkit-model.pkl"
    ),
    holdout: Annotated[float, typer.Option(help="Share of invoices held out.")] = 0.25,
    seed: Annotated[int, typer.Option(help="Seed of the hold-out split.")] = 0,
    dunning_window_days: Annotated[
        int, typer.Option(min=1, help="Attempts this long after the first failure count.")
    ] = 30,
) -> None:
    """Fit the learned policy's model on the merchant's own history in the bridge's store.

    Every retry after a failed charge — the PSP's own retries (Stripe Smart Retries, Braintree
    and Adyen retry attempts) included — becomes an example as of just before it. Prints the
    held-out metrics; the model file is a pickle: load only files you wrote.
    """
    if not 0 < holdout < 1:
        raise _fail("--holdout must be between 0 and 1")
    from datetime import timedelta

    from sqlalchemy.exc import SQLAlchemyError

    from recoverkit.sandbox.history import examples_from_bridge
    from recoverkit.sandbox.policies.learned import train_success_model
    from recoverkit.store.engine import make_engine

    try:
        engine = make_engine(from_store)
        history = examples_from_bridge(engine, dunning_window=timedelta(days=dunning_window_days))
    except (SQLAlchemyError, ValueError) as exc:
        raise _fail(f"cannot read the bridge store at --from-store: {exc}") from None
    examples = history.examples
    approved = sum(e.approved for e in examples)
    _out.print(
        f"{history.payment_events:,} payment events, {history.invoices_in_dunning:,} invoices "
        f"that failed, {len(examples):,} retries ({approved:,} approved), "
        f"{history.skipped_messages:,} messages skipped"
    )
    if len({e.context.invoice_id for e in examples}) < 20 or approved in (0, len(examples)):
        raise _fail(
            f"the bridge store holds {len(examples)} retries ({approved} approved) — too few to "
            "fit and hold out; run `recoverkit backfill` or let the bridge run longer"
        )
    try:
        model, metrics = train_success_model(examples, holdout=holdout, seed=seed)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    _out.print(metrics_table(metrics, f"held-out metrics ({holdout:.0%} of invoices)"))
    try:
        model.save(out)
    except OSError as exc:
        raise _fail(f"cannot write {out}: {exc}") from None
    _out.print(f"model: {out}")


def add_simulation_commands(app: typer.Typer) -> None:
    """Add ``simulate``, ``train`` and the ``sandbox`` sub-app (with ``train``) to ``app``."""
    app.command(name="simulate")(simulate)
    app.command(name="train")(train_from_store)
    app.add_typer(sandbox_app, name="sandbox")
