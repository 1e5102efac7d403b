"""The gymnasium environment ``simeval/FollowLine-v0``: drive a lap by following the red line.

``FollowLineEnv`` puts a ``Simulator`` and a camera ``Renderer`` behind gymnasium's API; its
settings are one record, ``EnvConfig``; ``Termination`` names why an episode ends, everywhere in
simeval (the env's ``info``, metrics.json, reports).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from simeval.errors import ConfigError, UnknownNameError
from simeval.sim.camera import CameraConfig
from simeval.sim.renderer import RENDERERS, make_renderer
from simeval.sim.scenarios import Scenario, get_scenario
from simeval.sim.simulator import US, SimConfig, Simulator
from simeval.sim.vehicle import VehicleConfig
from simeval.track.circuit import Circuit
from simeval.track.lookup import RoadGrid

STARTS = ("spawn", "random")
DEFAULT_SPEED_FOR_TIMEOUT_MPS = 3.0


class Termination(str, Enum):
    """Why an episode ended. A ``str``: it compares equal to, and is written as, its value."""

    LAP_COMPLETED = "lap_completed"
    """The car closed the lap (terminated)."""
    OFF_TRACK = "off_track"
    """A footprint point touched a wall (terminated)."""
    TIMEOUT = "timeout"
    """Simulated time reached the episode's limit (truncated)."""
    STUCK = "stuck"
    """Too little progress over the stuck window (truncated)."""
    INVALID_ACTION = "invalid_action"
    """The action was not two finite numbers (terminated)."""
    AGENT_ERROR = "agent_error"
    """The agent itself failed (raised): set by the rollout, never by the env."""

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    @property
    def truncated(self) -> bool:
        """Ended by a limit rather than by what happened on the road."""
        return self in (Termination.TIMEOUT, Termination.STUCK)


@dataclass(frozen=True)
class EnvConfig:
    """Every setting of the environment but the circuit and the render mode."""

    renderer: str = "raster"
    """Camera renderer: 'raster' (numpy, the default) or 'pybullet'."""
    start: str = "spawn"
    """Where a lap starts: 'spawn' (the circuit's spawn pose) or 'random' (seeded point of the lap)."""
    scenario: str | Scenario = "nominal"
    """A robustness scenario (a name in ``simeval.sim.scenarios.SCENARIOS``, or a ``Scenario``)."""
    max_time_s: float | None = None
    """Simulated time limit of an episode (s); None: twice the reference lap time, or lap / 3 m/s."""
    latency_s: float = 0.0
    """A command computed from the frame taken at t acts from t + latency_s; the next frame is taken
    at t + max(control period, latency_s); 0 is lockstep (s)."""
    stuck_window_s: float = 10.0
    """Truncate as 'stuck' after this much simulated time with too little progress (s)."""
    stuck_min_progress_m: float = 0.5
    """Progress needed within the stuck window (m)."""
    camera: CameraConfig = CameraConfig()
    vehicle: VehicleConfig = VehicleConfig()
    sim: SimConfig = SimConfig()

    def __post_init__(self) -> None:
        if self.renderer not in RENDERERS:
            raise UnknownNameError("renderer", str(self.renderer), RENDERERS)
        if self.start not in STARTS:
            raise ConfigError(f"start must be one of {STARTS}, got {self.start!r}")
        get_scenario(self.scenario)  # an unknown name fails here
        _check_number("latency_s", self.latency_s, minimum=0.0)
        if self.max_time_s is not None:
            _check_number("max_time_s", self.max_time_s, minimum=0.0, inclusive=False)
        _check_number("stuck_window_s", self.stuck_window_s, minimum=0.0, inclusive=False)
        _check_number("stuck_min_progress_m", self.stuck_min_progress_m, minimum=0.0)
        for key, kind in (("camera", CameraConfig), ("vehicle", VehicleConfig), ("sim", SimConfig)):
            if not isinstance(getattr(self, key), kind):
                raise ConfigError(f"{key} must be a {kind.__name__}, got {type(getattr(self, key)).__name__}")


