"""Circuits made from shapes rather than from survey data.

- ``simple_circuit``: SimpleCircuit re-created from its measured description
  (``shared/tracks/simple_circuit.json``) as true straights and constant-radius arcs, fitted so the
  path passes close to the measured segment starts and closes exactly.
- ``generate_loop``: a seeded generator of smooth closed training loops.

Both hand control points (every ``SAMPLE_SPACING_M`` or ``GEN_SPACING_M``) to ``Circuit.from_points``,
which validates them like any circuit file. The loop helpers here (``loop_length``,
``resample_loop``) are shared with ``simeval.tumftm``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simeval.circuit import MIN_POINTS, Circuit, CircuitMeta
from simeval.errors import CircuitError

SAMPLE_SPACING_M = 0.5
"""Control-point spacing along the straights and arcs of a re-created circuit (m)."""

GEN_SPACING_M = 1.0
"""Control-point spacing of generated loops (m): their bends are gentle."""

PROJECT_LICENCE = "same as simeval (geometry made by the project)"


# ---------------------------------------------------------------------------------- loop helpers
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


def min_radius_m(circuit: Circuit) -> float:
    """Radius of the circuit's tightest bend (m)."""
    return float(1.0 / max(np.abs(circuit.curvature).max(), 1e-12))


# --------------------------------------------------------------------------- straights and arcs
@dataclass(frozen=True)
class Segment:
    """A straight (``turn_rad == 0``) or a constant-radius arc (``turn_rad`` < 0 turns right)."""

    length_m: float
    turn_rad: float = 0.0

    def pose_at(self, x: float, y: float, h: float, t: float) -> tuple[float, float, float]:
        """Pose after driving ``t`` metres into the segment from pose (x, y, heading h)."""
        if self.turn_rad == 0.0:
            return x + t * math.cos(h), y + t * math.sin(h), h
        k = self.turn_rad / self.length_m  # signed curvature
        h2 = h + k * t
        return x + (math.sin(h2) - math.sin(h)) / k, y + (math.cos(h) - math.cos(h2)) / k, h2


def chain_poses(start: tuple[float, float, float], segments: list[Segment]) -> list[tuple[float, float, float]]:
    """Start pose of every segment, and the end pose of the last one."""
    poses = [start]
    for seg in segments:
        poses.append(seg.pose_at(*poses[-1], seg.length_m))
    return poses


def sample_path(
    start: tuple[float, float, float], segments: list[Segment], s0: float, spacing: float
) -> NDArray[np.float64]:
    """Points of a closed chain of segments every ~``spacing`` m, the first at arc length ``s0``."""
    poses = chain_poses(start, segments)
    ends = np.cumsum([seg.length_m for seg in segments])
    lap = float(ends[-1])
    count = max(MIN_POINTS, round(lap / spacing))
    points = []
    for s in (s0 + np.arange(count) * lap / count) % lap:
        i = min(int(np.searchsorted(ends, s, side="right")), len(segments) - 1)
        begin = ends[i] - segments[i].length_m
        points.append(segments[i].pose_at(*poses[i], s - begin)[:2])
    return np.array(points)


# ------------------------------------------------------------------------------- SimpleCircuit
@dataclass(frozen=True)
class _Layout:
    """What the fit needs from simple_circuit.json, with the sweeper split into its two arcs."""

    kinds: list[str]
    """'straight' or 'arc' per fitted segment."""
    starts: NDArray[np.float64]
    """Measured start point of each fitted segment; NaN for the sweeper's second arc."""
    lengths: NDArray[np.float64]
    turns: NDArray[np.float64]
    """Measured turn (rad) per arc; 0 for straights."""
    radii: NDArray[np.float64]
    lap_m: float
    heading0: float
    """Initial heading guess: the spawn's yaw (rad)."""


