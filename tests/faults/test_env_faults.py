"""Bad input to the gymnasium env, on the real env: one clear simeval error line, never a crash.

One test per case of the hardening issue (memory over make/close cycles of the pybullet renderer,
keyword arguments, step after the episode ended, use after close, malformed actions), then a
property test: any action either steps or raises simeval's own error.
"""

from __future__ import annotations

import math
import time

import gymnasium
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bench.renderer_memory import measure
from simeval import ENV_ID
from simeval.env import ActionError, EnvClosedError, EnvConfig, FollowLineEnv, ResetNeededError
from simeval.errors import ConfigError, SimevalError, UnknownNameError
from simeval.sim.camera import CameraConfig
from simeval.sim.simulator import SimConfig
from simeval.sim.vehicle import VehicleConfig
from tests.support import circuit

MEMORY_CYCLES = 10
MAX_GROWTH_PER_CYCLE_MB = 0.25
"""The leak this guards against was 1.5-1.9 MiB a cycle (pybullet kept every mesh it was given)."""
MAX_STEP_S = 1.0
"""A generous bound on one step (a few ms in practice), so a hang counts as a failure."""


@pytest.fixture(scope="module")
def env():
    """One real env for the module (raster renderer): tests reset it as they need."""
    made = FollowLineEnv(circuit("simple"))
    yield made
    made.close()


def one_line(exc: pytest.ExceptionInfo) -> str:
    """The error's message, checked to be one line."""
    message = str(exc.value)
    assert "\n" not in message, message
    return message


# --------------------------------------------------------------------------- 1. memory
def test_pybullet_env_make_close_cycles_do_not_grow_memory() -> None:
    pytest.importorskip("pybullet")
    growth = measure("pybullet", MEMORY_CYCLES, circuit("simple"))
    assert growth.per_cycle_mb < MAX_GROWTH_PER_CYCLE_MB, (
        f"RSS grew {growth.per_cycle_mb:.3f} MiB per make/close cycle ({growth.growth_mb:.1f} MiB in all)"
    )


# ------------------------------------------------------------------ 2. keyword arguments
@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"max_time_s": "abc"}, ConfigError, "max_time_s must be a finite number > 0, got 'abc'"),
    ({"max_time_s": math.inf}, ConfigError, "max_time_s must be a finite number > 0, got inf"),
    ({"max_time_s": True}, ConfigError, "max_time_s must be a finite number > 0, got True"),
    ({"stuck_window_s": 0}, ConfigError, "stuck_window_s must be a finite number >= 1e-06, got 0"),
    ({"stuck_window_s": 1e-9}, ConfigError, "stuck_window_s must be a finite number >= 1e-06"),
    ({"stuck_min_progress_m": math.nan}, ConfigError, "stuck_min_progress_m must be a finite number >= 0"),
    ({"latency_s": -0.1}, ConfigError, "latency_s must be a finite number >= 0 and <= 3600, got -0.1"),
    ({"latency_s": [0.1]}, ConfigError, r"latency_s must be a finite number >= 0 and <= 3600, got \[0.1\]"),
    ({"latency_s": 1e300}, ConfigError, "latency_s must be a finite number >= 0 and <= 3600, got 1e[+]300"),
    ({"renderer": 3}, ConfigError, r"renderer must be a name \(raster, pybullet\), got int 3"),
    ({"renderer": "rastr"}, UnknownNameError, "unknown renderer 'rastr'. Did you mean 'raster'?"),
    ({"start": None}, ConfigError, "start must be a name"),
    ({"scenario": ["dim"]}, ConfigError, "scenario must be a scenario name or a Scenario, got list"),
    ({"scenario": "dimm"}, UnknownNameError, "unknown scenario 'dimm'. Did you mean 'dim'?"),
    ({"camera": {"hfov_deg": 90}}, ConfigError, "camera must be a CameraConfig, got dict"),
    ({"max_tme_s": 30.0}, UnknownNameError, "unknown env setting 'max_tme_s'. Did you mean 'max_time_s'?"),
    ({"circuit": 123}, ConfigError, "circuit must be a circuit name or a Circuit, got int 123"),
    ({"circuit": ["simple"]}, ConfigError, r"circuit must be a circuit name or a Circuit, got list \['simple'\]"),
    ({"circuit": "simpel"}, UnknownNameError, "unknown circuit 'simpel'. Did you mean 'simple'?"),
    ({"config": {"start": "random"}}, ConfigError, "config must be an EnvConfig, got dict"),
    ({"render_mode": "ansi"}, ConfigError, r"render_mode must be None or one of \['rgb_array'\], got 'ansi'"),
])
@pytest.mark.filterwarnings("ignore:.*render_mode:UserWarning")  # gymnasium's own, before the env's error
def test_make_refuses_bad_keyword_arguments_with_one_line(kwargs, error, message) -> None:
    with pytest.raises(error, match=message) as exc:
        gymnasium.make(ENV_ID, **kwargs)
    one_line(exc)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: CameraConfig(width_px=2.5), "camera width_px must be an integer >= 1 and <= 4096, got 2.5"),
    (lambda: CameraConfig(height_px=10**6), "camera height_px must be an integer >= 1 and <= 4096"),
    (lambda: CameraConfig(hfov_deg="wide"), "camera hfov_deg must be a finite number >= 10 and <= 170, got 'wide'"),
    (lambda: CameraConfig(pitch_rad=math.nan), "camera pitch_rad must be a finite number"),
    (lambda: CameraConfig(crop_top_px=480), "camera crop_top_px must be an integer >= 0 and < 480, got 480"),
    (lambda: VehicleConfig(max_speed_mps=math.inf), "vehicle max_speed_mps must be a finite number > 0, got inf"),
    (lambda: VehicleConfig(width_m=False), "vehicle width_m must be a finite number > 0, got False"),
    (lambda: SimConfig(physics_dt_s=0.0), "physics_dt_s must be a finite number >= 1e-06 and <= 0.05, got 0.0"),
    (lambda: SimConfig(control_dt_s="50ms"), "control_dt_s must be a finite number >= 1e-06 and <= 3600, got '50ms'"),
])
def test_nested_records_refuse_bad_values_with_one_line(make, message) -> None:
    with pytest.raises(ConfigError, match=message) as exc:
        make()
    one_line(exc)


