"""The one harness every benchmark in ``bench/`` uses: interleaved rounds, medians and spreads.

Rules it enforces (issue 16):

- **Interleaved rounds.** Each round measures every side once, in a rotating order, so a change in
  the machine's load hits all sides of a round alike; a ratio is taken *per round* and the
  benchmark reports the median of those ratios with their min-max.
- **CPU time where the work is CPU-bound** (``clock="cpu"``: this process's CPU time, so time the
  scheduler gives to other processes is not billed to whichever side was running), wall time
  otherwise (``clock="wall"``: servers, networks, databases).
- **The last line** of every benchmark is a ratio line::

      ratio stripe/floor = 31.2% (median, 29.8%-33.0%; target >= 25%) OK

  Several ratio lines may end a benchmark; each has that form and its own verdict.

Command line, shared by every benchmark: ``--rounds N`` (default 7) and ``--seconds S`` (the
seconds each side runs per round, default 0.3), so ``python bench/bench_x.py --rounds 3`` is a
quick look and the defaults are what ``docs/performance.md`` reports.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Ratio",
    "Spread",
    "arguments",
    "interleave",
    "rate",
    "ratio",
    "report_rates",
]

Clock = Literal["cpu", "wall"]
_CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}


def arguments(
    description: str | None = None,
    *,
    rounds: int = 7,
    seconds: float = 0.3,
    argv: Sequence[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The shared command line (``--rounds``, ``--seconds``), plus a benchmark's own options."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--rounds", type=int, default=rounds, help="interleaved rounds")
    parser.add_argument(
        "--seconds", type=float, default=seconds, help="seconds each side runs per round"
    )
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds must be >= 1 and --seconds > 0")
    return args


@dataclass(frozen=True)
class Spread:
    """Median and range of one measure over the rounds."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)


def rate(fn: Callable[[], object], seconds: float, clock: Clock = "cpu") -> float:
    """Calls per second of ``fn`` over about ``seconds`` of ``clock`` time.

    Calls run in batches sized so a batch takes about a hundredth of the period, which keeps
    the clock reads out of the measure; the garbage collector runs before, not during.
    """
    now = _CLOCKS[clock]
    fn()  # a first call outside the measure (lazy imports, caches)
    batch, start = 1, now()
    while True:  # calibrate: grow the batch until it takes about 1 % of the period
        for _ in range(batch):
            fn()
        elapsed = now() - start
        if elapsed >= seconds / 100 or batch >= 1 << 20:
            break
        batch *= 2
        start = now()
    gc.collect()
    calls, start = 0, now()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            fn()
        calls += batch
        end = now()
        if end >= deadline:
            return calls / (end - start)


def interleave(
    sides: Mapping[str, Callable[[], object]],
    *,
    rounds: int,
    seconds: float,
    clock: Clock = "cpu",
) -> dict[str, Spread]:
    """Calls per second of each side, measured once per round, the order rotating each round."""
    names = list(sides)
    results: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(rate(sides[name], seconds, clock))
    return {name: Spread(tuple(values)) for name, values in results.items()}


def report_rates(results: Mapping[str, Spread], unit: str = "/s") -> None:
    """One line per side: median rate and its min-max over the rounds."""
    width = max(len(name) for name in results)
    for name, spread in results.items():
        print(
            f"{name:<{width}}  {spread.median:>12,.0f} {unit}  "
            f"(min {spread.low:,.0f}, max {spread.high:,.0f}; {len(spread.values)} rounds)"
        )


@dataclass(frozen=True)
class Ratio:
    """A ratio taken per round, with the target it is held to."""

    name: str
    spread: Spread
    target: float | None
    unit: Literal["%", "x", ""] = "%"
    higher_is_better: bool = True

    @property
    def ok(self) -> bool:
        if self.target is None:
            return True
        if self.higher_is_better:
            return self.spread.median >= self.target
        return self.spread.median <= self.target

    def _fmt(self, value: float) -> str:
        if self.unit == "%":
            return f"{value:.1%}"
        if self.unit == "x":
            return f"{value:.2f}x"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"

    def line(self) -> str:
        spread = self.spread
        op = ">=" if self.higher_is_better else "<="
        if self.target is None:  # context for the ratios held to a target; never the last line
            return (
                f"ratio {self.name} = {self._fmt(spread.median)} (median, "
                f"{self._fmt(spread.low)}-{self._fmt(spread.high)}; for reference)"
            )
        return (
            f"ratio {self.name} = {self._fmt(spread.median)} (median, "
            f"{self._fmt(spread.low)}-{self._fmt(spread.high)}; target {op} "
            f"{self._fmt(self.target)}) {'OK' if self.ok else 'BELOW'}"
        )


def ratio(
    name: str,
    numerator: Spread | Sequence[float],
    denominator: Spread | Sequence[float] | None = None,
    *,
    target: float | None,
    unit: Literal["%", "x", ""] = "%",
    higher_is_better: bool = True,
) -> Ratio:
    """The per-round ratio ``numerator[i] / denominator[i]`` (or the values themselves when no
    denominator is given, e.g. a growth factor already computed per round)."""
    nums = numerator.values if isinstance(numerator, Spread) else tuple(numerator)
    if denominator is None:
        values = nums
    else:
        dens = denominator.values if isinstance(denominator, Spread) else tuple(denominator)
        if len(nums) != len(dens):
            raise ValueError("numerator and denominator need one value per round each")
        values = tuple(n / d for n, d in zip(nums, dens, strict=True))
    return Ratio(name, Spread(values), target, unit, higher_is_better)
