"""Read TUMFTM racetrack-database CSVs and convert them into circuits.

The TUMFTM format (github.com/TUMFTM/racetrack-database) is one header line
``# x_m,y_m,w_tr_right_m,w_tr_left_m`` and then one row per centre-line point: position (m) and the
distances to the right and left track edges (m), a closed loop in driving order whose first point
is on the start/finish line. The last point is not repeated.

Conversion scales the loop, optionally replaces the widths by a constant road width, and smooths
the centre line lightly (see ``smooth_loop``): the database's points are about 5 m apart at full
scale, and a plain interpolating spline through them puts curvature spikes at the points (Catalunya
at 1:6.25 gets a 1.64 m bend radius where the real tightest bend is about 2.4 m).

Every problem with a file raises ``CircuitError`` naming the file, the line and what to do.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simeval.errors import CircuitError
from simeval.track.circuit import MIN_POINTS, Circuit, CircuitMeta
from simeval.track.crossing import check_no_self_crossing
from simeval.track.csv_rows import data_lines, parse_rows, quote, read_text
from simeval.track.geometry import loop_length, resample_loop
from simeval.track.limits import (
    MAX_LAP_M,
    MIN_LAP_M,
    TYPICAL_LAP_M,
    check_half_widths,
    check_lap_length,
    check_road_width,
    check_scale,
)

TUMFTM_COLUMNS = ("x_m", "y_m", "w_tr_right_m", "w_tr_left_m")

SMOOTHING_SIGMA_SPACINGS = 1.6
"""Width of the Gaussian that smooths the centre line, in median point spacings of the source file
(8 m for the database's 5 m spacing). Chosen so Catalunya's final chicane at 1:6.25 comes out at the
real ~2.4 m radius instead of the spline's spikes."""

MAX_LAP_CHANGE = 0.005
"""Smoothing cuts corners a little; it is halved until the lap is within this fraction of the
unsmoothed lap."""

CONTROL_SPACING_M = 1.0
"""Distance between the control points written to the circuit file, after scaling (m)."""

DENSE_SPACINGS = 5
"""Dense resampling of the source loop before smoothing, in samples per median point spacing."""

MAX_DENSE_SAMPLES = 100_000
"""Most samples of that dense loop: ten per metre of the longest lap allowed, ten per control point.
Bounds smoothing's time and memory for files of many or crowded points (a median spacing far below
the mean); the shipped tracks need ~6,000."""


# ------------------------------------------------------------------------------------- reading
def read_tumftm(path: str | Path) -> NDArray[np.float64]:
    """Rows ``(M, 4)`` = x, y, w_right, w_left of a TUMFTM CSV, checked line by line.

    Refuses a missing file, a header that is not TUMFTM's, rows that are not four finite numbers,
    widths <= 0, repeated points, fewer than ``MIN_POINTS`` points and a loop that crosses itself.
    A repeated closing point (last == first) is dropped.
    """
    path = Path(path)
    lines = _read_lines(path)
    rows, line_of = _parse_rows(lines, path)
    if len(rows) >= 2 and np.array_equal(rows[0, :2], rows[-1, :2]):
        rows, line_of = rows[:-1], line_of[:-1]
    if len(rows) < MIN_POINTS:
        raise CircuitError(
            f"{path}: a closed track needs at least {MIN_POINTS} points, got {len(rows)}; is this the whole file?"
        )
    _check_distinct(rows, line_of, path)
    check_no_self_crossing(rows[:, :2], f"{path} (data row 1 is line {line_of[0]})")
    return rows


def _read_lines(path: Path) -> list[str]:
    return read_text(path, "no such file; give the path of a TUMFTM-format CSV").splitlines()


def _parse_rows(lines: list[str], path: Path) -> tuple[NDArray[np.float64], list[int]]:
    """Check the header, then parse every data row; also return each row's 1-based file line."""
    first = next(((n, line.strip()) for n, line in enumerate(lines, start=1) if line.strip()), None)
    if first is None:
        raise CircuitError(f"{path}: the file is empty; expected the header '# {','.join(TUMFTM_COLUMNS)}'")
    _check_header(*first, path)
    rows = data_lines(lines[first[0]:], first[0] + 1, path)
    return parse_rows(rows, path, TUMFTM_COLUMNS), [lineno for lineno, _ in rows]


def _check_header(lineno: int, line: str, path: Path) -> None:
    found = tuple(c.strip() for c in line.lstrip("#").split(","))
    if found != TUMFTM_COLUMNS:
        raise CircuitError(
            f"{path}:{lineno}: not a TUMFTM header: expected columns {', '.join(TUMFTM_COLUMNS)}, "
            f"found {quote(', '.join(found))}; a TUMFTM file starts with '# {','.join(TUMFTM_COLUMNS)}'"
        )


def _check_distinct(rows: NDArray[np.float64], line_of: list[int], path: Path) -> None:
    """A point visited twice is a zero-length step or a loop touching itself (which the crossing test,
    looking for segments that cross strictly inside, would not see)."""
    first_line: dict[tuple[float, float], int] = {}
    for (x, y), lineno in zip(rows[:, :2].tolist(), line_of, strict=True):
        key = (round(x, 6), round(y, 6))
        if key in first_line:
            raise CircuitError(f"{path}:{lineno}: repeats the point of line {first_line[key]}; remove one of them")
        first_line[key] = lineno


# ------------------------------------------------------------------------------------- scaling
def parse_scale(value: str | float) -> float:
    """A scale as a factor (``0.33``) or a ratio (``"1:3.03"`` = 1/3.03); must be > 0."""
    text = str(value).strip()
    try:
        if ":" in text:
            num, den = text.split(":")
            scale = float(num) / float(den)
        else:
            scale = float(text)
    except (ValueError, ZeroDivisionError):
        raise CircuitError(f"scale must be a number like 0.33 or a ratio like 1:3.03, got '{value}'") from None
    if not (math.isfinite(scale) and scale > 0):
        raise CircuitError(f"scale must be a finite number > 0, got '{value}'")
    check_scale(scale, f"'{value}'")
    return scale


def scale_label(scale: float) -> str:
    """``1/3.03`` -> ``'1:3.03'``, ``2.5`` -> ``'2.5:1'``, for people reading tables."""
    if scale > 1:
        return f"{round(scale, 3):g}:1"
    return "1:1" if scale == 1 else f"1:{1 / scale:.4g}"


# ------------------------------------------------------------------------------------ smoothing
def smooth_loop(rows: NDArray[np.float64]) -> NDArray[np.float64]:
    """Gaussian-smooth a closed loop of rows (x, y, w_right, w_left); returns it densely sampled.

    The loop is resampled at uniform arc length (``DENSE_SPACINGS`` samples per median point
    spacing, at most ``MAX_DENSE_SAMPLES``) and filtered with a periodic Gaussian of
    ``SMOOTHING_SIGMA_SPACINGS`` spacings, so the start point stays at the start and the loop stays
    closed. A Gaussian cuts corners slightly; if
    the lap would shrink by more than ``MAX_LAP_CHANGE`` the filter is halved until it does not.
    """
    from scipy.ndimage import gaussian_filter1d

    spacing = float(np.median(np.hypot(*np.diff(np.vstack([rows, rows[:1]])[:, :2], axis=0).T)))
    lap = loop_length(rows[:, :2])
    count, per_spacing = max(4 * MIN_POINTS, round(lap / spacing * DENSE_SPACINGS)), DENSE_SPACINGS
    if count > MAX_DENSE_SAMPLES:
        count, per_spacing = MAX_DENSE_SAMPLES, MAX_DENSE_SAMPLES * spacing / lap
    dense = resample_loop(rows, count)
    raw_lap = loop_length(dense[:, :2])
    sigma = SMOOTHING_SIGMA_SPACINGS * per_spacing
    while sigma > 0.5:
        smoothed = gaussian_filter1d(dense, sigma, axis=0, mode="wrap")
        if abs(loop_length(smoothed[:, :2]) / raw_lap - 1) <= MAX_LAP_CHANGE:
            return smoothed
        sigma /= 2
    return dense


# ----------------------------------------------------------------------------------- conversion
def convert_rows(rows: NDArray[np.float64], scale: float, road_width_m: float | None = None) -> NDArray[np.float64]:
    """Smoothed, scaled control points every ~``CONTROL_SPACING_M`` with the road's half widths."""
    smoothed = smooth_loop(rows) * scale
    count = max(MIN_POINTS, round(loop_length(smoothed[:, :2]) / CONTROL_SPACING_M))
    control = resample_loop(smoothed, count)
    if road_width_m is not None:
        control[:, 2:] = road_width_m / 2
    return control


def convert(
    path: str | Path,
    meta: CircuitMeta,
    *,
    road_width_m: float | None = None,
    progress: bool = False,
) -> Circuit:
    """The circuit of a TUMFTM file at ``meta.scale``; a constant ``road_width_m`` replaces the widths.

    Without ``road_width_m`` the file's widths are kept (times the scale). The scaled lap and widths
    are checked against ``simeval.track.limits`` before the loop is smoothed (which allocates with
    the lap's length). Errors in the converted road (overlapping parts, bends tighter than the
    road) name the file and the scale. ``progress`` shows a bar of the steps on stderr.
    """
    from tqdm import tqdm

    path = Path(path)
    if road_width_m is not None:
        check_road_width(road_width_m)
    where = f"{path} at scale {scale_label(meta.scale)}"
    with tqdm(total=3, desc=f"import {path.name}", unit="step", file=sys.stderr, disable=not progress, leave=False) as bar:
        bar.set_postfix_str("reading")
        rows = read_tumftm(path)
        _check_scaled(rows, meta.scale, road_width_m, where)
        bar.update()
        bar.set_postfix_str("smoothing")
        control = convert_rows(rows, meta.scale, road_width_m)
        bar.update()
        bar.set_postfix_str("checking the road")
        circuit = Circuit.from_points(control, meta, where=where)
        bar.update()
    return circuit


def _check_scaled(rows: NDArray[np.float64], scale: float, road_width_m: float | None, where: str) -> None:
    """The lap and (without a constant road width) the walls at ``scale`` are within the limits."""
    raw_lap = loop_length(rows[:, :2])
    check_lap_length(raw_lap * scale, where, f"choose a scale that gives a lap of {MIN_LAP_M:g} to {MAX_LAP_M:,.0f} m, "
                     f"e.g. --scale {scale_label(TYPICAL_LAP_M / raw_lap)} for a lap of {TYPICAL_LAP_M:,.0f} m")
    if road_width_m is None:
        scaled = rows.copy()
        scaled[:, 2:] *= scale
        check_half_widths(scaled, where, "pass --road-width for a road of constant width, or a larger --scale")


def database_source(path: str | Path) -> str:
    """The attribution of a file from the TUMFTM racetrack-database (``circuits/sources/tumftm``)."""
    return f"TUMFTM racetrack-database {Path(path).name} (commit e59595d); centre line from OpenStreetMap contributors"
