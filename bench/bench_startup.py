"""Benchmark: start-up of the ``recoverkit`` command against ``python -c pass`` (issue 15 item 4).

Sides, each a fresh process run to completion (wall time; the child's work is the measure):

- floor:     ``python -c pass`` with the same interpreter;
- plugins:   ``recoverkit plugins --json`` (discovers and imports every installed plugin);
- translate: ``recoverkit translate stripe <sample> --no-verify --offline`` (a payment-method
             update: parse, translate and print, no API);
- help:      ``recoverkit --help`` (lists every command, so it imports the service and sandbox
             modules too: for reference only).

Rounds are interleaved (the order rotates each round) through ``_harness.interleave``; each ratio
is taken per round. Target: ``plugins`` and ``translate`` take at most 25x the floor.

    .venv/bin/python bench/bench_startup.py [--rounds 7] [--seconds 0.3] [--load-plugins stripe]

``--load-plugins`` sets ``RECOVERKIT_LOAD_PLUGINS`` for the recoverkit sides (default: every
installed plugin, as a user with ``recoverkit[all]`` has): with ``stripe`` it measures what a
``recoverkit[stripe]`` install pays.
"""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

from _harness import arguments, interleave, ratio, report_rates

PYTHON = sys.executable
RECOVERKIT = str(Path(sys.executable).with_name("recoverkit"))
SAMPLE = str(files("recoverkit_stripe") / "samples" / "payment_method.automatically_updated.json")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERKIT_")}
TARGET = 25.0


def _runner(*argv: str, env: dict[str, str] = ENV):
    def run() -> None:
        subprocess.run(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True
        )

    return run


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
    sides = {
        "floor (python -c pass)": _runner(PYTHON, "-c", "pass"),
        "recoverkit plugins": _runner(RECOVERKIT, "plugins", "--json", env=env),
        "recoverkit translate --offline": _runner(
            RECOVERKIT, "translate", "stripe", SAMPLE, "--no-verify", "--offline", env=env
        ),
        "recoverkit --help": _runner(RECOVERKIT, "--help", env=env),
    }
    results = interleave(sides, rounds=args.rounds, seconds=args.seconds, clock="wall")
    report_rates(results, unit="runs/s")
    floor = results["floor (python -c pass)"]
    # runs/s of the floor over runs/s of the command = the command's time in floors
    lines = [
        ratio("help/floor", floor, results["recoverkit --help"], target=None, unit="x"),
        ratio(
            "translate/floor",
            floor,
            results["recoverkit translate --offline"],
            target=TARGET,
            unit="x",
            higher_is_better=False,
        ),
        ratio(
            "plugins/floor",
            floor,
            results["recoverkit plugins"],
            target=TARGET,
            unit="x",
            higher_is_better=False,
        ),
    ]
    for line in lines:
        print(line.line())


if __name__ == "__main__":
    main()
