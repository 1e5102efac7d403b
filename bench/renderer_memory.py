"""Renderer memory benchmark: does resident memory grow over make/close cycles of the env?

    python bench/renderer_memory.py [--cycles 200] [--circuit simple]

Each cycle makes the env with ``gymnasium.make`` for one renderer, resets it, takes a step and
closes it, as a sweep worker or a test session does many times in one process, then runs a full
garbage collection: without it RSS climbs about 1 MB a cycle for the first 15-20 cycles whatever
the renderer, then stays flat, which would hide a real leak in a short run. Prints, per renderer,
the resident set size (RSS) after a few warm-up cycles (first imports, caches, the heap's first
growth) and after the last cycle, the growth between them, and the growth per cycle leaving out the
single largest jump (a one-off; a leak climbs every cycle). Figures only, no targets asserted: the
test that holds the line is ``tests/faults/test_env_faults.py``. Linux (reads ``/proc/self/statm``).
"""

from __future__ import annotations

import argparse
import gc
import os
from dataclasses import dataclass

import gymnasium
import numpy as np

from simeval import ENV_ID
from simeval.sim.renderer import RENDERERS
from simeval.track.circuit import Circuit

WARMUP_CYCLES = 3
"""Cycles before the baseline: first imports, caches and the heap's first growth."""


def rss_mb() -> float:
    """The resident set size of this process now (MiB)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def cycle(renderer: str, circuit: str | Circuit) -> None:
    """Make the env, reset it, step it once, close it, collect the garbage."""
    env = gymnasium.make(ENV_ID, circuit=circuit, renderer=renderer)
    env.reset(seed=0)
    env.step(np.array([0.2, 0.0], dtype=np.float32))
    env.close()
    del env
    gc.collect()


@dataclass(frozen=True)
class MemoryGrowth:
    """RSS (MiB) after the warm-up and after each measured cycle."""

    baseline_mb: float
    after_mb: list[float]

    @property
    def growth_mb(self) -> float:
        """Growth over the measured cycles."""
        return self.after_mb[-1] - self.baseline_mb

    @property
    def per_cycle_mb(self) -> float:
        """Growth per measured cycle, the largest single jump left out (a one-off)."""
        steps = np.diff([self.baseline_mb, *self.after_mb])
        return float((steps.sum() - steps.max()) / max(len(steps) - 1, 1))


def measure(renderer: str, cycles: int, circuit: str | Circuit = "simple") -> MemoryGrowth:
    """RSS over ``cycles`` make/close cycles of the env with ``renderer``, after ``WARMUP_CYCLES``."""
    for _ in range(WARMUP_CYCLES):
        cycle(renderer, circuit)
    baseline = rss_mb()
    after = []
    for _ in range(cycles):
        cycle(renderer, circuit)
        after.append(rss_mb())
    return MemoryGrowth(baseline, after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=200, help="make/close cycles per renderer (after the warm-up)")
    parser.add_argument("--circuit", default="simple", help="circuit name")
    args = parser.parse_args(argv)
    print(f"{args.cycles} make/reset/step/close cycles of {ENV_ID} on '{args.circuit}' (+{WARMUP_CYCLES} warm-up)")
    print(f"{'renderer':<10} {'warm MiB':>10} {'end MiB':>10} {'growth MiB':>11} {'per cycle MiB':>14}")
    for renderer in RENDERERS:
        m = measure(renderer, args.cycles, args.circuit)
        print(f"{renderer:<10} {m.baseline_mb:>10.1f} {m.after_mb[-1]:>10.1f} {m.growth_mb:>11.1f} {m.per_cycle_mb:>14.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
