"""How fast does ``recoverkit simulate`` go, and how fast does ``adaptive`` decide?

Targets: 100k simulated invoices in under two minutes; ``adaptive`` decides >= 2,000 invoices/s.

Runs the real 100,000-invoice default world for one policy (``rules`` by default), including the
after-the-fact rules audit that ``simulate`` reports, and prints invoices/s and the ratio to the
target (> 1 means faster than the target). ``--invoices`` runs a smaller population and says that
it extrapolates. ``--decide`` instead times ``adaptive.next_attempts`` alone on the contexts of a
world's first failures (after a warm-up in which it learned from a simulated run), and prints
decisions/s and the ratio to 2,000/s.

    .venv/bin/python bench/bench_simulate.py [--policy rules|fixed|learned|adaptive]
        [--invoices 100000] [--family N] [--decide]
"""

from __future__ import annotations

import argparse
import time

from recoverkit.sandbox.policies import build_policy
from recoverkit.sandbox.simulator import World, WorldConfig, run_policy, summarize
from recoverkit.sandbox.simulator.engine import new_logs
from recoverkit.sandbox.simulator.families import family_config
from recoverkit.sandbox.simulator.training import train_on_simulation

TARGET_INVOICES = 100_000
TARGET_SECONDS = 120.0
TARGET_DECISIONS_PER_S = 2_000.0


def _config(args: argparse.Namespace) -> WorldConfig:
    if args.family is None:
        return WorldConfig(invoices=args.invoices, seed=args.seed)
    return family_config(args.family, invoices=args.invoices, seed=args.seed)


def _decide(args: argparse.Namespace) -> None:
    from recoverkit.sandbox.policies.adaptive import AdaptivePolicy

    policy = AdaptivePolicy()
    warm = World(family_config(1_000, invoices=5_000, seed=args.seed))
    run_policy(warm, policy)  # learns from a whole run first: a warm posterior
    world = World(_config(args))
    contexts = [log.context(log.first_failure_at) for log in new_logs(world)]
    started = time.perf_counter()
    proposals = policy.next_attempts(contexts)
    elapsed = time.perf_counter() - started
    rate = len(proposals) / elapsed
    print(f"adaptive ({policy.observations:,} outcomes learned): {len(proposals):,} decisions")
    print(f"decisions/s: {rate:,.0f} in {elapsed:.2f} s")
    print(
        f"ratio to target ({TARGET_DECISIONS_PER_S:,.0f}/s): {rate / TARGET_DECISIONS_PER_S:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--policy", default="rules", choices=["fixed", "rules", "learned", "adaptive"]
    )
    parser.add_argument("--invoices", type=int, default=TARGET_INVOICES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--family", type=int, default=None, help="a held-out world family")
    parser.add_argument("--decide", action="store_true", help="time adaptive's decisions only")
    args = parser.parse_args()
    if args.decide:
        _decide(args)
        return

    model = None
    if args.policy == "learned":
        started = time.perf_counter()
        model, _ = train_on_simulation(WorldConfig(invoices=20_000, seed=10_000))
        print(f"training (not timed below): {time.perf_counter() - started:.1f} s")
    policy = build_policy(args.policy, model=model)

    started = time.perf_counter()
    world = World(_config(args))
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
