"""Benchmark: start-up of the ``recoverkit`` command against ``python -c pass`` (issue 15 item 4).

Sides, each a fresh process run to completion; the measure is the child's CPU time (user +
system, from ``RUSAGE_CHILDREN``) per run, the median of the runs in a round:

- floor:     ``python -c pass`` with the same interpreter;
- plugins:   ``recoverkit plugins --json`` (discovers and imports every installed plugin);
- translate: ``recoverkit translate stripe <sample> --no-verify --offline`` (a payment-method
             update: parse, translate and print, no API);
- help:      ``recoverkit --help`` (lists every command, so it imports the service and sandbox
             modules too: for reference only).

Rounds are interleaved (the order rotates each round, as ``_harness.interleave`` does); each ratio
is taken per round and reported as median and min-max by ``_harness.ratio``. Target:
``plugins`` and ``translate`` take at most 25x the floor.

    .venv/bin/python bench/bench_startup.py [--rounds 7] [--seconds 0.3] [--load-plugins stripe]

``--load-plugins`` sets ``RECOVERKIT_LOAD_PLUGINS`` for the recoverkit sides (default: every
installed plugin, as a user with ``recoverkit[all]`` has): with ``stripe`` it measures what a
``recoverkit[stripe]`` install pays.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import time
from importlib.resources import files
from pathlib import Path

from _harness import Spread, arguments, ratio

PYTHON = sys.executable
RECOVERKIT = str(Path(sys.executable).with_name("recoverkit"))
SAMPLE = str(files("recoverkit_stripe") / "samples" / "payment_method.automatically_updated.json")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERKIT_")}
TARGET = 25.0


Command = tuple[tuple[str, ...], dict[str, str]]


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_per_run(command: Command, seconds: float) -> float:
    """Median CPU seconds (user + system) of one run of ``command``, over runs filling about
    ``seconds`` of wall time (at least three)."""
    argv, env = command
    samples: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(samples) < 3 or time.perf_counter() < deadline:
        before = _child_cpu()
        subprocess.run(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
        )
        samples.append(_child_cpu() - before)
    return statistics.median(samples)


def _interleave_cpu(sides: dict[str, Command], *, rounds: int, seconds: float) -> dict[str, Spread]:
    """Like ``_harness.interleave``, but the measure is the child processes' CPU time per run:
    the scheduler's time given to other processes is not billed to a start-up."""
    names = list(sides)
    for command in sides.values():  # warm the page cache and any .pyc writes outside the measure
        _cpu_per_run(command, 0)
    values: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            values[name].append(_cpu_per_run(sides[name], seconds))
    return {name: Spread(tuple(v)) for name, v in values.items()}


def main() -> None:
    args = arguments(
        __doc__,
        extra=lambda parser: parser.add_argument(
            "--load-plugins", default=None, help="RECOVERKIT_LOAD_PLUGINS for the recoverkit sides"
        ),
    )
    env = dict(ENV)
    if args.load_plugins is not None:
        env["RECOVERKIT_LOAD_PLUGINS"] = args.load_plugins
    floor_name = "floor (python -c pass)"
    sides: dict[str, Command] = {
        floor_name: ((PYTHON, "-c", "pass"), ENV),
        "recoverkit plugins --json": ((RECOVERKIT, "plugins", "--json"), env),
        "recoverkit translate --offline": (
            (RECOVERKIT, "translate", "stripe", SAMPLE, "--no-verify", "--offline"),
            env,
        ),
        "recoverkit --help": ((RECOVERKIT, "--help"), env),
    }
    results = _interleave_cpu(sides, rounds=args.rounds, seconds=args.seconds)
    width = max(len(name) for name in results)
    for name, spread in results.items():
        print(
            f"{name:<{width}}  {spread.median * 1000:8.1f} ms CPU per run  "
            f"(min {spread.low * 1000:.1f}, max {spread.high * 1000:.1f}; "
            f"{len(spread.values)} rounds)"
        )
    floor = results[floor_name]
    lines = [
        ratio("help/floor", results["recoverkit --help"], floor, target=None, unit="x"),
        ratio(
            "translate/floor",
            results["recoverkit translate --offline"],
            floor,
            target=TARGET,
            unit="x",
            higher_is_better=False,
        ),
        ratio(
            "plugins/floor",
            results["recoverkit plugins --json"],
            floor,
            target=TARGET,
            unit="x",
            higher_is_better=False,
        ),
    ]
    for line in lines:
        print(line.line())


if __name__ == "__main__":
    main()
