"""The lap record and the metrics of DESIGN.md, all in SI units, computed from the record alone."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from simeval.circuit import Circuit

DEVIATION_STEP_M = 0.5
"""Spacing of the centre-line points at which the deviation is measured."""
TIMING_WARMUP_CALLS = 10
"""Inference calls left out of the timing statistics (first calls pay for lazy initialisation)."""
PATH_DENSIFY_M = 0.1


@dataclass
class LapRecord:
    """Everything one episode produced; per-step arrays have one entry per agent decision."""

    circuit: str
    agent: str
    seed: int
    lap_length_m: float
    start_s: float
    t: list[float] = field(default_factory=list)
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    yaw: list[float] = field(default_factory=list)
    s: list[float] = field(default_factory=list)
    d: list[float] = field(default_factory=list)
    v_cmd: list[float] = field(default_factory=list)
    w_cmd: list[float] = field(default_factory=list)
    inference_s: list[float] = field(default_factory=list)
    step_wall_s: list[float] = field(default_factory=list)
    path: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 3)))
    """(t, x, y) of the car after every physics sub-step."""
    termination: str = ""
    error: str | None = None
    """What went wrong when termination is 'agent_error' or 'invalid_action'."""
    progress_m: float = 0.0
    distance_m: float = 0.0
    sim_time_s: float = 0.0
    lap_time_s: float | None = None
    wall_time_s: float = 0.0
    final_pose: tuple[float, ...] | None = None
    """(x, y, yaw, s, d, t) where the episode ended."""

    def append_step(self, info: dict, command: tuple[float, float], inference_s: float, wall_s: float) -> None:
        """Record the state the agent saw and what it decided."""
        for key in ("x", "y", "yaw", "s", "d"):
            getattr(self, key).append(float(info[key]))
        self.t.append(float(info["time_s"]))
        self.v_cmd.append(float(command[0]))
        self.w_cmd.append(float(command[1]))
        self.inference_s.append(float(inference_s))
        self.step_wall_s.append(float(wall_s))


def deviation_profile(record: LapRecord, circuit: Circuit) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(arc length from the start, distance to the driven path) at centre-line points every 0.5 m
    up to the progress reached."""
    from scipy.spatial import cKDTree

    along = np.arange(0.0, record.progress_m + 1e-9, DEVIATION_STEP_M)
    if len(record.path) < 2 or along.size == 0:
        return along, np.full(along.shape, np.nan)
    ref = circuit.position(record.start_s + along)
    path = _densify(record.path[:, 1:3], PATH_DENSIFY_M)
    _, nearest = cKDTree(path).query(ref)
    best = np.full(len(ref), np.inf)
    for offset in (-1, 0):  # the segments on either side of the nearest path point
        i = np.clip(nearest + offset, 0, len(path) - 2)
        best = np.minimum(best, _point_segment_distance(ref, path[i], path[i + 1]))
    return along, best


def _densify(xy: NDArray[np.float64], step: float) -> NDArray[np.float64]:
    seg = np.hypot(*np.diff(xy, axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    if cum[-1] == 0:
        return xy[:2] if len(xy) >= 2 else np.vstack([xy, xy])
    samples = np.union1d(cum, np.arange(0.0, cum[-1], step))
    return np.stack([np.interp(samples, cum, xy[:, 0]), np.interp(samples, cum, xy[:, 1])], axis=1)


def _point_segment_distance(p: NDArray, a: NDArray, b: NDArray) -> NDArray[np.float64]:
    ab = b - a
    denom = np.maximum(np.sum(ab * ab, axis=1), 1e-12)
    t = np.clip(np.sum((p - a) * ab, axis=1) / denom, 0.0, 1.0)
    return np.hypot(*(a + t[:, None] * ab - p).T)


def _finite_or_none(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def compute_metrics(record: LapRecord, circuit: Circuit) -> dict[str, object]:
    """The metrics of DESIGN.md "Metrics" for one episode (None where a value is undefined)."""
    _, deviation = deviation_profile(record, circuit)
    deviation = deviation[np.isfinite(deviation)]
    timed = np.asarray(record.inference_s[TIMING_WARMUP_CALLS:], dtype=np.float64)
    timed = timed[np.isfinite(timed)]
    walls = np.asarray(record.step_wall_s, dtype=np.float64)
    commands = np.stack([record.v_cmd, record.w_cmd], axis=1) if record.v_cmd else np.empty((0, 2))
    sim_t = record.sim_time_s
    return {
        "completed": record.termination == "lap_completed",
        "percentage_completed": round(min(100.0, 100.0 * record.progress_m / record.lap_length_m), 6),
        "completed_distance_m": record.distance_m,
        "lap_time_s": record.lap_time_s,
        "average_speed_mps": _finite_or_none(record.distance_m / sim_t) if sim_t > 0 else None,
        "deviation_mae_m": float(deviation.mean()) if deviation.size else None,
        "deviation_max_m": float(deviation.max()) if deviation.size else None,
        "brain_frequency_rt_hz": _finite_or_none(1.0 / walls.mean()) if walls.size and walls.mean() > 0 else None,
        "brain_frequency_sim_hz": len(record.v_cmd) / sim_t if sim_t > 0 else None,
        "inference_time_mean_s": float(timed.mean()) if timed.size else None,
        "inference_time_p50_s": float(np.percentile(timed, 50)) if timed.size else None,
        "inference_time_p95_s": float(np.percentile(timed, 95)) if timed.size else None,
        "suddenness": float(np.linalg.norm(np.diff(commands, axis=0), axis=1).mean()) if len(commands) > 1 else None,
        "termination": record.termination,
        "real_time_factor": sim_t / record.wall_time_s if record.wall_time_s > 0 else None,
        "simulated_time_s": sim_t,
        "progress_m": record.progress_m,
        "lap_length_m": record.lap_length_m,
        "steps": len(record.v_cmd),
    }