def test_settings_given_by_name_are_the_config_fields() -> None:
    env = gymnasium.make(ENV_ID, circuit="simple", max_time_s=30.0, config=EnvConfig(start="random"))
    try:
        assert env.unwrapped.config == EnvConfig(start="random", max_time_s=30.0)
        assert env.unwrapped.max_time_s == 30.0
    finally:
        env.close()


@pytest.mark.parametrize(("reset_kwargs", "error", "message"), [
    ({"seed": "1"}, ConfigError, "seed must be an integer >= 0, got '1'"),
    ({"seed": -1}, ConfigError, "seed must be an integer >= 0, got -1"),
    ({"options": ["start"]}, ConfigError, "options must be a dict"),
    ({"options": {"posee": (0, 0, 0)}}, UnknownNameError, "unknown reset option 'posee'. Did you mean 'pose'?"),
    ({"options": {"start": "middle"}}, UnknownNameError, "unknown start 'middle'"),
    ({"options": {"pose": "abc"}}, ConfigError, r"options\['pose'\] must be three finite numbers"),
    ({"options": {"pose": (0.0, math.nan, 0.0)}}, ConfigError, r"options\['pose'\] must be three finite numbers"),
    ({"options": {"pose": 5}}, ConfigError, r"options\['pose'\] must be three finite numbers"),
    ({"options": {"pose": (1e300, 0.0, 0.0)}}, ConfigError, r"options\['pose'\] must lie within 1000 m of circuit 'simple'"),
])
def test_reset_refuses_bad_seeds_and_options_with_one_line(env, reset_kwargs, error, message) -> None:
    with pytest.raises(error, match=message) as exc:
        env.reset(**reset_kwargs)
    one_line(exc)


# ------------------------------------------------------------- 3. step after the end
def test_a_step_after_the_episode_ended_raises_until_reset(env) -> None:
    env.reset(seed=0)
    *_, terminated, _, info = env.step(np.array([np.nan, 0.0]))
    assert terminated and info["termination"] == "invalid_action"
    time_s = info["time_s"]
    with pytest.raises(ResetNeededError, match=r"the episode is over \(invalid_action\); call reset\(\)") as exc:
        env.step(env.to_action(5.0, 0.0))
    one_line(exc)
    assert isinstance(exc.value, gymnasium.error.ResetNeeded)
    assert env.sim.time_s == time_s  # nothing moved
    env.reset(seed=0)
    *_, terminated, truncated, info = env.step(env.to_action(5.0, 0.0))
    assert not (terminated or truncated) and info["time_s"] > 0.0


def test_a_step_after_a_wall_or_before_any_reset_raises() -> None:
    fresh = FollowLineEnv(circuit("simple"))
    with pytest.raises(ResetNeededError, match=r"step\(\) before reset\(\)"):
        fresh.step(fresh.to_action(5.0, 0.0))
    fresh.reset(seed=0)
    for _ in range(100):
        *_, terminated, truncated, info = fresh.step(fresh.to_action(5.0, 3.0))
        if terminated or truncated:
            break
    assert info["termination"] == "off_track"
    with pytest.raises(ResetNeededError, match=r"the episode is over \(off_track\)"):
        fresh.step(fresh.to_action(5.0, 0.0))


