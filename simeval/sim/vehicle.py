"""The car: a planar mover driven by (v, w), like the Gazebo F1 car's planar-move plugin.

The command sets forward speed and yaw rate directly (no tyres, no slip), optionally through a
first-order actuator lag. The footprint is a rectangle that must stay between the walls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simeval.sim.checks import check_number


@dataclass(frozen=True)
class VehicleConfig:
    """Limits, lag and size of the car."""

    max_speed_mps: float = 25.0
    """Commands above this are clipped (the published expert drove at up to 24 m/s)."""
    min_speed_mps: float = 0.0
    """No reversing: a line follower that backs up has lost the line."""
    max_yaw_rate_radps: float = 8.0
    """Commands beyond +-this are clipped (the published labels span +-7.1 rad/s)."""
    actuator_lag_s: float = 0.0
    """Time constant of a first-order lag between command and motion; 0 applies commands at once."""
    length_m: float = 1.0
    """Footprint length; the reference point (pose) is the footprint's centre."""
    width_m: float = 0.5

    def __post_init__(self) -> None:
        check_number("vehicle min_speed_mps", self.min_speed_mps, at_least=0.0)
        check_number("vehicle max_speed_mps", self.max_speed_mps, above=self.min_speed_mps)
        check_number("vehicle max_yaw_rate_radps", self.max_yaw_rate_radps, above=0.0)
        check_number("vehicle actuator_lag_s", self.actuator_lag_s, at_least=0.0)
        check_number("vehicle length_m", self.length_m, above=0.0)
        check_number("vehicle width_m", self.width_m, above=0.0)

    def clip(self, v: float, w: float) -> tuple[float, float]:
        """The command the car can execute."""
        return (
            min(max(v, self.min_speed_mps), self.max_speed_mps),
            min(max(w, -self.max_yaw_rate_radps), self.max_yaw_rate_radps),
        )

    def outline(self) -> tuple[tuple[float, float], ...]:
        """Points of the footprint (car frame) that are checked against the walls: the four
        corners and the middle of each side, so a tight inner wall cannot slip between corners."""
        hl, hw = self.length_m / 2, self.width_m / 2
        return ((hl, hw), (hl, -hw), (-hl, hw), (-hl, -hw), (0.0, hw), (0.0, -hw))


@dataclass
class CarState:
    """Pose and executed velocity of the car (world frame, SI units)."""

    x: float
    y: float
    yaw: float
    v: float = 0.0
    w: float = 0.0


def move(state: CarState, v_cmd: float, w_cmd: float, dt: float, lag_s: float) -> None:
    """Advance ``state`` by ``dt`` seconds in place: lag the velocities, then follow the exact arc."""
    if lag_s > 0:
        alpha = 1.0 - math.exp(-dt / lag_s)
        state.v += alpha * (v_cmd - state.v)
        state.w += alpha * (w_cmd - state.w)
    else:
        state.v, state.w = v_cmd, w_cmd
    v, w, yaw = state.v, state.w, state.yaw
    turn = w * dt
    if abs(turn) < 1e-9:
        state.x += v * dt * math.cos(yaw)
        state.y += v * dt * math.sin(yaw)
    else:
        radius = v / w
        state.x += radius * (math.sin(yaw + turn) - math.sin(yaw))
        state.y -= radius * (math.cos(yaw + turn) - math.cos(yaw))
    state.yaw = math.atan2(math.sin(yaw + turn), math.cos(yaw + turn))
