"""A circuit: the centre line of a closed road, its widths, and the geometry queries on it.

Everything downstream (simulator, camera, metrics, experts) asks the circuit the same few
questions: where is arc length ``s`` (``position``), which way does the road point there
(``heading_at``), how wide is it (``width_at``), and where is a world point relative to the road
(``project`` -> ``(s, d)``). The centre line is kept as a closed polyline resampled at a uniform
``SPACING_M``, so those questions are cheap index arithmetic.

Coordinates are metres in the world frame (x east, y north). ``d`` is positive to the left of the
driving direction. The lap starts at the first point and runs in point order.

Circuits are stored as files in the project's format (``simeval.track.circuit_file``) and found by
name in the catalogue (``simeval.track.catalogue``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simeval.errors import CircuitError
from simeval.track.catalogue import circuit_path
from simeval.track.circuit_file import COLUMNS, CircuitMeta, read_circuit_file, write_circuit_file
from simeval.track.crossing import check_no_self_crossing
from simeval.track.geometry import loop_length
from simeval.track.limits import check_half_widths, check_lap_length, check_point_count

SPACING_M = 0.25
"""Distance between centre-line vertices after resampling (m): fine enough for the camera's
nearest-vertex lookup to stay within a millimetre of the true curve."""

MIN_POINTS = 4
WALL_CLEARANCE_M = 0.2
"""Minimum grass between the walls of two different parts of a road (m)."""


@dataclass(frozen=True, eq=False)
class Circuit:
    """A closed road resampled at ``SPACING_M``; build it with ``from_points`` or ``from_file``."""

    meta: CircuitMeta
    xy: NDArray[np.float64]
    """Centre-line vertices (N, 2), uniformly spaced, the loop closing from the last to the first."""
    w_right: NDArray[np.float64]
    """Distance from the centre line to the right wall at each vertex (m)."""
    w_left: NDArray[np.float64]
    control_points: NDArray[np.float64] = field(repr=False)
    """The (M, 4) rows the circuit was built from; ``save`` writes these back."""

    @property
    def name(self) -> str:
        return self.meta.name

    # ----------------------------------------------------------------------------- construction
    @classmethod
    def from_points(cls, rows: NDArray[np.float64], meta: CircuitMeta, *, where: str = "") -> Circuit:
        """Validate control points ``(M, 4)`` = x, y, w_right, w_left and build the circuit.

        ``where`` names the file in error messages; rows are reported 1-based as data rows.
        Every bound of ``simeval.track.limits`` (rows, lap, widths) is checked before resampling.
        """
        where = where or f"circuit '{meta.name}'"
        rows = _checked_rows(np.asarray(rows, dtype=np.float64), where)
        check_lap_length(loop_length(rows[:, :2]), where)
        check_half_widths(rows, where)
        check_no_self_crossing(rows[:, :2], where)
        xy, w_right, w_left = _resample_closed(rows, SPACING_M)
        circuit = cls(meta=meta, xy=xy, w_right=w_right, w_left=w_left, control_points=rows)
        circuit._check_road(where)
        circuit._check_spawn(where)
        return circuit

    @classmethod
    def from_file(cls, path: str | Path) -> Circuit:
        """Read a circuit file in the project's format (``simeval.track.circuit_file``)."""
        meta, rows = read_circuit_file(path)
        return cls.from_points(rows, meta, where=str(path))

    @classmethod
    def from_name(cls, name: str) -> Circuit:
        """Load a shipped or user-imported circuit by name (``python -m simeval.circuits list``)."""
        return cls.from_file(circuit_path(name))

    def save(self, path: str | Path) -> Path:
        """Write the circuit file whole (temp file + rename), so a crash never leaves half a file."""
        return write_circuit_file(path, self.meta, self.control_points)

    def reversed(self) -> Circuit:
        """The same road driven the other way: points in reverse order, walls swapped sides.

        Named ``<name>-reverse``; it has no spawn pose or reference lap time (those belong to the
        original direction). Data collection uses it to drive both directions.
        """
        rows = self.control_points[::-1][:, [0, 1, 3, 2]]
        rows = np.roll(rows, 1, axis=0)  # keep the start line where it was
        meta = dataclasses.replace(
            self.meta, name=f"{self.meta.name}-reverse", spawn=None, reference_lap_time_s=None,
            notes=(self.meta.notes + "; " if self.meta.notes else "") + "driven in reverse",
        )
        return Circuit.from_points(rows, meta, where=f"circuit '{meta.name}'")

    # ------------------------------------------------------------------------- cached geometry
    @cached_property
    def s(self) -> NDArray[np.float64]:
        """Arc length at each vertex (m), 0 at the start line."""
        seg = np.hypot(*np.diff(self.xy, axis=0).T)
        return np.concatenate([[0.0], np.cumsum(seg)])

    @cached_property
    def length_m(self) -> float:
        """Lap length along the centre line (m)."""
        return float(self.s[-1] + np.hypot(*(self.xy[0] - self.xy[-1])))

    @cached_property
    def tangent(self) -> NDArray[np.float64]:
        """Unit driving direction at each vertex (central difference on the closed loop)."""
        t = np.roll(self.xy, -1, axis=0) - np.roll(self.xy, 1, axis=0)
        return t / np.linalg.norm(t, axis=1, keepdims=True)

    @cached_property
    def normal(self) -> NDArray[np.float64]:
        """Unit normal pointing to the left of the driving direction."""
        return np.stack([-self.tangent[:, 1], self.tangent[:, 0]], axis=1)

    @cached_property
    def heading(self) -> NDArray[np.float64]:
        return np.arctan2(self.tangent[:, 1], self.tangent[:, 0])

    @cached_property
    def curvature(self) -> NDArray[np.float64]:
        """Signed curvature (1/m), positive for left turns."""
        dpsi = np.angle(np.exp(1j * (np.roll(self.heading, -1) - np.roll(self.heading, 1))))
        return dpsi / (2 * SPACING_M)

    @cached_property
    def min_radius_m(self) -> float:
        """Radius of the tightest bend (m)."""
        return float(1.0 / max(np.abs(self.curvature).max(), 1e-12))

    @cached_property
    def _tree(self):
        from scipy.spatial import cKDTree

        return cKDTree(self.xy)

    @property
    def spawn_pose(self) -> tuple[float, float, float]:
        """Where a lap starts: the file's spawn pose, else on the line at s = 0."""
        if self.meta.spawn is not None:
            return tuple(float(v) for v in self.meta.spawn)  # type: ignore[return-value]
        return float(self.xy[0, 0]), float(self.xy[0, 1]), float(self.heading[0])

    # --------------------------------------------------------------------------------- queries
    def _index_frac(self, s: NDArray[np.float64] | float) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        u = np.mod(np.asarray(s, dtype=np.float64), self.length_m) / SPACING_M
        u = np.minimum(u, len(self.xy) - 1e-9)
        i = np.floor(u).astype(np.int64)
        return i, u - i

    def position(self, s: NDArray[np.float64] | float, d: NDArray[np.float64] | float = 0.0) -> NDArray[np.float64]:
        """World point at arc length ``s`` (wrapped to the lap) and lateral offset ``d`` (left +)."""
        i, f = self._index_frac(s)
        j = (i + 1) % len(self.xy)
        f = f[..., None]
        centre = self.xy[i] * (1 - f) + self.xy[j] * f
        normal = self.normal[i] * (1 - f) + self.normal[j] * f
        normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
        return centre + normal * np.asarray(d, dtype=np.float64)[..., None]

    def heading_at(self, s: NDArray[np.float64] | float) -> NDArray[np.float64]:
        """Direction of the road at ``s`` (rad, counter-clockwise from +x)."""
        i, f = self._index_frac(s)
        t = self.tangent[i] * (1 - f[..., None]) + self.tangent[(i + 1) % len(self.xy)] * f[..., None]
        return np.arctan2(t[..., 1], t[..., 0])

    def width_at(self, s: NDArray[np.float64] | float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Distances from the centre line to the (right, left) walls at ``s`` (m)."""
        i, f = self._index_frac(s)
        j = (i + 1) % len(self.xy)
        return self.w_right[i] * (1 - f) + self.w_right[j] * f, self.w_left[i] * (1 - f) + self.w_left[j] * f

    def curvature_at(self, s: NDArray[np.float64] | float) -> NDArray[np.float64]:
        i, _ = self._index_frac(s)
        return self.curvature[i]

    def project(self, xy: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Arc length ``s`` and signed lateral offset ``d`` of world points ``(..., 2)``.

        Uses the nearest vertex, then moves along its tangent, so ``s`` is exact on straights and
        within a fraction of a millimetre on curves.
        """
        xy = np.asarray(xy, dtype=np.float64)
        _, i = self._tree.query(xy)
        rel = xy - self.xy[i]
        t = np.sum(rel * self.tangent[i], axis=-1)
        d = np.sum(rel * self.normal[i], axis=-1) - 0.5 * self.curvature[i] * t * t
        s = np.mod(self.s[i] + t, self.length_m)
        return s, d

    def edges(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Right and left wall lines (N, 2 each), for drawing and for meshing."""
        return self.xy - self.normal * self.w_right[:, None], self.xy + self.normal * self.w_left[:, None]

    def bounding_box(self) -> tuple[float, float]:
        """Width and height (m) of the centre line's axis-aligned bounding box."""
        span = self.xy.max(axis=0) - self.xy.min(axis=0)
        return float(span[0]), float(span[1])

    # ------------------------------------------------------------------------------ validation
    def _check_road(self, where: str) -> None:
        """Refuse roads a car cannot drive: bends tighter than the road is wide, parts that overlap."""
        inner = np.where(self.curvature > 0, self.w_left, self.w_right)
        too_tight = np.abs(self.curvature) * inner >= 0.95
        if too_tight.any():
            k = int(np.argmax(np.abs(self.curvature) * inner))
            raise CircuitError(
                f"{where}: bend at s={self.s[k]:.1f} m (x={self.xy[k, 0]:.1f}, y={self.xy[k, 1]:.1f}) has radius "
                f"{1 / abs(self.curvature[k]):.2f} m, tighter than the road's half width {inner[k]:.2f} m: "
                "scale the circuit up or narrow the road"
            )
        reach = float(np.max(self.w_left + self.w_right)) + WALL_CLEARANCE_M
        pairs = self._tree.query_pairs(r=reach, output_type="ndarray")
        if len(pairs) == 0:
            return
        gap_s = np.abs(self.s[pairs[:, 0]] - self.s[pairs[:, 1]])
        gap_s = np.minimum(gap_s, self.length_m - gap_s)
        dist = np.hypot(*(self.xy[pairs[:, 0]] - self.xy[pairs[:, 1]]).T)
        # Two vertices of the same stretch are close because they are neighbours; two vertices whose
        # distance is much shorter than the road between them belong to different stretches.
        apart = gap_s > max(3.0 * reach, 2.0 * dist.max(initial=0.0))
        if apart.any():
            a, b = pairs[apart][np.argmin(dist[apart])]
            raise CircuitError(
                f"{where}: the road at s={self.s[a]:.1f} m and at s={self.s[b]:.1f} m "
                f"(x={self.xy[a, 0]:.1f}, y={self.xy[a, 1]:.1f}) comes within {np.min(dist[apart]):.2f} m of itself, "
                f"closer than its width plus {WALL_CLEARANCE_M} m of clearance: the walls would overlap; "
                "scale the circuit up or narrow the road"
            )

    def _check_spawn(self, where: str) -> None:
        """Refuse a spawn pose off the road: the car would start in a wall or on the grass."""
        if self.meta.spawn is None:
            return
        x, y, _ = self.meta.spawn
        dist, i = self._tree.query([x, y])
        reach = max(self.w_left[i], self.w_right[i])
        if dist > reach:
            raise CircuitError(
                f"{where}: spawn ({x:.6g}, {y:.6g}) is {dist:,.4g} m from the centre line, off the road "
                f"(walls {reach:.2f} m away); put the spawn on the road, or null to start on the line"
            )


# ------------------------------------------------------------------------------- validation
def _checked_rows(rows: NDArray[np.float64], where: str) -> NDArray[np.float64]:
    """Reject too few, non-finite and non-positive-width rows; drop a repeated closing point."""
    if rows.ndim != 2 or rows.shape[1] != 4:
        raise CircuitError(f"{where}: expected rows of 4 values ({','.join(COLUMNS)}), got shape {rows.shape}")
    if len(rows) >= 2 and np.allclose(rows[0, :2], rows[-1, :2]):
        rows = rows[:-1]
    if len(rows) < MIN_POINTS:
        raise CircuitError(f"{where}: a closed circuit needs at least {MIN_POINTS} points, got {len(rows)}; add its rows")
    check_point_count(len(rows), where)
    bad = ~np.isfinite(rows)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise CircuitError(f"{where}: data row {r + 1}, column {COLUMNS[c]}: value is {rows[r, c]} (must be a finite number)")
    nonpositive = rows[:, 2:] <= 0
    if nonpositive.any():
        r, c = np.argwhere(nonpositive)[0]
        raise CircuitError(f"{where}: data row {r + 1}, column {COLUMNS[2 + c]}: width {rows[r, 2 + c]} m must be > 0")
    step = np.hypot(*np.diff(np.vstack([rows[:, :2], rows[:1, :2]]), axis=0).T)
    if (step < 1e-6).any():
        r = int(np.argmax(step < 1e-6))
        raise CircuitError(f"{where}: data rows {r + 1} and {(r + 1) % len(rows) + 1} are the same point; remove one of them")
    return rows


def _resample_closed(rows: NDArray[np.float64], spacing: float) -> tuple[NDArray, NDArray, NDArray]:
    """Periodic cubic spline through the control points, resampled at uniform arc length."""
    from scipy.interpolate import CubicSpline

    closed = np.vstack([rows, rows[:1]])
    chord = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(closed[:, :2], axis=0).T))])
    spline = CubicSpline(chord, closed, axis=0, bc_type="periodic")
    dense_u = np.linspace(0.0, chord[-1], int(np.ceil(chord[-1] / (spacing / 8))) + 1)
    dense = spline(dense_u)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(dense[:, :2], axis=0).T))])
    count = max(MIN_POINTS, int(round(arc[-1] / spacing)))
    targets = np.arange(count) * (arc[-1] / count)
    u = np.interp(targets, arc, dense_u)
    points = spline(u)
    # Uniform spacing must be exact: the nearest-vertex maths divides by SPACING_M.
    points[:, :2] = _respace(points[:, :2], spacing)
    return points[:, :2], points[:, 2], points[:, 3]


def _respace(xy: NDArray[np.float64], spacing: float) -> NDArray[np.float64]:
    """Scale a closed polyline about its centroid so its perimeter is a whole number of ``spacing``."""
    perimeter = np.hypot(*np.diff(np.vstack([xy, xy[:1]]), axis=0).T).sum()
    centre = xy.mean(axis=0)
    return centre + (xy - centre) * (len(xy) * spacing / perimeter)
