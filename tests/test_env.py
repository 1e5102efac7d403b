"""The gymnasium contract of simeval/FollowLine-v0, on the real circuits and renderer."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from simeval import ENV_ID
from simeval.env import EnvConfig, FollowLineEnv
from simeval.errors import ConfigError, UnknownNameError
from tests.support import circuit


def test_check_env_passes_without_warnings():
    env = gymnasium.make(ENV_ID, circuit="simple", render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped)
    env.close()


def test_spaces():
    env = FollowLineEnv(circuit("simple"))
    assert env.observation_space.shape == (66, 200, 3)
    assert env.observation_space.dtype == np.uint8
    assert env.action_space.shape == (2,)
    assert np.allclose(env.to_action(25.0, -8.0), [1.0, -1.0])
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    for key in ("x", "y", "yaw", "s", "d", "progress_m", "time_s", "termination"):
        assert key in info


def _rollout(env, seed, steps=40, start="spawn"):
    obs, info = env.reset(seed=seed, options={"start": start})
    frames, infos = [obs], [info]
    for k in range(steps):
        obs, _, terminated, truncated, info = env.step(env.to_action(6.0, 0.4 * np.sin(k / 5)))
        frames.append(obs)
        infos.append(info)
        if terminated or truncated:
            break
    return np.stack(frames), [(i["x"], i["y"], i["yaw"]) for i in infos]


def test_same_seed_same_rollout_and_random_start_depends_on_seed():
    env = FollowLineEnv(circuit("montmelo"))
    a = _rollout(env, seed=3, start="random")
    b = _rollout(env, seed=3, start="random")
    c = _rollout(env, seed=4, start="random")
    assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    assert a[1][0] != c[1][0]


def test_spawn_start_is_the_circuit_spawn():
    c = circuit("simple")
    env = FollowLineEnv(c)
    _, info = env.reset(seed=0)
    assert (info["x"], info["y"], info["yaw"]) == pytest.approx(c.spawn_pose)
    assert info["progress_m"] == 0.0 and info["termination"] is None


def test_reward_is_forward_progress():
    env = FollowLineEnv(circuit("simple"))
    env.reset(seed=0)
    total = 0.0
    for _ in range(20):
        _, reward, *_rest, info = env.step(env.to_action(5.0, 0.0))
        total += reward
    assert total == pytest.approx(info["progress_m"])
    assert total == pytest.approx(5.0 * 20 * 0.05, rel=0.02)


@pytest.mark.parametrize("bad", [[np.nan, 0.0], [1.0, np.inf]])
def test_invalid_action_terminates(bad):
    env = FollowLineEnv(circuit("simple"))
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(np.array(bad, dtype=np.float64))
    assert terminated and not truncated and reward == 0.0
    assert info["termination"] == "invalid_action"
    assert info["time_s"] == 0.0


def test_wall_contact_terminates_off_track():
    env = FollowLineEnv(circuit("simple"))
    env.reset(seed=0)
    for _ in range(100):
        *_, terminated, truncated, info = env.step(env.to_action(5.0, 3.0))
        if terminated or truncated:
            break
    assert terminated and info["termination"] == "off_track"


def test_standing_still_is_stuck_and_timeout_truncates():
    env = FollowLineEnv(circuit("simple"))
    env.reset(seed=0)
    for _ in range(400):
        *_, terminated, truncated, info = env.step(env.to_action(0.0, 0.0))
        if terminated or truncated:
            break
    assert truncated and info["termination"] == "stuck"
    assert info["time_s"] == pytest.approx(10.0, abs=0.051)
    env = FollowLineEnv(circuit("simple"), EnvConfig(max_time_s=1.0))
    env.reset(seed=0)
    for _ in range(40):
        *_, terminated, truncated, info = env.step(env.to_action(2.0, 0.0))
        if terminated or truncated:
            break
    assert truncated and info["termination"] == "timeout"


def test_fixed_latency_delays_the_command():
    env = FollowLineEnv(circuit("simple"), EnvConfig(latency_s=0.12))
    env.reset(seed=0)
    _, _, _, _, info = env.step(env.to_action(10.0, 0.0))
    assert info["time_s"] == pytest.approx(0.12)  # next frame at t + max(50 ms, L)
    assert info["distance_m"] == pytest.approx(0.0)  # the command acts only from t + L
    _, _, _, _, info = env.step(env.to_action(10.0, 0.0))
    assert info["distance_m"] == pytest.approx(1.2)


def test_render_map_view():
    env = FollowLineEnv(circuit("simple"), render_mode="rgb_array")
    env.reset(seed=0)
    picture = env.render()
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 4  # grass, wall, road, line, car
    assert FollowLineEnv(circuit("simple")).render() is None


def test_close_twice_is_safe():
    env = FollowLineEnv(circuit("simple"))
    env.close()
    env.close()


def test_async_vector_env():
    envs = gymnasium.make_vec(ENV_ID, num_envs=2, vectorization_mode="async", circuit="simple")
    try:
        obs, infos = envs.reset(seed=[1, 2])
        assert obs.shape == (2, 66, 200, 3)
        obs, rewards, terminated, truncated, infos = envs.step(np.array([[0.2, 0.0], [0.2, 0.01]], dtype=np.float32))
        assert rewards.shape == (2,) and np.all(rewards > 0)
    finally:
        envs.close()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="render_mode"):
        FollowLineEnv(circuit("simple"), render_mode="human")
    with pytest.raises(UnknownNameError, match="unknown start 'middle'"):
        FollowLineEnv(circuit("simple"), EnvConfig(start="middle"))
    with pytest.raises(KeyError, match="Did you mean 'montreal'"):
        FollowLineEnv("montreall")


@pytest.mark.parametrize(("settings", "message"), [
    ({"max_time_s": "abc"}, "max_time_s must be a finite number > 0, got 'abc'"),
    ({"max_time_s": -5.0}, "max_time_s must be a finite number > 0"),
    ({"stuck_window_s": 0}, "stuck_window_s must be a finite number >= 1e-06, got 0"),
    ({"latency_s": float("nan")}, "latency_s must be a finite number >= 0"),
    ({"renderer": "opengl"}, "unknown renderer 'opengl'"),
    ({"scenario": "dimm"}, "unknown scenario 'dimm'"),
    ({"vehicle": "fast"}, "vehicle must be a VehicleConfig"),
])
def test_env_settings_are_validated_in_one_record(settings, message):
    with pytest.raises(ConfigError if "unknown" not in message else UnknownNameError, match=message):
        EnvConfig(**settings)


def test_the_circuit_and_the_config_must_be_what_they_say():
    with pytest.raises(ConfigError, match="circuit must be a circuit name or a Circuit, got int 123"):
        FollowLineEnv(123)
    with pytest.raises(ConfigError, match="config must be an EnvConfig, got dict"):
        FollowLineEnv("simple", {"start": "random"})


def test_make_takes_the_config_record():
    env = gymnasium.make(ENV_ID, circuit="simple", config=EnvConfig(start="random", max_time_s=30.0))
    assert env.unwrapped.config.start == "random" and env.unwrapped.max_time_s == 30.0
    env.close()


def test_envs_of_one_circuit_share_its_road_grid_and_an_edited_circuit_gets_its_own():
    import numpy as np

    from simeval.env import FollowLineEnv
    from simeval.track.circuit import Circuit
    from simeval.track.lookup import road_grid

    first, second = FollowLineEnv("simple"), FollowLineEnv("simple")
    assert first.sim.grid is second.sim.grid, "built once per process"
    first.close()
    second.close()
    circuit = Circuit.from_name("simple")
    wider = Circuit.from_points(np.column_stack([circuit.xy[::8], circuit.w_right[::8] + 0.5, circuit.w_left[::8] + 0.5]), circuit.meta)
    assert road_grid(wider) is not road_grid(circuit)
    assert road_grid(circuit) is road_grid(Circuit.from_name("simple"))
