"""A privileged expert: pure pursuit on the true pose and centre line, speed from the bends ahead.

It is the yardstick that shows what the car can do when perception is perfect.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.base import Agent, AgentInfo
from simeval.circuit import Circuit


class PurePursuitAgent(Agent):
    """Steers towards the centre-line point one lookahead ahead; brakes for the sharpest bend in view."""

    info = AgentInfo(name="pure-pursuit", framework="numpy", privileged=True)

    def __init__(
        self,
        max_speed_mps: float = 20.0,
        min_speed_mps: float = 4.0,
        lateral_accel_mps2: float = 12.0,
        preview_m: float = 25.0,
    ):
        super().__init__()
        self.max_speed_mps = max_speed_mps
        self.min_speed_mps = min_speed_mps
        self.lateral_accel_mps2 = lateral_accel_mps2
        self.preview_m = preview_m
        self.circuit: Circuit | None = None

    def reset(self, circuit: Circuit) -> None:
        self.circuit = circuit

    def lookahead_m(self, v: float) -> float:
        return min(max(0.25 * v, 1.5), 6.0)

    def act(self, observation: NDArray[np.uint8], info: dict[str, Any]) -> tuple[float, float]:
        if self.circuit is None:
            raise RuntimeError("pure-pursuit needs reset(circuit) before act()")
        c = self.circuit
        s = info["s"]
        ahead = s + np.arange(0.0, self.preview_m, 1.0)
        bend = float(np.max(np.abs(c.curvature_at(ahead))))
        v = min(self.max_speed_mps, math.sqrt(self.lateral_accel_mps2 / max(bend, 1e-6)))
        v = max(v, self.min_speed_mps)
        lookahead = self.lookahead_m(v)
        tx, ty = c.position(s + lookahead)
        dx, dy = tx - info["x"], ty - info["y"]
        cy, sy = math.cos(info["yaw"]), math.sin(info["yaw"])
        lateral = -sy * dx + cy * dy
        dist2 = dx * dx + dy * dy
        w = v * 2.0 * lateral / max(dist2, 1e-6)
        return v, w
