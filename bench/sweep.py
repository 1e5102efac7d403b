"""How much of a sweep's time is spent driving: the full CPU matrix, timed.

    python bench/sweep.py [--jobs N] [--agents all] [--circuits all] [-- extra sweep options]

Runs ``python -m simeval.sweep --agents all --circuits all --seeds 1`` into a temporary folder and
prints the sweep's wall time, the laps' own wall time (per run: simulated time / real-time factor,
from summary.csv), the efficiency = sum of lap wall times / (workers x sweep wall time), the peak
memory of one worker, and one digest of every trajectory.csv (to compare two versions' laps).
Timings are noisy on a shared machine: compare within one run of this script.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--agents", default="all")
    parser.add_argument("--circuits", default="all")
    parser.add_argument("extra", nargs="*", help="more sweep options, after --")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="simeval-bench-sweep-") as tmp:
        out = Path(tmp) / "sweep"
        command = [sys.executable, "-m", "simeval.sweep", "--agents", args.agents, "--circuits", args.circuits,
                   "--seeds", "1", "--jobs", str(args.jobs), "--no-plot", "--no-progress", "--out", str(out), *args.extra]
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - started
        if result.returncode not in (0, 2):  # 2: agents that cannot load here (TensorRT without a GPU)
            print(result.stderr, file=sys.stderr)
            return result.returncode
        rows = list(csv.DictReader((out / "summary.csv").open()))
        laps = sum(float(r["simulated_time_s"]) / float(r["real_time_factor"]) for r in rows if r["real_time_factor"])
        digest = hashlib.sha256()
        for path in sorted((out / "runs").glob("*/trajectory.csv")):
            digest.update(path.parent.name.encode() + hashlib.sha256(path.read_bytes()).digest())
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"runs:                {len(rows)} ({args.agents} x {args.circuits}, seeds 1, {args.jobs} workers)")
    print(f"sweep wall time:     {wall:.1f} s")
    print(f"laps' wall time:     {laps:.1f} s in all")
    print(f"efficiency:          {laps / (args.jobs * wall):.2f}  (laps' wall time / (workers x sweep wall time); target >= 0.75)")
    print(f"peak process memory: {peak_mib:.0f} MiB (the largest worker or the sweep itself)")
    print(f"trajectories:        {digest.hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
