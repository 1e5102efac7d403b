"""Closed polylines: length, uniform resampling and constant-width rows (the self-crossing check is
``simeval.track.crossing``).

Every way of making a circuit (a circuit file, a TUMFTM import, SimpleCircuit's straights and
arcs, a generated loop) hands closed loops of control points around; these are the questions they
all ask of them. Rows are (M, k) arrays with x, y first; the loop closes from the last row to the
first (the first point is not repeated).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def loop_length(xy: NDArray[np.float64]) -> float:
    """Perimeter of a closed polyline (m)."""
    return float(np.hypot(*np.diff(np.vstack([xy, xy[:1]]), axis=0).T).sum())


def resample_loop(rows: NDArray[np.float64], count: int) -> NDArray[np.float64]:
    """``count`` rows at uniform arc length along the periodic spline through ``rows``; row 0 stays.

    ``rows`` is (M, k) with x, y first; the other columns (widths) are interpolated alongside.
    """
    from scipy.interpolate import CubicSpline

    closed = np.vstack([rows, rows[:1]])
    chord = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(closed[:, :2], axis=0).T))])
    spline = CubicSpline(chord, closed, axis=0, bc_type="periodic")
    fine_u = np.linspace(0.0, chord[-1], 8 * count + 1)
    fine = spline(fine_u)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(fine[:, :2], axis=0).T))])
    return spline(np.interp(np.arange(count) * arc[-1] / count, arc, fine_u))


def with_widths(xy: NDArray[np.float64], road_width_m: float) -> NDArray[np.float64]:
    """Control rows (x, y, w_right, w_left) of a road of constant width."""
    return np.column_stack([xy, np.full((len(xy), 2), road_width_m / 2)])

