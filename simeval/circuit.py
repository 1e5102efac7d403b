"""A circuit: the centre line of a closed road, its widths, and the geometry queries on it.

Everything downstream (simulator, camera, metrics, experts) asks the circuit the same few
questions: where is arc length ``s`` (``position``), which way does the road point there
(``heading_at``), how wide is it (``width_at``), and where is a world point relative to the road
(``project`` -> ``(s, d)``). The centre line is kept as a closed polyline resampled at a uniform
``SPACING_M``, so those questions are cheap index arithmetic.

Coordinates are metres in the world frame (x east, y north). ``d`` is positive to the left of the
driving direction. The lap starts at the first point and runs in point order.

The project's own circuit file is a CSV whose ``# key: value`` header carries the metadata (name,
role, source, licence, scale, ...) as JSON values, followed by the columns
``x_m,y_m,w_right_m,w_left_m`` (the TUMFTM column order), one row per control point.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simeval.errors import CircuitError, UnknownNameError

SPACING_M = 0.25
"""Distance between centre-line vertices after resampling (m): fine enough for the camera's
nearest-vertex lookup to stay within a millimetre of the true curve."""

MIN_POINTS = 4
FORMAT_TAG = "simeval-circuit/1"
COLUMNS = ("x_m", "y_m", "w_right_m", "w_left_m")
ROLES = ("test", "train", "user")
WALL_CLEARANCE_M = 0.2
"""Minimum grass between the walls of two different parts of a road (m)."""


@dataclass(frozen=True)
class CircuitMeta:
    """What a circuit is and where it came from; written as the header of its file."""

    name: str
    role: str = "user"
    """'test' (evaluation only, never trained on), 'train', or 'user' (imported by a user)."""
    source: str = ""
    """Where the geometry comes from (data set, file, generator and seed)."""
    licence: str = ""
    scale: float = 1.0
    """Multiplier applied to the source coordinates (1/3.03 for montreal)."""
    line_width_m: float = 0.10
    """Width of the red centre line (m)."""
    wall_height_m: float = 0.5
    reference_lap_time_s: float | None = None
    """Lap time of the original explicit brain in Gazebo, where known (s)."""
    spawn: tuple[float, float, float] | None = None
    """Start pose (x_m, y_m, yaw_rad); None starts on the line at s = 0, heading along it."""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise CircuitError(f"circuit '{self.name}': role must be one of {ROLES}, got '{self.role}'")
        for key in ("scale", "line_width_m", "wall_height_m"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise CircuitError(f"circuit '{self.name}': {key} must be a positive number, got {value!r}")


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
        """
        where = where or f"circuit '{meta.name}'"
        rows = _checked_rows(np.asarray(rows, dtype=np.float64), where)
        _check_no_self_crossing(rows[:, :2], where)
        xy, w_right, w_left = _resample_closed(rows, SPACING_M)
        circuit = cls(meta=meta, xy=xy, w_right=w_right, w_left=w_left, control_points=rows)
        circuit._check_road(where)
        return circuit

    @classmethod
    def from_file(cls, path: str | Path) -> Circuit:
        """Read a circuit file in the project's format (see the module docstring)."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CircuitError(f"{path}: no such circuit file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise CircuitError(f"{path}: cannot read circuit file ({exc})") from None
        header, table_lines, first_row_line = _split_header(text, path)
        meta = _meta_from_header(header, path)
        rows = _parse_table(table_lines, path, first_row_line)
        return cls.from_points(rows, meta, where=str(path))

    @classmethod
    def from_name(cls, name: str) -> Circuit:
        """Load a shipped or user-imported circuit by name (``python -m simeval.circuits list``)."""
        from simeval.circuits import circuit_path  # catalogue lives with the CLI that lists it

        return cls.from_file(circuit_path(name))

    def save(self, path: str | Path) -> Path:
        """Write the circuit file whole (temp file + rename), so a crash never leaves half a file."""
        from simeval.atomic import write_text_atomic

        lines = [f"# format: {json.dumps(FORMAT_TAG)}"]
        for key, value in dataclasses.asdict(self.meta).items():
            lines.append(f"# {key}: {json.dumps(value)}")
        lines.append(",".join(COLUMNS))
        lines.extend(",".join(f"{v:.4f}" for v in row) for row in self.control_points)
        return write_text_atomic(Path(path), "\n".join(lines) + "\n")

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


# ---------------------------------------------------------------------------------- file parsing
def _split_header(text: str, path: Path) -> tuple[dict[str, str], list[str], int]:
    header: dict[str, str] = {}
    lines = text.splitlines()
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            key, sep, value = stripped.lstrip("#").partition(":")
            if not sep:
                raise CircuitError(f"{path}:{lineno}: header line must be '# key: value', got '{stripped}'")
            header[key.strip()] = value.strip()
            continue
        columns = tuple(c.strip() for c in stripped.split(","))
        if columns != COLUMNS:
            raise CircuitError(
                f"{path}:{lineno}: expected the column header '{','.join(COLUMNS)}', got '{stripped}'"
            )
        return header, lines[lineno:], lineno + 1
    raise CircuitError(f"{path}: no column header '{','.join(COLUMNS)}' found: is this a simeval circuit file?")


def _meta_from_header(header: dict[str, str], path: Path) -> CircuitMeta:
    fmt = header.pop("format", None)
    if fmt is None or json.loads(fmt) != FORMAT_TAG:
        raise CircuitError(
            f"{path}: not a {FORMAT_TAG} file (format line is {fmt!r}); "
            "import a TUMFTM track with `python -m simeval.circuits import FILE.csv --name NAME`"
        )
    fields = {f.name for f in dataclasses.fields(CircuitMeta)}
    values = {}
    for key, raw in header.items():
        if key not in fields:
            raise UnknownNameError(f"circuit header key (in {path})", key, fields)
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            raise CircuitError(f"{path}: header '{key}' must be a JSON value, got '{raw}'") from None
    if "name" not in values:
        raise CircuitError(f"{path}: header has no 'name'")
    if values.get("spawn") is not None:
        values["spawn"] = tuple(values["spawn"])
    try:
        return CircuitMeta(**values)
    except TypeError as exc:
        raise CircuitError(f"{path}: bad header ({exc})") from None


def _parse_table(lines: list[str], path: Path, first_line: int) -> NDArray[np.float64]:
    """Parse numeric rows, naming the file line of anything that is not four numbers."""
    rows = []
    for offset, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.split(",")
        if len(parts) != 4:
            raise CircuitError(f"{path}:{first_line + offset}: expected 4 values ({','.join(COLUMNS)}), got {len(parts)}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise CircuitError(f"{path}:{first_line + offset}: not a number in '{stripped}'") from None
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def _checked_rows(rows: NDArray[np.float64], where: str) -> NDArray[np.float64]:
    """Reject too few, non-finite and non-positive-width rows; drop a repeated closing point."""
    if rows.ndim != 2 or rows.shape[1] != 4:
        raise CircuitError(f"{where}: expected rows of 4 values ({','.join(COLUMNS)}), got shape {rows.shape}")
    if len(rows) >= 2 and np.allclose(rows[0, :2], rows[-1, :2]):
        rows = rows[:-1]
    if len(rows) < MIN_POINTS:
        raise CircuitError(f"{where}: a closed circuit needs at least {MIN_POINTS} points, got {len(rows)}")
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
        raise CircuitError(f"{where}: data rows {r + 1} and {r % len(rows) + 2} are the same point")
    return rows


def _check_no_self_crossing(xy: NDArray[np.float64], where: str) -> None:
    """A centre line that crosses itself is a figure of eight or a bad file: name the two rows."""
    a = xy
    b = np.roll(xy, -1, axis=0)
    n = len(xy)
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n, chunk):
        i = np.arange(start, min(n, start + chunk))[:, None]
        j = np.arange(n)[None, :]
        p, r = a[i], b[i] - a[i]
        q, sv = a[j], b[j] - a[j]
        denom = r[..., 0] * sv[..., 1] - r[..., 1] * sv[..., 0]
        qp = q - p
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (qp[..., 0] * sv[..., 1] - qp[..., 1] * sv[..., 0]) / denom
            u = (qp[..., 0] * r[..., 1] - qp[..., 1] * r[..., 0]) / denom
        neighbour = (np.abs(i - j) <= 1) | (np.abs(i - j) == n - 1)
        cross = (denom != 0) & (t > 0) & (t < 1) & (u > 0) & (u < 1) & ~neighbour & (j > i)
        if cross.any():
            ri, rj = np.argwhere(cross)[0]
            raise CircuitError(
                f"{where}: the centre line crosses itself between data rows {start + ri + 1}-{start + ri + 2} "
                f"and {rj + 1}-{(rj + 1) % n + 1}: a circuit must be a simple closed loop"
            )


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
