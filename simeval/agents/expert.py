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
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.base import Agent, AgentInfo
from simeval.camera import CameraConfig, red_line_mask
from simeval.raster import ground_points


class ExpertAgent(Agent):
    """PD on the red line's offset at a lookahead, speed from the line's visible curvature."""

    info = AgentInfo(name="expert", framework="numpy")

    def __init__(
        self,
        camera: CameraConfig | None = None,
        max_speed_mps: float = 24.0,
        min_speed_mps: float = 6.5,
        lateral_accel_mps2: float = 6.0,
        derivative_gain: float = 0.02,
        control_dt_s: float = 0.05,
        search_yaw_rate_radps: float = 2.0,
    ):
        super().__init__()
        camera = camera or CameraConfig()
        ground = ground_points(camera)
        self._ground_x = ground[..., 0]
        self._ground_y = ground[..., 1]
        self._columns = np.arange(camera.width_px, dtype=np.float64)
        self.max_speed_mps = max_speed_mps
        self.min_speed_mps = min_speed_mps
        self.lateral_accel_mps2 = lateral_accel_mps2
        self.derivative_gain = derivative_gain
        self.control_dt_s = control_dt_s
        self.search_yaw_rate_radps = search_yaw_rate_radps
        self.reset(None)

    def reset(self, circuit=None) -> None:
        self._last_offset = 0.0
        self._last_v = self.min_speed_mps

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
        if len(points) < 2:
            # Line lost: crawl and turn towards where it was last seen.
            return self.min_speed_mps, math.copysign(self.search_yaw_rate_radps, self._last_offset)
        far = points[np.argmax(points[:, 0])]
        bend = 2.0 * abs(far[1]) / float(far @ far)
        v = math.sqrt(self.lateral_accel_mps2 / max(bend, 1e-6))
        v = min(max(v, self.min_speed_mps), self.max_speed_mps)
        lookahead = min(max(0.25 * v, 1.2), float(far[0]))
        offset = float(np.interp(lookahead, points[:, 0], points[:, 1]))
        w = 2.0 * v * offset / (lookahead * lookahead + offset * offset)
        w += self.derivative_gain * (offset - self._last_offset) / self.control_dt_s
        self._last_offset, self._last_v = offset, v
        return v, w
