"""How fast does ``recoverkit simulate`` go? Target: 100k invoices in under two minutes.

Runs the real 100,000-invoice default world for one policy (``rules`` by default), including the
after-the-fact rules audit that ``simulate`` reports, and prints invoices/s and the ratio to the
target (> 1 means faster than the target). ``--invoices`` runs a smaller population and says that
it extrapolates.

    .venv/bin/python bench/bench_simulate.py [--policy rules|fixed|learned] [--invoices 100000]
"""

from __future__ import annotations

import argparse
import time

from recoverkit.sandbox.policies import build_policy
from recoverkit.sandbox.simulator import World, WorldConfig, run_policy, summarize
from recoverkit.sandbox.simulator.training import train_on_simulation

TARGET_INVOICES = 100_000
TARGET_SECONDS = 120.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="rules", choices=["fixed", "rules", "learned"])
    parser.add_argument("--invoices", type=int, default=TARGET_INVOICES)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    model = None
    if args.policy == "learned":
        started = time.perf_counter()
        model, _ = train_on_simulation(WorldConfig(invoices=20_000, seed=10_000))
        print(f"training (not timed below): {time.perf_counter() - started:.1f} s")
    policy = build_policy(args.policy, model=model)

    started = time.perf_counter()
    world = World(WorldConfig(invoices=args.invoices, seed=args.seed))
    built = time.perf_counter()
    run = run_policy(world, policy)
    simulated = time.perf_counter()
    summary = summarize(run)
    done = time.perf_counter()

    elapsed = done - started
    rate = args.invoices / elapsed
    print(f"policy {args.policy}: {args.invoices:,} invoices, {summary.retries:,} retries")
    print(
        f"world {built - started:.1f} s, simulation {simulated - built:.1f} s, "
        f"summary + rules audit {done - simulated:.1f} s, total {elapsed:.1f} s"
    )
    print(f"violations: {summary.violations}")
    print(f"invoices/s: {rate:,.0f}")
    ratio = rate / (TARGET_INVOICES / TARGET_SECONDS)
    note = "" if args.invoices == TARGET_INVOICES else " (EXTRAPOLATED from a smaller population)"
    print(f"ratio to target (100k in 120 s): {ratio:.2f}x{note}")


if __name__ == "__main__":
    main()
