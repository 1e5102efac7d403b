"""The world without the camera: a car on a circuit, a clock, walls, and lap progress.

The clock counts integer microseconds, so a lap is bit-reproducible and a command can be
scheduled to act at any instant (``command(..., at_us=...)``): lockstep mode applies each command
at once, latency mode applies it when the model's answer would really have arrived. Physics
sub-steps never straddle a command change.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from simeval.sim.checks import check_number
from simeval.sim.vehicle import CarState, VehicleConfig, move
from simeval.track.circuit import Circuit
from simeval.track.lookup import RoadGrid

US = 1_000_000
MAX_PERIOD_S = 3600.0
"""Longest control period or latency (s): one step never simulates more than an hour of driving
(a longer one is a unit slip, and would run for minutes)."""


@dataclass(frozen=True)
class SimConfig:
    """Clock settings of the simulator."""

    physics_dt_s: float = 0.01
    """Longest physics sub-step: contact and progress are checked after each one."""
    control_dt_s: float = 0.05
    """Control period: the Gazebo brain's 20 Hz cycle; a frame is taken every period."""

    def __post_init__(self) -> None:
        check_number("control_dt_s", self.control_dt_s, at_least=1 / US, at_most=MAX_PERIOD_S)  # >= one clock tick
        check_number("physics_dt_s", self.physics_dt_s, at_least=1 / US, at_most=self.control_dt_s)

    @property
    def physics_dt_us(self) -> int:
        return round(self.physics_dt_s * US)

    @property
    def control_dt_us(self) -> int:
        return round(self.control_dt_s * US)


class Simulator:
    """Moves the car under scheduled commands; stops at wall contact or when the lap closes."""

    def __init__(
        self,
        circuit: Circuit,
        vehicle: VehicleConfig | None = None,
        config: SimConfig | None = None,
        grid: RoadGrid | None = None,
    ):
        self.circuit = circuit
        self.vehicle = vehicle or VehicleConfig()
        self.config = config or SimConfig()
        self.grid = grid or RoadGrid(circuit)
        self._outline = self.vehicle.outline()
        self.state = CarState(*circuit.spawn_pose)
        self.reset(*circuit.spawn_pose)

    def reset(self, x: float, y: float, yaw: float) -> None:
        """Put the car at rest at a pose; the lap is counted from the arc length of that pose."""
        self.state = CarState(x, y, yaw)
        self.time_us = 0
        self._command = (0.0, 0.0)
        self._pending: list[tuple[int, int, float, float]] = []  # (at_us, order, v, w)
        self._order = 0
        self._s = 0.0
        self.start_s = self._arc_length(x, y)
        self._s = self.start_s
        self.unwrapped_m = 0.0
        """Arc length travelled since the start, signed: it goes down when the car drives backwards."""
        self.progress_m = 0.0
        """The furthest point reached in order along the lap (m): only forward progress counts."""
        self.distance_m = 0.0
        """Length of the driven path (m)."""
        self.lap_time_s: float | None = None
        self.path: list[tuple[float, float, float]] = [(0.0, x, y)]
        """(t, x, y) after every physics sub-step: the driven path at full resolution."""
        self.contact = self._touches_wall()

    # ------------------------------------------------------------------------------ commands
    def command(self, v: float, w: float, at_us: int | None = None) -> None:
        """Apply (v, w), clipped to the car's limits, now or from the simulated instant ``at_us``."""
        cmd = self.vehicle.clip(float(v), float(w))
        if at_us is None or at_us <= self.time_us:
            self._command = cmd
            return
        self._order += 1
        bisect.insort(self._pending, (int(at_us), self._order, *cmd))

    @property
    def executing(self) -> tuple[float, float]:
        """The command acting on the car now."""
        return self._command

    # ------------------------------------------------------------------------------- physics
    @property
    def done(self) -> bool:
        return self.contact or self.lap_time_s is not None

    @property
    def time_s(self) -> float:
        return self.time_us / US

    @property
    def s(self) -> float:
        """Arc length of the car's reference point on the lap (m)."""
        return self._s

    def lateral_offset(self) -> float:
        """Signed distance of the car's reference point from the centre line (m, left +)."""
        return self.grid.locate_point(self.state.x, self.state.y)[1]

    def advance(self, duration_us: int) -> None:
        """Run the clock ``duration_us`` forward, or until the car touches a wall or closes the lap."""
        until = self.time_us + int(duration_us)
        step = self.config.physics_dt_us
        while self.time_us < until and not self.done:
            while self._pending and self._pending[0][0] <= self.time_us:
                _, _, v, w = self._pending.pop(0)
                self._command = (v, w)
            horizon = min(until, self._pending[0][0]) if self._pending else until
            self._substep(min(step, horizon - self.time_us))

    def _substep(self, dt_us: int) -> None:
        state = self.state
        x0, y0, t0 = state.x, state.y, self.time_s
        move(state, *self._command, dt_us / US, self.vehicle.actuator_lag_s)
        self.time_us += dt_us
        self.distance_m += math.hypot(state.x - x0, state.y - y0)
        self.path.append((self.time_s, state.x, state.y))
        self._update_progress(t0)
        self.contact = self._touches_wall()

    def _update_progress(self, t_before: float) -> None:
        length = self.circuit.length_m
        s_new = self._arc_length(self.state.x, self.state.y)
        delta = (s_new - self._s + length / 2) % length - length / 2
        before = self.unwrapped_m
        self._s = s_new
        self.unwrapped_m += delta
        if self.unwrapped_m > self.progress_m:
            self.progress_m = min(self.unwrapped_m, length)
            if self.unwrapped_m >= length and self.lap_time_s is None:
                frac = (length - before) / (self.unwrapped_m - before)
                self.lap_time_s = t_before + frac * (self.time_s - t_before)

    def _arc_length(self, x: float, y: float) -> float:
        s = self.grid.locate_point(x, y)[0]
        return self._s if math.isnan(s) else s

    def _touches_wall(self) -> bool:
        st = self.state
        c, s = math.cos(st.yaw), math.sin(st.yaw)
        for px, py in self._outline:
            if self.grid.locate_point(st.x + c * px - s * py, st.y + s * px + c * py)[2] <= 0.0:
                return True
        return False