def _read_layout(json_path: Path) -> tuple[dict, _Layout]:
    """Load the description and split the 250 deg sweeper as its note says (two arcs)."""
    try:
        spec = json.loads(Path(json_path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CircuitError(f"{json_path}: no such file (the SimpleCircuit description)") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CircuitError(f"{json_path}: cannot read the SimpleCircuit description ({exc})") from None
    kinds, starts, lengths, turns, radii = [], [], [], [], []
    for seg in spec["segments"]:
        turn = math.radians(seg["turn_deg"])
        if seg["kind"] == "straight":
            parts = [(seg["length_m"], 0.0, 0.0)]
        elif abs(seg["turn_deg"]) > 200:
            parts = _sweeper_arcs(spec.get("sweeper_note", ""), turn, json_path)
        else:
            parts = [(seg["length_m"], turn, seg["mean_radius_m"])]
        for n, (length, part_turn, radius) in enumerate(parts):
            kinds.append("straight" if part_turn == 0.0 else "arc")
            starts.append(seg["start_xy_m"] if n == 0 else [np.nan, np.nan])
            lengths.append(length)
            turns.append(part_turn)
            radii.append(radius)
    layout = _Layout(
        kinds,
        np.array(starts, float),
        np.array(lengths),
        np.array(turns),
        np.array(radii),
        spec["lap_length_m"],
        spec["spawn"]["yaw_rad"],
    )
    return spec, layout


def _sweeper_arcs(note: str, turn: float, json_path: Path) -> list[tuple[float, float, float]]:
    """(length, turn, radius) of the two arcs of the long sweeper, from the description's note
    ("about 94 deg at radius ~13.5 m, then about 156 deg at radius ~35 m"); the second arc's turn
    is what the first leaves of the measured total."""
    found = re.findall(r"(\d+(?:\.\d+)?) deg at radius ~(\d+(?:\.\d+)?) m", note)
    if len(found) != 2:
        raise CircuitError(
            f"{json_path}: sweeper_note must give two arcs as '<deg> deg at radius ~<r> m', got '{note}'"
        )
    (first_deg, first_r), (_, second_r) = ((float(a), float(r)) for a, r in found)
    first = math.copysign(math.radians(first_deg), turn)
    return [(abs(first) * first_r, first, first_r), (abs(turn - first) * second_r, turn - first, second_r)]


class _SimpleFit:
    """Parameters <-> segments for the SimpleCircuit fit, closing the loop exactly by construction.

    Free parameters: start point, start heading, every straight's length but two, every arc's radius
    and every arc's turn but the last. The last turn makes the total exactly -360 deg; the two held
    straights (the first, and the first one roughly at right angles to it) take the
    lengths that bring the path back to its start.
    """

    def __init__(self, layout: _Layout):
        self.layout = layout
        self.straights = [i for i, k in enumerate(layout.kinds) if k == "straight"]
        self.arcs = [i for i, k in enumerate(layout.kinds) if k == "arc"]
        headings = self._headings(layout.turns, layout.heading0)
        first = self.straights[0]
        across = [i for i in self.straights if abs(math.sin(headings[i] - headings[first])) > 0.9]
        self.held = [first, across[0]]
        self.free = [i for i in self.straights if i not in self.held]

    @staticmethod
    def _headings(turns: NDArray[np.float64], h0: float) -> NDArray[np.float64]:
        return h0 + np.concatenate([[0.0], np.cumsum(turns)[:-1]])

    def initial(self) -> NDArray[np.float64]:
        lay = self.layout
        return np.concatenate(
            [
                lay.starts[0],
                [lay.heading0],
                lay.lengths[self.free],
                lay.radii[self.arcs],
                lay.turns[self.arcs[:-1]],
            ]
        )

    def segments(self, p: NDArray[np.float64]) -> tuple[tuple[float, float, float], list[Segment]]:
        nf, na = len(self.free), len(self.arcs)
        start = (float(p[0]), float(p[1]), float(p[2]))
        lengths = np.zeros(len(self.layout.kinds))
        turns = np.zeros(len(self.layout.kinds))
        lengths[self.free] = p[3 : 3 + nf]
        radii = p[3 + nf : 3 + nf + na]
        turns[self.arcs[:-1]] = p[3 + nf + na :]
        turns[self.arcs[-1]] = -2 * math.pi - turns[self.arcs[:-1]].sum()
        lengths[self.arcs] = radii * np.abs(turns[self.arcs])
        # Close the position: the end point is linear in the two held straights' lengths.
        segs = [Segment(float(length), float(turn)) for length, turn in zip(lengths, turns, strict=True)]
        gap = np.array(chain_poses(start, segs)[-1][:2]) - p[:2]
        h = self._headings(turns, start[2])[self.held]
        solve = np.linalg.solve(np.stack([np.cos(h), np.sin(h)]), -gap)
        for i, extra in zip(self.held, solve, strict=True):
            segs[i] = Segment(float(extra), 0.0)
        return start, segs

    def residuals(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        """Misses of the measured segment starts (m), plus weak pulls towards the measured sizes."""
        lay = self.layout
        start, segs = self.segments(p)
        poses = np.array(chain_poses(start, segs)[:-1])[:, :2]
        measured = ~np.isnan(lay.starts[:, 0])
        miss = (poses[measured] - lay.starts[measured]).ravel()
        lengths = np.array([s.length_m for s in segs])
        size = 0.1 * (lengths - lay.lengths)
        lap = [0.5 * (lengths.sum() - lay.lap_m)]
        return np.concatenate([miss, size, lap])


def simple_circuit(json_path: str | Path, *, reference_lap_time_s: float | None = None) -> Circuit:
    """SimpleCircuit from its measured description, as straights and arcs that close exactly.

    The fit (scipy ``least_squares``) moves the start, the straights' lengths and the arcs' radii
    and turns so the path passes close to the measured segment starts; the loop closes by
    construction (total turn -360 deg, clockwise). The first control point is the listed spawn
    projected onto the re-created line, and the spawn pose heads along the line there.
    """
    from scipy.optimize import least_squares

    spec, layout = _read_layout(Path(json_path))
    fit = _SimpleFit(layout)
    solution = least_squares(fit.residuals, fit.initial(), x_scale="jac")
    start, segs = fit.segments(solution.x)
    if min(s.length_m for s in segs) <= 0:
        raise CircuitError(f"{json_path}: the straights-and-arcs fit did not converge to a valid layout")
    spawn = spec["spawn"]
    along = (spawn["x_m"] - start[0]) * math.cos(start[2]) + (spawn["y_m"] - start[1]) * math.sin(start[2])
    xy = sample_path(start, segs, max(along, 0.0), SAMPLE_SPACING_M)
    meta = CircuitMeta(
        name=spec.get("name", "simple"),
        role="test",
        source=f"re-created from {Path(json_path).name} as straights and arcs fitted to the measured segment starts",
        licence=PROJECT_LICENCE,
        scale=1.0,
        line_width_m=spec["red_line_width_m"],
        wall_height_m=spec["wall_height_m"],
        reference_lap_time_s=reference_lap_time_s,
    )
    circuit = Circuit.from_points(with_widths(xy, spec["road_width_m"]), meta, where=str(json_path))
    return _spawned_at_start(circuit)


def _spawned_at_start(circuit: Circuit) -> Circuit:
    """The circuit with its spawn pose on its first point, heading along the line."""
    pose = (round(float(circuit.xy[0, 0]), 4), round(float(circuit.xy[0, 1]), 4), round(float(circuit.heading[0]), 4))
    meta = dataclasses.replace(circuit.meta, spawn=pose)
    return Circuit.from_points(circuit.control_points, meta)


# ------------------------------------------------------------------------------ generated loops
GEN_HARMONICS = range(2, 7)
"""Harmonics of the radius that shape a generated loop: 2 makes it oval, 6 adds wiggles."""


def _candidate_loop(rng: np.random.Generator, lap_m: float) -> NDArray[np.float64]:
    """A circle whose radius is perturbed by random harmonics, scaled to ``lap_m``, random direction."""
    phi = np.linspace(0.0, 2 * math.pi, 4000, endpoint=False)
    radius = np.ones_like(phi)
    for k in GEN_HARMONICS:
        radius += rng.uniform(0.0, 0.4 / k**0.5) * np.cos(k * phi + rng.uniform(0.0, 2 * math.pi))
    if radius.min() < 0.15:  # a pinched shape: let the caller retry
        return np.empty((0, 2))
    xy = np.column_stack([radius * np.cos(phi), radius * np.sin(phi)])
    xy *= lap_m / loop_length(xy)
    if rng.random() < 0.5:  # clockwise as often as counter-clockwise
        xy = xy[::-1]
    return xy


def generate_loop(
    seed: int,
    *,
    road_width_m: float = 3.0,
    lap_range_m: tuple[float, float] = (600.0, 1800.0),
    min_bend_radius_m: float = 4.0,
    line_width_m: float = 0.10,
    max_attempts: int = 100,
) -> Circuit:
    """A smooth closed training loop, the same for the same arguments.

    Attempt ``n`` draws from ``numpy.random.default_rng([seed, n])``: a lap length in
    ``lap_range_m``, a circle perturbed by random radius harmonics and a driving direction. An
    attempt with a bend tighter than ``min_bend_radius_m`` or one that ``Circuit.from_points``
    refuses (overlapping road) is dropped for the next. Named ``gen-<seed>``; role 'train'.
    """
    for attempt in range(max_attempts):
        rng = np.random.default_rng([seed, attempt])
        xy = _candidate_loop(rng, rng.uniform(*lap_range_m))
        if len(xy) == 0:
            continue
        rows = with_widths(resample_loop(xy, round(loop_length(xy) / GEN_SPACING_M)), road_width_m)
        meta = CircuitMeta(
            name=f"gen-{seed:03d}",
            role="train",
            source=f"simeval.trackgen.generate_loop(seed={seed}), attempt {attempt}",
            licence=PROJECT_LICENCE,
            line_width_m=line_width_m,
        )
        try:
            circuit = Circuit.from_points(rows, meta)
        except CircuitError:
            continue
        if min_radius_m(circuit) >= min_bend_radius_m:
            return circuit
    raise CircuitError(f"generate_loop(seed={seed}): no valid loop in {max_attempts} attempts; try another seed")
