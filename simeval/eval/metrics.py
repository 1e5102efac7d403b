"""The metrics of one lap, all in SI units, computed from its record alone.

``LapMetrics`` is what metrics.json holds (its fields, in order, are the file's keys);
``DeviationProfile`` is the deviation along the lap that ``deviation_mae_m`` and
``deviation_max_m`` summarise, written beside them as deviation.csv so that reports plot exactly
what the metrics measured.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.env import Termination
from simeval.eval.rollout import LapRecord
from simeval.track.circuit import Circuit

DEVIATION_STEP_M = 0.5
"""Spacing of the centre-line points at which the deviation is measured (m)."""
TIMING_WARMUP_CALLS = 10
"""Inference calls left out of the timing statistics (first calls pay for lazy initialisation)."""
PATH_DENSIFY_M = 0.1


@dataclass(frozen=True)
class LapMetrics:
    """One episode's results; None where a value is undefined (no lap time before the lap closes)."""

    completed: bool
    """The lap was closed."""
    percentage_completed: float
    """100 x forward progress / lap length (never above 100) (%)."""
    completed_distance_m: float
    """Length of the driven path (m)."""
    lap_time_s: float | None
    """Simulated time at the finish line, interpolated between physics steps (s)."""
    average_speed_mps: float | None
    """completed_distance_m / simulated time (m/s)."""
    deviation_mae_m: float | None
    """Mean distance to the driven path of the centre-line points every 0.5 m up to the progress reached (m)."""
    deviation_max_m: float | None
    """The largest of those distances (m)."""
    brain_frequency_rt_hz: float | None
    """1 / mean wall time of one agent step, pre-processing and inference (Hz)."""
    brain_frequency_sim_hz: float | None
    """Agent steps per simulated second actually achieved; 20 in lockstep (Hz)."""
    inference_time_mean_s: float | None
    """Mean wall time of the model call alone, first 10 calls excluded (s)."""
    inference_time_p50_s: float | None
    """Median of the same (s)."""
    inference_time_p95_s: float | None
    """95th percentile of the same (s)."""
    suddenness: float | None
    """Mean norm of the change of (v m/s, w rad/s) between consecutive commands."""
    termination: Termination
    """Why the episode ended."""
    real_time_factor: float | None
    """Simulated seconds per wall second."""
    simulated_time_s: float
    """Simulated time of the episode (s)."""
    progress_m: float
    """Forward progress along the centre line (m)."""
    lap_length_m: float
    """Length of the lap along the centre line (m)."""
    steps: int
    """Agent decisions."""
    error: str | None = None
    """What the agent did wrong when termination is 'agent_error' or 'invalid_action' (absent from
    metrics.json files written before it was recorded)."""

    def as_dict(self) -> dict[str, Any]:
        """metrics.json's content (keys in field order)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> LapMetrics:
        """A metrics.json read back; its termination becomes a ``Termination`` again."""
        return cls(**{**values, "termination": Termination(values["termination"])})


@dataclass(frozen=True)
class DeviationProfile:
    """The deviation along the lap: what deviation.csv holds."""

    along_m: NDArray[np.float64]
    """Arc length from the start of the centre-line points (m), every ``DEVIATION_STEP_M``."""
    deviation_m: NDArray[np.float64]
    """Their distance to the driven path (m)."""


def deviation_profile(record: LapRecord, circuit: Circuit) -> DeviationProfile:
    """The distance to the driven path at centre-line points every ``DEVIATION_STEP_M`` up to the
    progress reached (the path at full physics resolution)."""
    from scipy.spatial import cKDTree

    along = np.arange(0.0, record.progress_m + 1e-9, DEVIATION_STEP_M)
    if len(record.path) < 2 or along.size == 0:
        return DeviationProfile(along, np.full(along.shape, np.nan))
    ref = circuit.position(record.start_s + along)
    path = _densify(record.path[:, 1:3], PATH_DENSIFY_M)
    _, nearest = cKDTree(path).query(ref)
    best = np.full(len(ref), np.inf)
    for offset in (-1, 0):  # the segments on either side of the nearest path point
        i = np.clip(nearest + offset, 0, len(path) - 2)
        best = np.minimum(best, _point_segment_distance(ref, path[i], path[i + 1]))
    return DeviationProfile(along, best)


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


def compute_metrics(record: LapRecord, circuit: Circuit, profile: DeviationProfile | None = None) -> LapMetrics:
    """The metrics of one episode; ``profile`` is its ``deviation_profile`` if already computed."""
    profile = profile if profile is not None else deviation_profile(record, circuit)
    deviation = profile.deviation_m[np.isfinite(profile.deviation_m)]
    timed = np.asarray(record.inference_s[TIMING_WARMUP_CALLS:], dtype=np.float64)
    timed = timed[np.isfinite(timed)]
    walls = np.asarray(record.step_wall_s, dtype=np.float64)
    commands = np.stack([record.v_cmd, record.w_cmd], axis=1) if record.v_cmd else np.empty((0, 2))
    sim_t = record.sim_time_s
    return LapMetrics(
        completed=record.termination == Termination.LAP_COMPLETED,
        percentage_completed=round(min(100.0, 100.0 * record.progress_m / record.lap_length_m), 6),
        completed_distance_m=record.distance_m,
        lap_time_s=record.lap_time_s,
        average_speed_mps=_finite_or_none(record.distance_m / sim_t) if sim_t > 0 else None,
        deviation_mae_m=float(deviation.mean()) if deviation.size else None,
        deviation_max_m=float(deviation.max()) if deviation.size else None,
        brain_frequency_rt_hz=_finite_or_none(1.0 / walls.mean()) if walls.size and walls.mean() > 0 else None,
        brain_frequency_sim_hz=len(record.v_cmd) / sim_t if sim_t > 0 else None,
        inference_time_mean_s=float(timed.mean()) if timed.size else None,
        inference_time_p50_s=float(np.percentile(timed, 50)) if timed.size else None,
        inference_time_p95_s=float(np.percentile(timed, 95)) if timed.size else None,
        suddenness=float(np.linalg.norm(np.diff(commands, axis=0), axis=1).mean()) if len(commands) > 1 else None,
        termination=record.termination,
        real_time_factor=sim_t / record.wall_time_s if record.wall_time_s > 0 else None,
        simulated_time_s=sim_t,
        progress_m=record.progress_m,
        lap_length_m=record.lap_length_m,
        steps=len(record.v_cmd),
        error=record.error,
    )


def _finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
