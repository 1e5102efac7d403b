"""The explicit expert: drives from the camera frame alone, like the original hand-written brain.

It finds the red line in each row of the frame, turns the line's pixels into ground points with
the camera's known geometry, steers with a PD law on the line's lateral offset at a speed-scaled
lookahead, and picks its speed from how much the visible line bends: fast on straights, slow in
curves. It never reads the true pose, so it is a fair teacher for PilotNet (its labels are what a
camera can justify).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.base import Agent, AgentInfo
from simeval.sim.camera import CameraConfig, red_line_mask
from simeval.sim.raster import ground_points
from simeval.track.circuit import Circuit


@dataclass(frozen=True)
class ExpertGains:
    """How the expert drives; recorded in every run's config.json."""

    max_speed_mps: float = 24.0
    """Fastest speed it commands (the published labels reach 24 m/s)."""
    min_speed_mps: float = 6.5
    """Slowest speed it commands, also while it searches for a lost line."""
    lateral_accel_mps2: float = 6.0
    """Speed is chosen so that the visible bend gives this lateral acceleration."""
    derivative_gain: float = 0.02
    """D term on the line's lateral offset at the lookahead (rad/s per m/s)."""
    control_dt_s: float = 0.05
    """The control period the D term differentiates over (s)."""
    search_yaw_rate_radps: float = 2.0
    """Yaw rate towards where the line was last seen, when it is lost (rad/s)."""


class ExpertAgent(Agent):
    """PD on the red line's offset at a lookahead, speed from the line's visible curvature."""

    def __init__(self, gains: ExpertGains | None = None, camera: CameraConfig | None = None):
        super().__init__()
        self.gains = gains or ExpertGains()
        self._camera = camera or CameraConfig()
        ground = ground_points(self._camera)
        self._ground_x = ground[..., 0]
        self._ground_y = ground[..., 1]
        self._columns = np.arange(self._camera.width_px, dtype=np.float64)
        self.reset(None)

    @property
    def camera(self) -> CameraConfig:
        return self._camera

    @property
    def info(self) -> AgentInfo:
        return AgentInfo(name="expert", framework="numpy", settings={"gains": asdict(self.gains), "camera": asdict(self._camera)})

    def reset(self, circuit: Circuit | None = None) -> None:
        self._last_offset = 0.0

    def line_points(self, observation: NDArray[np.uint8]) -> NDArray[np.float64]:
        """Ground points (car frame, near to far) of the red line's centre in each row that shows it."""
        mask = red_line_mask(observation)
        counts = mask.sum(axis=1)
        rows = np.flatnonzero(counts)[::-1]  # bottom (near) first
        if rows.size == 0:
            return np.empty((0, 2))
        centre = (mask[rows] * self._columns).sum(axis=1) / counts[rows]
        lo = np.floor(centre - 0.5).astype(int).clip(0, len(self._columns) - 2)
        frac = (centre - 0.5 - lo).clip(0.0, 1.0)
        x = self._ground_x[rows, lo] * (1 - frac) + self._ground_x[rows, lo + 1] * frac
        y = self._ground_y[rows, lo] * (1 - frac) + self._ground_y[rows, lo + 1] * frac
        return np.stack([x, y], axis=1)

    def act(self, observation: NDArray[np.uint8], info: dict[str, Any]) -> tuple[float, float]:
        start = time.perf_counter()
        command = self._decide(observation)
        self.last_inference_s = time.perf_counter() - start
        return command

    def _decide(self, observation: NDArray[np.uint8]) -> tuple[float, float]:
        points = self.line_points(observation)
        g = self.gains
        if len(points) < 2:
            # Line lost: crawl and turn towards where it was last seen.
            return g.min_speed_mps, math.copysign(g.search_yaw_rate_radps, self._last_offset)
        far = points[np.argmax(points[:, 0])]
        bend = 2.0 * abs(far[1]) / float(far @ far)
        v = math.sqrt(g.lateral_accel_mps2 / max(bend, 1e-6))
        v = min(max(v, g.min_speed_mps), g.max_speed_mps)
        lookahead = min(max(0.25 * v, 1.2), float(far[0]))
        offset = float(np.interp(lookahead, points[:, 0], points[:, 1]))
        w = 2.0 * v * offset / (lookahead * lookahead + offset * offset)
        w += g.derivative_gain * (offset - self._last_offset) / g.control_dt_s
        self._last_offset = offset
        return v, w
