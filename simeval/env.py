"""The gymnasium environment ``simeval/FollowLine-v0``: drive a lap by following the red line.

``FollowLineEnv`` puts a ``Simulator`` and a camera ``Renderer`` behind gymnasium's API; its
settings are one record, ``EnvConfig``; ``Termination`` names why an episode ends, everywhere in
simeval (the env's ``info``, metrics.json, reports).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from simeval.errors import ConfigError, SimevalError, UnknownNameError
from simeval.sim.actions import ACTION_MODES, ActionMapping
from simeval.sim.camera import CameraConfig
from simeval.sim.checks import brief, check_name, check_number
from simeval.sim.renderer import RENDERERS, make_renderer
from simeval.sim.scenarios import Scenario, get_scenario
from simeval.sim.simulator import MAX_PERIOD_S, US, SimConfig, Simulator
from simeval.sim.starts import STARTS, StartPose, draw_start
from simeval.sim.vehicle import VehicleConfig
from simeval.sim.views import VIEWS
from simeval.track.circuit import Circuit
from simeval.track.lookup import road_grid

RESET_OPTIONS = ("start", "pose")
DEFAULT_SPEED_FOR_TIMEOUT_MPS = 3.0
POSE_MARGIN_M = 1000.0
"""How far outside the circuit's bounding box a start pose may lie (m): off the road an episode
ends at once as 'off_track'; much further out the renderers' float32 arithmetic breaks down."""


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


class ActionError(SimevalError, ValueError):
    """An action that is not two real numbers (a wrong shape or type): the caller's bug, refused
    like gymnasium's own envs refuse an action outside their space, not an outcome of the episode."""


class ResetNeededError(SimevalError, gym.error.ResetNeeded):
    """``step`` with no episode running: before the first ``reset``, or after the episode ended."""


class EnvClosedError(SimevalError, gym.error.ClosedEnvironmentError):
    """``reset``, ``step`` or ``render`` after ``close``: the renderer is released."""


