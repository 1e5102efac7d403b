"""The bounds every circuit is held to, checked before anything large is allocated.

A circuit is resampled every 0.25 m, smoothed, searched for overlaps and, in the simulator, covered
by a lookup grid over its bounding box: memory and time grow with the lap length and the number of
points, so a typo in a scale (``1e4`` for ``1:4``) or a file in the wrong unit would otherwise run
for minutes and end in a ``MemoryError``. These limits refuse such input at once, each refusal
naming the limit, the value and what to do.

The limits leave room far above anything real: the shipped circuits have at most ~2,000 control
points and laps up to ~2 km, the TUMFTM database's full-size tracks ~1,200 points, laps up to
~6 km and at most 14 m from the centre line to a wall.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from simeval.errors import CircuitError

CAR_WIDTH_M = 0.5
"""The car's width: ``simeval.sim.vehicle.VehicleConfig.width_m``, repeated here because the track
layer may not import the simulator (``tests/test_circuit.py`` keeps the two equal)."""
SIDE_MARGIN_M = 0.25
"""Room the car needs on each side of itself when its centre is on the centre line."""
MIN_HALF_WIDTH_M = CAR_WIDTH_M / 2 + SIDE_MARGIN_M
"""Narrowest distance from the centre line to a wall (m): a narrower road ends a lap at step 0."""
MAX_HALF_WIDTH_M = 25.0
"""Widest distance from the centre line to a wall (m): real tracks have at most ~15 m; the overlap
check compares every vertex with all others within the road's width, so width costs time."""

MIN_LAP_M = 10.0
"""Shortest lap (m): ten car lengths; anything smaller is a file in the wrong unit or a slip of scale."""
MAX_LAP_M = 10_000.0
"""Longest lap (m): real race tracks are under 10 km (the longest of the TUMFTM database is
~6 km); the simulator's lookup grid covers the bounding box at 0.25 m, so memory grows with the
square of the size."""
TYPICAL_LAP_M = 1000.0
"""The lap a refusal suggests scaling to: the size of the shipped circuits."""

MAX_POINTS = 100_000
"""Most rows in a circuit or TUMFTM file: 50 times the largest shipped circuit, a 10 km lap with a
point every 0.1 m."""
MAX_FILE_BYTES = 64 * 2**20
"""Largest file read (bytes): far beyond ``MAX_POINTS`` rows, so a wrong file is refused before reading it."""

SCALE_RANGE = (1e-4, 1e4)
"""Smallest and largest scale factor: millimetres to metres either way, with room."""


def check_point_count(count: int, where: str) -> None:
    """Refuse more rows than ``MAX_POINTS`` (before they are parsed)."""
    if count > MAX_POINTS:
        raise CircuitError(
            f"{where}: {count:,} rows, more than the limit of {MAX_POINTS:,}; "
            "resample the track to fewer points (one every 0.5-5 m is plenty)"
        )


def check_file_size(size: int, where: str) -> None:
    """Refuse a file far larger than any circuit, before reading it."""
    if size > MAX_FILE_BYTES:
        raise CircuitError(
            f"{where}: the file is {size / 2**20:,.0f} MiB, more than the limit of {MAX_FILE_BYTES / 2**20:.0f} MiB "
            f"(a circuit has at most {MAX_POINTS:,} rows); is this the right file?"
        )


def check_scale(scale: float, shown: str = "") -> None:
    """Refuse a scale outside ``SCALE_RANGE``; ``shown`` is the scale as the user wrote it."""
    low, high = SCALE_RANGE
    if not low <= scale <= high:
        raise CircuitError(
            f"scale {shown or f'{scale:g}'} is outside the limits {low:g} to {high:g}; "
            "give a factor like 0.33 or a ratio like 1:3.03"
        )


def check_lap_length(lap_m: float, where: str, fix: str = "") -> None:
    """Refuse a lap outside ``MIN_LAP_M`` .. ``MAX_LAP_M``; ``fix`` says what to do instead."""
    if MIN_LAP_M <= lap_m <= MAX_LAP_M:
        return
    bound = f"shorter than the limit of {MIN_LAP_M:g} m" if lap_m < MIN_LAP_M else f"longer than the limit of {MAX_LAP_M:,.0f} m"
    raise CircuitError(f"{where}: the lap is {lap_m:,.4g} m, {bound}; {fix or 'is the file in metres?'}")


def check_half_widths(rows: NDArray[np.float64], where: str, fix: str = "") -> None:
    """Refuse a control row whose wall is nearer than ``MIN_HALF_WIDTH_M`` or further than
    ``MAX_HALF_WIDTH_M`` from the centre line; ``rows`` are (M, 4) = x, y, w_right, w_left."""
    widths = rows[:, 2:4]
    for bad, bound in ((widths < MIN_HALF_WIDTH_M, "narrower"), (widths > MAX_HALF_WIDTH_M, "wider")):
        if bad.any():
            r, c = np.argwhere(bad)[0]
            raise CircuitError(
                f"{where}: data row {r + 1}: the {('right', 'left')[c]} wall is {widths[r, c]:.4g} m from the centre line, "
                f"{bound} than the limit of {_limit_text(bound)}; {fix or 'fix the widths of that row'}"
            )


def check_road_width(road_width_m: float) -> None:
    """Refuse a constant road width (``--road-width``) outside twice the half-width limits."""
    low, high = 2 * MIN_HALF_WIDTH_M, 2 * MAX_HALF_WIDTH_M
    if low <= road_width_m <= high:
        return
    if road_width_m > high:
        raise CircuitError(f"road width {road_width_m:g} m: the limit is {high:g} m; pass --road-width {high:g} or less")
    raise CircuitError(
        f"road width {road_width_m:g} m: it must be at least {low:g} m (the {CAR_WIDTH_M:g} m car plus "
        f"{SIDE_MARGIN_M:g} m each side); pass --road-width {low:g} or more"
    )


def _limit_text(bound: str) -> str:
    if bound == "narrower":
        return f"{MIN_HALF_WIDTH_M:g} m (half the {CAR_WIDTH_M:g} m car plus {SIDE_MARGIN_M:g} m)"
    return f"{MAX_HALF_WIDTH_M:g} m"
