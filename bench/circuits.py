"""Circuit loading benchmark: the self-crossing check and TUMFTM imports at sizes far past real tracks.

    python bench/circuits.py

Prints the wall time of ``check_no_self_crossing`` on loops of 10k to 1M points, of importing a
100,000-point TUMFTM file (the row limit) and of refusing a 1,000,000-point one. The O(n^2) check
this grid replaced took 2.7 s at 10k points and 22 s at 30k on the 2-core development machine
(about 7 hours extrapolated to 1M); the limits want an import of the largest allowed file within
seconds and a refusal of a bigger one within one second.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import numpy as np

from simeval.errors import CircuitError
from simeval.track.circuit_file import CircuitMeta
from simeval.track.crossing import check_no_self_crossing
from simeval.track.limits import MAX_POINTS
from simeval.track.tumftm import convert

HEADER = "# x_m,y_m,w_tr_right_m,w_tr_left_m"


def wobbly_loop(count: int) -> np.ndarray:
    """A 5-lobed loop ~5 km round: no crossings, so the check has to look everywhere."""
    t = np.linspace(0.0, 2 * math.pi, count, endpoint=False)
    return (1 + 0.1 * np.cos(5 * t))[:, None] * np.column_stack([1000 * np.cos(t), 700 * np.sin(t)])


def write_tumftm(path: Path, count: int) -> Path:
    xy = wobbly_loop(count)[::-1]  # clockwise, as TUMFTM files run
    with path.open("w") as f:
        f.write(HEADER + "\n")
        np.savetxt(f, np.column_stack([xy, np.full((count, 2), 5.0)]), fmt="%.4f", delimiter=",")
    return path


def timed(call) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        call()
        outcome = "ok"
    except CircuitError as exc:
        outcome = f"refused: {str(exc).split(': ', 1)[1][:70]}"
    return time.perf_counter() - start, outcome


def main() -> None:
    print(f"{'what':44} {'wall_s':>8}  outcome")
    for count in (10_000, 30_000, 100_000, 1_000_000):
        xy = wobbly_loop(count)
        seconds, outcome = timed(lambda xy=xy: check_no_self_crossing(xy, "bench"))
        print(f"{f'self-crossing check, {count:,} points':44} {seconds:8.3f}  {outcome}")
    with tempfile.TemporaryDirectory() as tmp:
        for count in (MAX_POINTS, 1_000_000):
            path = write_tumftm(Path(tmp) / f"loop{count}.csv", count)
            seconds, outcome = timed(lambda path=path: convert(path, CircuitMeta("bench")))
            print(f"{f'import of a {count:,}-point TUMFTM file':44} {seconds:8.3f}  {outcome}")


if __name__ == "__main__":
    main()