# ---------------------------------------------------------------------- 4. after close
def test_reset_step_and_render_after_close_raise_one_clear_error() -> None:
    env = gymnasium.make(ENV_ID, circuit="simple", render_mode="rgb_array")
    env.reset(seed=0)
    env.close()
    env.close()  # twice is fine
    for call in (lambda: env.reset(seed=0), lambda: env.step(np.array([0.2, 0.0], dtype=np.float32)), env.render):
        with pytest.raises(EnvClosedError, match="the env is closed; make a new one") as exc:
            call()
        one_line(exc)
        assert isinstance(exc.value, gymnasium.error.ClosedEnvironmentError)


# ------------------------------------------------------------------- 5. invalid actions
@pytest.mark.parametrize("action", [
    [np.nan, 0.0], (0.2, np.inf), np.array([-np.inf, np.nan], dtype=np.float32),
])
def test_a_non_finite_action_ends_the_episode_as_invalid_action(env, action) -> None:
    obs, _ = env.reset(seed=0)
    after, reward, terminated, truncated, info = env.step(action)
    assert terminated and not truncated and reward == 0.0 and info["termination"] == "invalid_action"
    assert np.array_equal(after, obs) and after is not obs  # the last frame, as a new array


@pytest.mark.parametrize("action", [
    [1.0], [0.2, 0.0, 0.0], np.zeros((1, 2)), np.zeros((2, 1)), 0.5, None, "fast", ["0.2", "0.0"],
    [0.2, None], [[0.2], [0.0, 0.1]], np.array([True, False]), np.array([0.2 + 1j, 0.0]), {"v": 0.2}, [10**400, 0],
])
def test_a_malformed_action_raises_action_error(env, action) -> None:
    env.reset(seed=0)
    with pytest.raises(ActionError, match=r"an action must be two real numbers, shape \(2,\)") as exc:
        env.step(action)
    one_line(exc)
    assert env.sim.time_s == 0.0  # refused before anything moved
    env.step(env.to_action(5.0, 0.0))  # and the episode goes on


@pytest.mark.parametrize("action", [(1e300, -1e300), [5.0, 5.0], np.array([-3, 2], dtype=np.int64)])
def test_finite_actions_outside_the_box_are_clipped_to_the_car_limits(env, action) -> None:
    env.reset(seed=0)
    *_, info = env.step(action)
    vehicle = env.vehicle
    assert 0.0 <= info["v"] <= vehicle.max_speed_mps and abs(info["w"]) <= vehicle.max_yaw_rate_radps


def test_to_action_refuses_what_is_not_a_number(env) -> None:
    with pytest.raises(ActionError, match="to_action takes two real numbers"):
        env.to_action("fast", 0.0)


# ------------------------------------------------------------------- 6. property test
def step_in_an_episode(env: FollowLineEnv, action):
    """``env.step(action)``, after a reset if no episode is running (the env says so by raising):
    one env serves every example, driving on across them while the car stays on the road."""
    try:
        return env.step(action)
    except ResetNeededError:
        env.reset(seed=0)
        return env.step(action)


FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
ACTIONS = st.one_of(
    st.tuples(FLOATS, FLOATS).map(np.array),
    st.tuples(st.floats(0.0, 1.0), st.floats(-1.0, 1.0)).map(list),  # in the box: the car drives
    st.lists(FLOATS, max_size=4),
    st.lists(FLOATS, max_size=3).map(tuple),
    hnp.arrays(
        dtype=st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.unsigned_integer_dtypes(),
                        hnp.boolean_dtypes(), hnp.complex_number_dtypes()),
        shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
    ),
    st.one_of(FLOATS, st.integers(), st.booleans(), st.none(), st.text(max_size=5)),  # scalars
    st.lists(st.one_of(FLOATS, st.text(max_size=2), st.none(), st.lists(FLOATS, max_size=2)), max_size=3),
)


@settings(max_examples=500, deadline=None)
@given(action=ACTIONS)
@example(action=np.array([1.0]))  # was: the episode ended as 'invalid_action' instead of an error
@example(action=np.zeros((1, 2)))  # was: flattened and driven
@example(action=[10**400, 0])  # an int that no float holds
@example(action=[[0.2], [0.0, 0.1]])  # ragged: numpy refuses to build it
@example(action=np.array([1e308, -1e308]))  # overflows to inf once scaled (a warning), then clipped
def test_any_action_steps_or_raises_a_simeval_error(env, action) -> None:
    start = time.perf_counter()
    try:
        obs, reward, terminated, truncated, info = step_in_an_episode(env, action)
    except SimevalError as exc:
        assert "\n" not in str(exc)
    else:
        assert env.observation_space.contains(obs)
        assert isinstance(reward, float) and math.isfinite(reward)
        assert isinstance(terminated, bool) and isinstance(truncated, bool)
        assert (info["termination"] is not None) == (terminated or truncated)
    assert time.perf_counter() - start < MAX_STEP_S