def _check_number(key: str, value: Any, *, minimum: float, inclusive: bool = True) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= minimum if inclusive else value > minimum)
    if not ok:
        relation = ">=" if inclusive else ">"
        raise ConfigError(f"{key} must be a finite number {relation} {minimum:g}, got {value!r}")


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
    At the circuit's spawn pose, or with ``EnvConfig(start="random")`` (or ``options={"start": "random"}``)
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
    ``circuit`` (a name, or a ``Circuit``), ``config`` (an ``EnvConfig``: renderer, start, scenario,
    time limit, latency, stuck rule, and the camera, vehicle and clock records), ``render_mode``
    (None, or 'rgb_array': a top-down heading-up map around the car). With a measured latency the
    latency can change between steps: set ``latency_s`` (through wrappers:
    ``env.set_wrapper_attr("latency_s", seconds)``).

    ## Version History
    * v0: first version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, circuit: str | Circuit = "simple", config: EnvConfig | None = None, *, render_mode: str | None = None):
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ConfigError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        if not isinstance(circuit, (str, Circuit)):
            raise ConfigError(f"circuit must be a circuit name or a Circuit, got {type(circuit).__name__} {circuit!r}")
        if config is not None and not isinstance(config, EnvConfig):
            raise ConfigError(f"config must be an EnvConfig, got {type(config).__name__}")
        self.config = config = config or EnvConfig()
        self.circuit = circuit if isinstance(circuit, Circuit) else Circuit.from_name(circuit)
        self.render_mode = render_mode
        self.max_time_s = config.max_time_s if config.max_time_s is not None else default_timeout_s(self.circuit)
        self.latency_s = config.latency_s
        self.scenario = get_scenario(config.scenario)
        if self.scenario.paint_gaps is not None and config.renderer != "raster":
            raise ConfigError(
                f"scenario '{self.scenario.name}' changes the painted line, which only the raster renderer draws; "
                "use --renderer raster"
            )
        grid = RoadGrid(self.circuit)
        self.sim = Simulator(self.circuit, config.vehicle, config.sim, grid)
        self._renderer = make_renderer(config.renderer, self.circuit, config.camera, grid=grid)
        if self.scenario.paint_gaps is not None:
            self._renderer.paint_gaps = self.scenario.paint_gaps
        self._frame_rng: np.random.Generator | None = None
        self._map_view = None
        vehicle = config.vehicle
        self.observation_space = gym.spaces.Box(0, 255, config.camera.shape, dtype=np.uint8)
        self._action_scale = np.array([vehicle.max_speed_mps, vehicle.max_yaw_rate_radps])
        self.action_space = gym.spaces.Box(
            low=np.array([vehicle.min_speed_mps / vehicle.max_speed_mps, -1.0], dtype=np.float32),
            high=np.array([1.0, 1.0], dtype=np.float32),
            dtype=np.float32,
        )
        self._obs: NDArray[np.uint8] | None = None
        self._termination: Termination | None = None
        self._progress_log: list[tuple[int, float]] = []
        self._stuck_index = 0

    @property
    def vehicle(self) -> VehicleConfig:
        return self.config.vehicle

    @property
    def camera(self) -> CameraConfig:
        return self.config.camera

    @property
    def latency_s(self) -> float:
        """How long after its frame a command acts (s); 0 is lockstep. May change between steps."""
        return self._latency_us / US

    @latency_s.setter
    def latency_s(self, seconds: float) -> None:
        _check_number("latency_s", seconds, minimum=0.0)
        self._latency_us = round(seconds * US)

    # ---------------------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        start = options.get("start", self.config.start)
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
        self._termination = Termination.OFF_TRACK if self.sim.contact else None
        self._progress_log = [(0, 0.0)]
        self._stuck_index = 0
        self._obs = self._see(*pose)
        return self._obs, self._info()

    def step(self, action):
        if self._obs is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (2,) or not np.all(np.isfinite(action)):
            self._termination = Termination.INVALID_ACTION
            return self._obs, 0.0, True, False, self._info()
        command = action * self._action_scale
        before = self.sim.progress_m
        frame_us = self.sim.time_us
        latency_us = self._latency_us
        self.sim.command(command[0], command[1], at_us=frame_us + latency_us if latency_us else None)
        self.sim.advance(max(self.config.sim.control_dt_us, latency_us))
        st = self.sim.state
        self._obs = self._see(st.x, st.y, st.yaw)
        self._termination = self._check_end()
        ended = self._termination is not None
        truncated = ended and self._termination.truncated
        return self._obs, float(self.sim.progress_m - before), ended and not truncated, truncated, self._info()

    def driven_path(self) -> NDArray[np.float64]:
        """(t s, x m, y m) of the car after every physics sub-step of this episode: the driven path
        at full resolution (metrics measure the deviation on it)."""
        return np.asarray(self.sim.path, dtype=np.float64)

    def to_action(self, v: float, w: float) -> NDArray[np.float64]:
        """The action for a command of ``v`` m/s and ``w`` rad/s (NaN stays NaN, so it is caught)."""
        return np.array([v, w], dtype=np.float64) / self._action_scale

    def render(self) -> NDArray[np.uint8] | None:
        if self.render_mode != "rgb_array":
            return None
        if self._map_view is None:
            from simeval.sim.mapview import MapView

            self._map_view = MapView(self.sim.grid, self.config.vehicle)
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

    def _check_end(self) -> Termination | None:
        sim = self.sim
        if sim.lap_time_s is not None:
            return Termination.LAP_COMPLETED
        if sim.contact:
            return Termination.OFF_TRACK
        if sim.time_s >= self.max_time_s:
            return Termination.TIMEOUT
        return Termination.STUCK if self._stuck() else None

    def _stuck(self) -> bool:
        """Under ``stuck_min_progress_m`` of progress over the last ``stuck_window_s``."""
        now = self.sim.time_us
        window_us = round(self.config.stuck_window_s * US)
        self._progress_log.append((now, self.sim.progress_m))
        log = self._progress_log
        if now < window_us:
            return False
        while log[self._stuck_index + 1][0] <= now - window_us:
            self._stuck_index += 1
        return self.sim.progress_m - log[self._stuck_index][1] < self.config.stuck_min_progress_m

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
    """Twice the reference lap time, or the time for a lap at 3 m/s."""
    if circuit.meta.reference_lap_time_s:
        return 2.0 * circuit.meta.reference_lap_time_s
    return circuit.length_m / DEFAULT_SPEED_FOR_TIMEOUT_MPS