@dataclass(frozen=True)
class EnvConfig:
    """Every setting of the environment but the circuit and the render mode."""

    renderer: str = "raster"
    """Camera renderer: 'raster' (numpy, the default) or 'pybullet'."""
    start: str = "spawn"
    """Where a lap starts: 'spawn' (the circuit's spawn pose), 'random' (a seeded point of the lap) or
    'perturbed' (a seeded point with a small seeded offset and heading error): ``simeval.sim.starts``."""
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
    action: str = "native"
    """The action box: 'native' (speed and yaw rate over the car's limits, [0, 1] x [-1, 1]) or
    'symmetric' ([-1, 1] x [-1, 1], speed mapped linearly onto the car's speed range), the box that
    RL libraries expect (``simeval.sim.actions``)."""
    camera: CameraConfig = CameraConfig()
    vehicle: VehicleConfig = VehicleConfig()
    sim: SimConfig = SimConfig()
    render_view: str = "map"
    """What ``render()`` shows with render_mode 'rgb_array' (``simeval.sim.views``): 'map' (top-down
    around the car), 'camera' (the observation scaled up), 'combined' (both, the path, a text line)."""

    def __post_init__(self) -> None:
        check_name("renderer", self.renderer, RENDERERS)
        check_name("start", self.start, STARTS)
        check_name("action mode", self.action, ACTION_MODES)
        get_scenario(self.scenario)  # an unknown name fails here
        check_number("latency_s", self.latency_s, at_least=0.0, at_most=MAX_PERIOD_S)
        if self.max_time_s is not None:
            check_number("max_time_s", self.max_time_s, above=0.0)
        # At least one tick of the clock: a shorter window rounds to none and has no progress to measure.
        check_number("stuck_window_s", self.stuck_window_s, at_least=1 / US)
        check_number("stuck_min_progress_m", self.stuck_min_progress_m, at_least=0.0)
        for key, kind in (("camera", CameraConfig), ("vehicle", VehicleConfig), ("sim", SimConfig)):
            if not isinstance(getattr(self, key), kind):
                raise ConfigError(f"{key} must be a {kind.__name__}, got {type(getattr(self, key)).__name__}")
        check_name("render_view", self.render_view, VIEWS)

    @classmethod
    def with_settings(cls, config: EnvConfig | None, settings: dict[str, Any]) -> EnvConfig:
        """``config`` (default: the defaults) with the ``settings`` given by field name on top, as
        ``FollowLineEnv(..., max_time_s=30)`` and ``gymnasium.make(ENV_ID, max_time_s=30)`` pass them."""
        if config is not None and not isinstance(config, EnvConfig):
            raise ConfigError(f"config must be an EnvConfig, got {type(config).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in settings:
            if key not in names:
                raise UnknownNameError("env setting", key, names)
        return dataclasses.replace(config or cls(), **settings) if settings else config or cls()


class FollowLineEnv(gym.Env[NDArray[np.uint8], NDArray[np.float32]]):
    """Follow the red centre line of a walled circuit with a camera-driven car.

    ## Description
    A planar-mover car (the Gazebo F1 car's kinematics) on one of simeval's circuits, seen through
    its front camera. The agent commands forward speed and yaw rate every 50 ms of simulated time;
    the episode is one lap. Deterministic: the same seed and actions give the same frames.

    ## Action Space
    ``Box([0, -1], [1, 1], float32)``: forward speed and yaw rate (counter-clockwise +) as
    fractions of the car's limits (``VehicleConfig``: 25 m/s, 8 rad/s), the normalised box that
    gymnasium recommends. With ``action="symmetric"``, ``Box([-1, -1], [1, 1], float32)``: the speed
    mapped linearly from [-1, 1] onto [min, max] speed (0 is 12.5 m/s), the yaw rate as before; the
    box RL libraries expect (Stable-Baselines3's ``check_env`` warns about any other, and a Gaussian
    policy starts at its centre). ``to_action(v, w)`` turns a command in m/s and rad/s into an
    action and ``from_action(action)`` back, in either mode;
    ``info`` reports the executed v and w in SI units. Values outside the box are clipped to the
    car's limits (as Pendulum and MountainCarContinuous clip); a NaN or infinite value ends the
    episode with termination 'invalid_action' (an outcome the rollout records). An action that is
    not two real numbers (another shape, a non-numeric dtype, a scalar) is the caller's bug and
    raises ``ActionError``, as gymnasium's own envs refuse an action outside their space.

    ## Observation Space
    ``Box(0, 255, (66, 200, 3), uint8)``: RGB, the bottom half of a 640x480, 90 deg HFOV camera
    resized to 200x66 (the published PilotNet input), rendered at that size with anti-aliasing.

    ## Rewards
    Forward progress along the centre line in metres during the step (negative when driving back).

    ## Starting State
    At the circuit's spawn pose, or with ``EnvConfig(start="random")`` (or ``options={"start": "random"}``)
    on the centre line at a uniformly random arc length, heading along the road, at rest; with
    ``start="perturbed"`` such a point moved across the road by up to 20% of its half-width and
    turned by up to 0.1 rad (both drawn). ``env.start_pose`` records what the last reset drew.
    ``options={"pose": (x_m, y_m, yaw_rad)}`` starts at a given pose (data collection uses it to
    start off the line and askew).

    ## Episode End
    Terminated: wall contact ('off_track'), lap closed ('lap_completed'), bad action
    ('invalid_action'). Truncated: simulated time over ``max_time_s`` ('timeout'; default twice
    the circuit's reference lap time, or lap length / 3 m/s), or under 0.5 m of progress in 10 s
    ('stuck'). ``info["termination"]`` names the reason. Once an episode has ended, ``step``
    raises ``ResetNeededError`` (a ``gymnasium.error.ResetNeeded``) until ``reset``: a step after
    the end would drive on from a state the episode has already left (a wall, the finish line, a
    bad action), which gymnasium's API leaves undefined and its vector envs never do (they reset).

    ## Info
    ``x, y, yaw`` (pose), ``v, w`` (executed command), ``s`` (arc length on the lap), ``d``
    (lateral offset, left +), ``progress_m``, ``lap_length_m``, ``time_s`` (simulated),
    ``distance_m``, ``lap_time_s`` (None until the lap closes), ``termination`` (None while running).

    ## Arguments
    ``circuit`` (a name, or a ``Circuit``), ``config`` (an ``EnvConfig``: renderer, start, scenario,
    time limit, latency, stuck rule, action mode, the camera, vehicle and clock records, the render view),
    ``render_mode`` (None, or 'rgb_array': ``render()`` returns the picture that
    ``EnvConfig.render_view`` names: 'map', a top-down heading-up map around the car (the default);
    'camera', the observation scaled up nearest-neighbour, what ``gymnasium.wrappers.RecordVideo``
    then records; 'combined', the two side by side with the driven path and a line of t, v, w, d).
    With a measured latency the latency can change between steps: set ``latency_s`` (through
    wrappers: ``env.set_wrapper_attr("latency_s", seconds)``). Any ``EnvConfig`` field may also be given by
    name, over ``config``: ``gymnasium.make("simeval/FollowLine-v0", max_time_s=30.0)``. A bad
    argument raises ``ConfigError`` (or ``UnknownNameError`` for a name) at construction. After
    ``close``, ``reset``, ``step`` and ``render`` raise ``EnvClosedError``: make a new env.

    ## Version History
    * v0: first version.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        circuit: str | Circuit = "simple",
        config: EnvConfig | None = None,
        *,
        render_mode: str | None = None,
        **settings: Any,
    ):
        modes = self.metadata["render_modes"]
        if render_mode is not None and not (isinstance(render_mode, str) and render_mode in modes):
            raise ConfigError(f"render_mode must be None or one of {modes}, got {brief(render_mode)}")
        if not isinstance(circuit, (str, Circuit)):
            raise ConfigError(f"circuit must be a circuit name or a Circuit, got {type(circuit).__name__} {brief(circuit)}")
        self._closed = False
        self.config = config = EnvConfig.with_settings(config, settings)
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
        grid = road_grid(self.circuit)  # shared by this process's envs of the same circuit
        self.sim = Simulator(self.circuit, config.vehicle, config.sim, grid)
        self._renderer = make_renderer(config.renderer, self.circuit, config.camera, grid=grid)
        if self.scenario.paint_gaps is not None:
            self._renderer.paint_gaps = self.scenario.paint_gaps
        self._frame_rng: np.random.Generator | None = None
        self._view = None
        vehicle = config.vehicle
        self.observation_space = gym.spaces.Box(0, 255, config.camera.shape, dtype=np.uint8)
        self._actions = ActionMapping(config.action, vehicle)
        self.action_space = gym.spaces.Box(low=self._actions.low.copy(), high=self._actions.high.copy(), dtype=np.float32)
        self._obs: NDArray[np.uint8] | None = None
        self.start_pose: StartPose | None = None
        """Where the last ``reset`` started the car, and what it drew to put it there."""
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
        check_number("latency_s", seconds, at_least=0.0, at_most=MAX_PERIOD_S)
        self._latency_us = round(seconds * US)

    # ---------------------------------------------------------------------------- gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._check_open()
        if seed is not None:
            check_number("seed", seed, at_least=0, integer=True)
        options = _checked_options(options)
        super().reset(seed=seed)
        start = options.get("start", self.config.start)
        check_name("start", start, STARTS)
        if "pose" in options:
            drawn = StartPose("given", _checked_pose(options["pose"], self.circuit))
        else:
            drawn = draw_start(start, self.circuit, self.np_random)
            drawn = dataclasses.replace(drawn, pose=self.scenario.start_pose(self.circuit, drawn.pose))
        self.start_pose = drawn
        pose = drawn.pose
        if self.scenario.perturbs_frames:  # a child stream: the env's own draws stay as they are
            self._frame_rng = self.np_random.spawn(1)[0]
        self.sim.reset(*pose)
        self._termination = Termination.OFF_TRACK if self.sim.contact else None
        self._progress_log = [(0, 0.0)]
        self._stuck_index = 0
        self._obs = self._see(*pose)
        return self._obs, self._info()

    def step(self, action):
        self._check_open()
        if self._obs is None:
            raise ResetNeededError("step() before reset(): call reset() first")
        if self._termination is not None:
            raise ResetNeededError(f"the episode is over ({self._termination}); call reset() to start a new one")
        action = _checked_action(action)
        if not np.all(np.isfinite(action)):
            self._termination = Termination.INVALID_ACTION
            return self._obs.copy(), 0.0, True, False, self._info()
        with np.errstate(over="ignore"):  # a huge finite action overflows to inf, which the car clips
            command = self._actions.from_action(action)
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
        try:
            command = np.array([v, w], dtype=np.float64)
        except (TypeError, ValueError, OverflowError):
            raise ActionError(f"to_action takes two real numbers (v m/s, w rad/s), got {brief(v)}, {brief(w)}") from None
        return self._actions.to_action(command)

    def from_action(self, action: Any) -> NDArray[np.float64]:
        """The command (v m/s, w rad/s) an action stands for, in this env's action mode: the
        inverse of ``to_action`` (before the car clips it to its limits)."""
        return self._actions.from_action(_checked_action(action))

    def render(self) -> NDArray[np.uint8] | None:
        self._check_open()
        if self.render_mode != "rgb_array":
            return None
        from simeval.sim.views import EnvView, status_line

        if self._view is None:
            self._view = EnvView(self.config.render_view, self.sim.grid, self.vehicle, self.camera)
        sim, st = self.sim, self.sim.state
        text = status_line(sim.time_s, st.v, st.w, sim.lateral_offset())
        return self._view.render(self._obs, (st.x, st.y, st.yaw), sim.path, text)

    def camera_frame_at(self, x: float, y: float, yaw: float) -> NDArray[np.uint8]:
        """The camera frame at pose (x m, y m, yaw rad) as this episode's scenario perturbs it,
        drawing the next perturbation from the episode's frame stream; the car does not move.
        After ``reset(seed=...)``, frames at the recorded poses of an episode's steps are that
        episode's observations again (``simeval.replay`` re-renders laps so)."""
        self._check_open()
        return self._see(x, y, yaw)

    def close(self) -> None:
        """Release the renderer (a pybullet connection) and the render view; safe to call twice."""
        self._closed = True
        renderer, self._renderer = getattr(self, "_renderer", None), None
        if renderer is not None:
            renderer.close()
        self._view = None

    # ------------------------------------------------------------------------------ helpers
    def _check_open(self) -> None:
        if self._closed:
            raise EnvClosedError("the env is closed; make a new one")

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


def _checked_action(action: Any) -> NDArray[np.float64]:
    """``action`` as two float64 values (NaN and inf pass: the env ends the episode on them)."""
    try:
        array = np.asarray(action)
    except (TypeError, ValueError, OverflowError):  # ragged nesting, objects numpy cannot hold
        array = None
    if array is None or array.dtype.kind not in "iuf" or array.shape != (2,):
        got = f"{type(action).__name__} {brief(action)}"
        if array is not None:
            got += f" (shape {array.shape}, dtype {array.dtype})"
        raise ActionError(f"an action must be two real numbers, shape (2,): speed and yaw rate as fractions of the car's limits; got {got}")
    return np.asarray(action, dtype=np.float64)


def _checked_options(options: Any) -> dict[str, Any]:
    """``reset``'s options: a dict (or None) of the known keys."""
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise ConfigError(f"options must be a dict (start, pose) or None, got {type(options).__name__} {brief(options)}")
    for key in options:
        if key not in RESET_OPTIONS:
            raise UnknownNameError("reset option", str(key), RESET_OPTIONS)
    return options


def _checked_pose(pose: Any, circuit: Circuit) -> tuple[float, float, float]:
    """``options['pose']`` as three finite floats (x_m, y_m, yaw_rad), within ``POSE_MARGIN_M`` of
    the circuit."""
    try:
        values = () if isinstance(pose, (str, bytes)) else tuple(float(v) for v in pose)
    except (TypeError, ValueError, OverflowError):
        values = ()
    if len(values) != 3 or not all(np.isfinite(values)):
        raise ConfigError(f"options['pose'] must be three finite numbers (x_m, y_m, yaw_rad), got {brief(pose)}")
    low, high = circuit.xy.min(axis=0) - POSE_MARGIN_M, circuit.xy.max(axis=0) + POSE_MARGIN_M
    if not np.all((low <= values[:2]) & (values[:2] <= high)):
        raise ConfigError(
            f"options['pose'] must lie within {POSE_MARGIN_M:g} m of circuit '{circuit.name}' "
            f"(x in [{low[0]:.0f}, {high[0]:.0f}], y in [{low[1]:.0f}, {high[1]:.0f}]), got {brief(pose)}"
        )
    return values


def default_timeout_s(circuit: Circuit) -> float:
    """Twice the reference lap time, or the time for a lap at 3 m/s."""
    if circuit.meta.reference_lap_time_s:
        return 2.0 * circuit.meta.reference_lap_time_s
    return circuit.length_m / DEFAULT_SPEED_FOR_TIMEOUT_MPS
