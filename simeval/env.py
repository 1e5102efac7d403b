"""The gymnasium environment ``simeval/FollowLine-v0``: drive a lap by following the red line."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from simeval.camera import CameraConfig, make_renderer
from simeval.circuit import Circuit
from simeval.errors import ConfigError
from simeval.lookup import RoadGrid
from simeval.scenarios import Scenario, get_scenario
from simeval.simulator import US, SimConfig, Simulator
from simeval.vehicle import VehicleConfig

TERMINATIONS = ("lap_completed", "off_track", "timeout", "stuck", "invalid_action", "agent_error")
"""Why an episode ends; 'agent_error' is set by the runner when the agent itself fails."""
STARTS = ("spawn", "random")
DEFAULT_SPEED_FOR_TIMEOUT_MPS = 3.0


class FollowLineEnv(gym.Env[NDArray[np.uint8], NDArray[np.float32]]):
    """Follow the red centre line of a walled circuit with a camera-driven car.

    ## Description
    A planar-mover car (the Gazebo F1 car's kinematics) on one of simeval's circuits, seen through
    its front camera. The agent commands forward speed and yaw rate every 50 ms of simulated time;
    the episode is one lap. Deterministic: the same seed and actions give the same frames.

    ## Action Space
    ``Box([0, -1], [1, 1], float32)``: forward speed and yaw rate (counter-clockwise +) as
    fractions of the car's limits (``VehicleConfig``: 25 m/s, 8 rad/s), the normalised box that
    gymnasium recommends. ``to_action(v, w)`` turns a command in m/s and rad/s into an action;
    ``info`` reports the executed v and w in SI units. A NaN or infinite action ends the episode
    with termination 'invalid_action'.

    ## Observation Space
    ``Box(0, 255, (66, 200, 3), uint8)``: RGB, the bottom half of a 640x480, 90 deg HFOV camera
    resized to 200x66 (the published PilotNet input), rendered at that size with anti-aliasing.

    ## Rewards
    Forward progress along the centre line in metres during the step (negative when driving back).

    ## Starting State
    At the circuit's spawn pose, or with ``start="random"`` (or ``options={"start": "random"}``)
    on the centre line at a uniformly random arc length, heading along the road, at rest.
    ``options={"pose": (x_m, y_m, yaw_rad)}`` starts at a given pose (data collection uses it to
    start off the line and askew).

    ## Episode End
    Terminated: wall contact ('off_track'), lap closed ('lap_completed'), bad action
    ('invalid_action'). Truncated: simulated time over ``max_time_s`` ('timeout'; default twice
    the circuit's reference lap time, or lap length / 3 m/s), or under 0.5 m of progress in 10 s
    ('stuck'). ``info["termination"]`` names the reason.

    ## Info
    ``x, y, yaw`` (pose), ``v, w`` (executed command), ``s`` (arc length on the lap), ``d``
    (lateral offset, left +), ``progress_m``, ``lap_length_m``, ``time_s`` (simulated),
    ``distance_m``, ``lap_time_s`` (None until the lap closes), ``termination`` (None while running).

    ## Arguments
    ``circuit`` (name or Circuit), ``renderer`` ('raster' or 'pybullet'), ``start``,
    ``render_mode`` (None or 'rgb_array': a top-down heading-up map around the car), ``camera``,
    ``vehicle``, ``sim`` (config dataclasses), ``max_time_s``, ``latency_s`` (a command computed
    from the frame taken at t acts from t + latency_s; the next frame is taken at
    t + max(control period, latency_s); 0 is lockstep), ``scenario`` (a name in
    ``simeval.scenarios.SCENARIOS`` or a Scenario: start offset, camera perturbations seeded from
    the reset seed, gaps in the line; world changes need the raster renderer).

    ## Version History
    * v0: first version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        circuit: str | Circuit = "simple",
        *,
        renderer: str = "raster",
        start: str = "spawn",
        render_mode: str | None = None,
        camera: CameraConfig | None = None,
        vehicle: VehicleConfig | None = None,
        sim: SimConfig | None = None,
        max_time_s: float | None = None,
        latency_s: float = 0.0,
        stuck_window_s: float = 10.0,
        stuck_min_progress_m: float = 0.5,
        scenario: str | Scenario = "nominal",
    ):
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ConfigError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        if start not in STARTS:
            raise ConfigError(f"start must be one of {STARTS}, got {start!r}")
        if not (np.isfinite(latency_s) and latency_s >= 0):
            raise ConfigError(f"latency_s must be a finite number >= 0, got {latency_s}")
        self.circuit = circuit if isinstance(circuit, Circuit) else Circuit.from_name(circuit)
        self.camera = camera or CameraConfig()
        self.vehicle = vehicle or VehicleConfig()
        self.sim_config = sim or SimConfig()
        self.render_mode = render_mode
        self.start = start
        self.latency_us = round(latency_s * US)
        self.max_time_s = max_time_s if max_time_s is not None else default_timeout_s(self.circuit)
        self.stuck_window_us = round(stuck_window_s * US)
        self.stuck_min_progress_m = stuck_min_progress_m

        grid = RoadGrid(self.circuit)
        self.sim = Simulator(self.circuit, self.vehicle, self.sim_config, grid)
        self.renderer_name = renderer
        self.scenario = get_scenario(scenario)
        if self.scenario.paint_gaps is not None and renderer != "raster":
            raise ConfigError(
                f"scenario '{self.scenario.name}' changes the painted line, which only the raster renderer draws; "
                "use --renderer raster"
            )
        self._renderer = make_renderer(renderer, self.circuit, self.camera, grid=grid)
        if self.scenario.paint_gaps is not None:
            self._renderer.paint_gaps = self.scenario.paint_gaps
        self._frame_rng: np.random.Generator | None = None
        self._map_view = None
        self.observation_space = gym.spaces.Box(0, 255, self.camera.shape, dtype=np.uint8)
        self._action_scale = np.array([self.vehicle.max_speed_mps, self.vehicle.max_yaw_rate_radps])
        self.action_space = gym.spaces.Box(
            low=np.array([self.vehicle.min_speed_mps / self.vehicle.max_speed_mps, -1.0], dtype=np.float32),
            high=np.array([1.0, 1.0], dtype=np.float32),
            dtype=np.float32,
        )
        self._obs: NDArray[np.uint8] | None = None
        self._termination: str | None = None
        self._progress_log: list[tuple[int, float]] = []
        self._stuck_index = 0

    # ---------------------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        start = options.get("start", self.start)
        if start not in STARTS:
            raise ConfigError(f"options['start'] must be one of {STARTS}, got {start!r}")
        if "pose" in options:
            pose = tuple(float(v) for v in options["pose"])
            if len(pose) != 3 or not all(np.isfinite(pose)):
                raise ConfigError(f"options['pose'] must be three finite numbers (x_m, y_m, yaw_rad), got {options['pose']!r}")
        elif start == "random":
            s0 = float(self.np_random.uniform(0.0, self.circuit.length_m))
            x, y = self.circuit.position(s0)
            pose = (float(x), float(y), float(self.circuit.heading_at(s0)))
        else:
            pose = self.circuit.spawn_pose
        if "pose" not in options:
            pose = self.scenario.start_pose(self.circuit, pose)
        if self.scenario.perturbs_frames:  # a child stream: the env's own draws stay as they are
            self._frame_rng = self.np_random.spawn(1)[0]
        self.sim.reset(*pose)
        self._termination = "off_track" if self.sim.contact else None
        self._progress_log = [(0, 0.0)]
        self._stuck_index = 0
        self._obs = self._see(*pose)
        return self._obs, self._info()

    def step(self, action):
        if self._obs is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (2,) or not np.all(np.isfinite(action)):
            self._termination = "invalid_action"
            return self._obs, 0.0, True, False, self._info()
        command = action * self._action_scale
        before = self.sim.progress_m
        frame_us = self.sim.time_us
        self.sim.command(command[0], command[1], at_us=frame_us + self.latency_us if self.latency_us else None)
        self.sim.advance(max(self.sim_config.control_dt_us, self.latency_us))
        st = self.sim.state
        self._obs = self._see(st.x, st.y, st.yaw)
        self._termination = self._check_end()
        terminated = self._termination in ("lap_completed", "off_track")
        truncated = self._termination in ("timeout", "stuck")
        return self._obs, float(self.sim.progress_m - before), terminated, truncated, self._info()

    def to_action(self, v: float, w: float) -> NDArray[np.float64]:
        """The action for a command of ``v`` m/s and ``w`` rad/s (NaN stays NaN, so it is caught)."""
        return np.array([v, w], dtype=np.float64) / self._action_scale

    def render(self) -> NDArray[np.uint8] | None:
        if self.render_mode != "rgb_array":
            return None
        if self._map_view is None:
            from simeval.mapview import MapView

            self._map_view = MapView(self.sim.grid, self.vehicle)
        st = self.sim.state
        return self._map_view.render(st.x, st.y, st.yaw)

    def close(self) -> None:
        if getattr(self, "_renderer", None) is not None:
            self._renderer.close()
            self._renderer = None

    # ------------------------------------------------------------------------------ helpers
    def _see(self, x: float, y: float, yaw: float) -> NDArray[np.uint8]:
        """The camera frame as the scenario perturbs it."""
        frame = self._renderer.render(x, y, yaw)
        if self._frame_rng is None:
            return frame
        return self.scenario.perturb(frame, self._frame_rng)

    def _check_end(self) -> str | None:
        sim = self.sim
        if sim.lap_time_s is not None:
            return "lap_completed"
        if sim.contact:
            return "off_track"
        if sim.time_s >= self.max_time_s:
            return "timeout"
        return "stuck" if self._stuck() else None

    def _stuck(self) -> bool:
        """Under ``stuck_min_progress_m`` of progress over the last ``stuck_window_s``."""
        now = self.sim.time_us
        self._progress_log.append((now, self.sim.progress_m))
        log = self._progress_log
        if now < self.stuck_window_us:
            return False
        while log[self._stuck_index + 1][0] <= now - self.stuck_window_us:
            self._stuck_index += 1
        return self.sim.progress_m - log[self._stuck_index][1] < self.stuck_min_progress_m

    def _info(self) -> dict[str, Any]:
        sim, st = self.sim, self.sim.state
        return {
            "x": st.x,
            "y": st.y,
            "yaw": st.yaw,
            "v": st.v,
            "w": st.w,
            "s": sim.s,
            "d": sim.lateral_offset(),
            "progress_m": sim.progress_m,
            "lap_length_m": self.circuit.length_m,
            "time_s": sim.time_s,
            "distance_m": sim.distance_m,
            "lap_time_s": sim.lap_time_s,
            "termination": self._termination,
        }


def default_timeout_s(circuit: Circuit) -> float:
    """Twice the reference lap time, or the time for a lap at 3 m/s (DESIGN.md, Metrics)."""
    if circuit.meta.reference_lap_time_s:
        return 2.0 * circuit.meta.reference_lap_time_s
    return circuit.length_m / DEFAULT_SPEED_FOR_TIMEOUT_MPS
