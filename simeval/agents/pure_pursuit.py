"""A privileged expert: pure pursuit on the true pose and centre line, speed from the bends ahead.

It is the yardstick that shows what the car can do when perception is perfect.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.base import Agent, AgentInfo
from simeval.track.circuit import Circuit


@dataclass(frozen=True)
class PurePursuitGains:
    """How pure pursuit drives; recorded in every run's config.json."""

    max_speed_mps: float = 20.0
    min_speed_mps: float = 4.0
    lateral_accel_mps2: float = 12.0
    """Speed is chosen so that the sharpest bend in view gives this lateral acceleration."""
    preview_m: float = 25.0
    """How far ahead it looks for the sharpest bend (m)."""


class PurePursuitAgent(Agent):
    """Steers towards the centre-line point one lookahead ahead; brakes for the sharpest bend in view."""

    def __init__(self, gains: PurePursuitGains | None = None):
        super().__init__()
        self.gains = gains or PurePursuitGains()
        self.circuit: Circuit | None = None

    @property
    def info(self) -> AgentInfo:
        return AgentInfo(name="pure-pursuit", framework="numpy", privileged=True, settings={"gains": asdict(self.gains)})

    def reset(self, circuit: Circuit) -> None:
        self.circuit = circuit

    def lookahead_m(self, v: float) -> float:
        return min(max(0.25 * v, 1.5), 6.0)

    def act(self, observation: NDArray[np.uint8], info: dict[str, Any]) -> tuple[float, float]:
        if self.circuit is None:
            raise RuntimeError("pure-pursuit needs reset(circuit) before act()")
        c = self.circuit
        s = info["s"]
        g = self.gains
        ahead = s + np.arange(0.0, g.preview_m, 1.0)
        bend = float(np.max(np.abs(c.curvature_at(ahead))))
        v = min(g.max_speed_mps, math.sqrt(g.lateral_accel_mps2 / max(bend, 1e-6)))
        v = max(v, g.min_speed_mps)
        lookahead = self.lookahead_m(v)
        tx, ty = c.position(s + lookahead)
        dx, dy = tx - info["x"], ty - info["y"]
        cy, sy = math.cos(info["yaw"]), math.sin(info["yaw"])
        lateral = -sy * dx + cy * dy
        dist2 = dx * dx + dy * dy
        w = v * 2.0 * lateral / max(dist2, 1e-6)
        return v, w
