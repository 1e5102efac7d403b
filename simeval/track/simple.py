"""SimpleCircuit re-created from its measured description as true straights and arcs.

``simple_circuit`` reads the measured shape (``circuits/sources/simple_circuit.json``: segment
starts, lengths, radii, turns) and fits straights and constant-radius arcs so the path passes close
to the measured segment starts and closes exactly. The fit's solution for the shipped circuit is
recorded beside the description (``simple_fit.json``), so the build is the same on every machine;
``refit=True`` solves the least-squares problem again.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.errors import CircuitError
from simeval.track.circuit import MIN_POINTS, Circuit, CircuitMeta
from simeval.track.geometry import with_widths

SAMPLE_SPACING_M = 0.5
"""Control-point spacing along the straights and arcs of a re-created circuit (m)."""

PROJECT_LICENCE = "same as simeval (geometry made by the project)"


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


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CircuitError(f"{path}: no such file ({what})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CircuitError(f"{path}: cannot read {what} ({exc})") from None


def _read_layout(json_path: Path) -> tuple[dict, _Layout]:
    """Load the description and split the 250 deg sweeper as its note says (two arcs)."""
    spec = _read_json(json_path, "the SimpleCircuit description")
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


FIT_FORMAT = "simeval-simple-fit/1"


def fit_parameters(json_path: str | Path) -> NDArray[np.float64]:
    """Solve the straights-and-arcs fit of SimpleCircuit's description (scipy ``least_squares``).

    The fit moves the start, the straights' lengths and the arcs' radii and turns so the path
    passes close to the measured segment starts; the loop closes by construction (total turn
    -360 deg, clockwise). Its solution depends on floating-point details at the 1e-8 level, so the
    shipped circuit's solution is recorded (``read_fit``) rather than solved on every build.
    """
    from scipy.optimize import least_squares

    _, layout = _read_layout(Path(json_path))
    fit = _SimpleFit(layout)
    return least_squares(fit.residuals, fit.initial(), x_scale="jac").x


def read_fit(path: str | Path) -> NDArray[np.float64]:
    """The recorded fit parameters (``write_fit``'s file)."""
    record = _read_json(Path(path), "the recorded SimpleCircuit fit; rebuild with --refit")
    if not isinstance(record, dict) or record.get("format") != FIT_FORMAT:
        raise CircuitError(f"{path}: not a {FIT_FORMAT} file; rebuild with --refit")
    return np.asarray(record["parameters"], dtype=np.float64)


def write_fit(path: str | Path, parameters: NDArray[np.float64]) -> Path:
    """Record fit parameters (full float precision) for builds that must not depend on the solver."""
    from simeval.atomic import write_text_atomic

    record = {
        "format": FIT_FORMAT,
        "description": "least-squares solution of the straights-and-arcs fit of simple_circuit.json: start x, y "
        "(m), heading (rad), free straights' lengths (m), arcs' radii (m), all arcs' turns but the last (rad)",
        "parameters": [float(v) for v in parameters],
    }
    return write_text_atomic(Path(path), json.dumps(record, indent=1) + "\n")


def simple_circuit(
    json_path: str | Path, parameters: NDArray[np.float64], *, reference_lap_time_s: float | None = None
) -> Circuit:
    """SimpleCircuit from its measured description and fit ``parameters`` (``fit_parameters``).

    The first control point is the listed spawn projected onto the re-created line, and the spawn
    pose heads along the line there.
    """
    spec, layout = _read_layout(Path(json_path))
    fit = _SimpleFit(layout)
    if len(parameters) != len(fit.initial()):
        raise CircuitError(f"{json_path}: the fit needs {len(fit.initial())} parameters, got {len(parameters)}; rebuild with --refit")
    start, segs = fit.segments(np.asarray(parameters, dtype=np.float64))
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


