"""Robustness scenarios: each changes what it says and nothing else, reproducibly, by name."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from simeval.agents import load_agent
from simeval.env import EnvConfig, FollowLineEnv
from simeval.errors import ConfigError, UnknownNameError
from simeval.eval.run import RunConfig, make_env, run_episode
from simeval.run import main
from simeval.sim.camera import PALETTE, red_line_mask
from simeval.sim.raster import PaintGaps
from simeval.sim.scenarios import SCENARIOS, Brightness, ColourShift, get_scenario, scenario_names
from simeval.track.lookup import RoadGrid
from tests.support import circuit

STEPS = 12


def drive(env: FollowLineEnv, seed: int = 0, steps: int = STEPS, v: float = 5.0, w: float = 0.1):
    """Frames and infos of a short open-loop drive (the same actions for every scenario)."""
    obs, info = env.reset(seed=seed)
    frames, infos = [obs], [info]
    for _ in range(steps):
        obs, _, _, _, info = env.step(env.to_action(v, w))
        frames.append(obs)
        infos.append(info)
    return np.stack(frames), infos


def test_presets_are_named_and_nominal_comes_first():
    names = scenario_names()
    assert names[0] == "nominal"
    assert {"offset-start", "camera-noise", "dim", "bright", "colour-shift", "line-gaps"} <= set(names)
    assert all(SCENARIOS[n].name == n for n in names)
    assert get_scenario(SCENARIOS["dim"]) is SCENARIOS["dim"]


def test_unknown_scenario_suggests_the_close_name():
    with pytest.raises(UnknownNameError, match="Did you mean 'line-gaps'"):
        get_scenario("line-gap")
    with pytest.raises(UnknownNameError, match="unknown scenario 'dimm'"):
        RunConfig(scenario="dimm")


def test_bad_parameters_are_refused():
    with pytest.raises(ConfigError, match="gap_m must be"):
        PaintGaps(gap_m=5.0, period_m=4.0)
    with pytest.raises(ConfigError, match="factor must be"):
        Brightness("x", factor=-1.0)
    with pytest.raises(ConfigError, match="gains must be"):
        ColourShift("x", gains=(1.0, math.nan, 1.0))


@pytest.mark.parametrize("name", ["dim", "bright", "colour-shift"])
def test_brightness_and_colour_scale_each_channel_and_change_nothing_else(name):
    nominal, infos = drive(FollowLineEnv("simple"))
    shifted, shifted_infos = drive(FollowLineEnv("simple", EnvConfig(scenario=name)))
    gains = np.asarray(SCENARIOS[name].gains, dtype=np.float32)
    expected = np.clip(np.rint(nominal * gains), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(shifted, expected)
    assert shifted_infos == infos
    assert not np.array_equal(shifted, nominal)


def test_camera_noise_is_seeded_zero_mean_sigma_and_leaves_the_drive_alone():
    nominal, infos = drive(FollowLineEnv("simple"))
    env = FollowLineEnv("simple", EnvConfig(scenario="camera-noise"))
    noisy, noisy_infos = drive(env, seed=3)
    again, _ = drive(env, seed=3)
    other, _ = drive(FollowLineEnv("simple", EnvConfig(scenario="camera-noise")), seed=4)
    np.testing.assert_array_equal(noisy, again)
    assert not np.array_equal(noisy, other)
    _, infos3 = drive(FollowLineEnv("simple"), seed=3)
    assert noisy_infos == infos3 == infos  # the spawn start does not depend on the seed
    diff = noisy.astype(np.float64) - nominal
    sigma = SCENARIOS["camera-noise"].sigma
    assert abs(diff.mean()) < 0.2
    assert diff.std() == pytest.approx(sigma, rel=0.1)  # a little under sigma: clipping at 0 and 255


def test_camera_noise_with_a_random_start_starts_where_nominal_does():
    plain = FollowLineEnv("montreal", EnvConfig(start="random"))
    noisy = FollowLineEnv("montreal", EnvConfig(start="random", scenario="camera-noise"))
    _, a = plain.reset(seed=11)
    _, b = noisy.reset(seed=11)
    assert (a["x"], a["y"], a["yaw"]) == (b["x"], b["y"], b["yaw"])


@pytest.mark.parametrize("start", ["spawn", "random"])
def test_offset_start_puts_the_car_beside_the_line_and_askew(start):
    offset = SCENARIOS["offset-start"]
    _, base = FollowLineEnv("montreal", EnvConfig(start=start)).reset(seed=5)
    _, moved = FollowLineEnv("montreal", EnvConfig(start=start, scenario="offset-start")).reset(seed=5)
    assert moved["d"] == pytest.approx(base["d"] + offset.lateral_m, abs=2e-3)
    assert moved["yaw"] == pytest.approx(base["yaw"] + offset.heading_rad, abs=1e-9)
    assert moved["s"] == pytest.approx(base["s"], abs=2e-3)


def test_an_explicit_pose_is_not_offset():
    env = FollowLineEnv("simple", EnvConfig(scenario="offset-start"))
    pose = env.circuit.spawn_pose
    _, info = env.reset(seed=0, options={"pose": pose})
    assert (info["x"], info["y"], info["yaw"]) == pytest.approx(pose)


def test_arc_length_per_pixel_matches_the_circuit():
    c = circuit("montreal")
    grid = RoadGrid(c)
    rng = np.random.default_rng(0)
    s_true = rng.uniform(0, c.length_m, 2000)
    d_true = rng.uniform(-1.0, 1.0, 2000)
    xy = c.position(s_true, d_true)
    rel = (xy - grid.origin).astype(np.float32)
    road = grid.locate_xy(np.ascontiguousarray(rel[:, 0]), np.ascontiguousarray(rel[:, 1]), with_s=True)
    err = np.mod(road.s - s_true + c.length_m / 2, c.length_m) - c.length_m / 2
    assert np.abs(err).max() < 0.02
    assert grid.locate_xy(np.ascontiguousarray(rel[:, 0]), np.ascontiguousarray(rel[:, 1])).s is None


def test_line_gaps_remove_red_only_inside_the_gaps():
    """Straight ahead from the spawn the first gap (7-8 m of lap) comes into view and goes."""
    gaps = SCENARIOS["line-gaps"].paint_gaps
    nominal, infos = drive(FollowLineEnv("montreal"), steps=40, w=0.0)
    gapped, gap_infos = drive(FollowLineEnv("montreal", EnvConfig(scenario="line-gaps")), steps=40, w=0.0)
    assert gap_infos == infos
    changed = np.any(nominal != gapped, axis=-1)
    # every changed pixel was (partly) red line and is now unpainted road or wall: no red left
    assert np.all(nominal[changed][:, 0] > nominal[changed][:, 1])
    assert np.all(gapped[changed][:, 0] == gapped[changed][:, 1])
    red_nominal = red_line_mask(nominal).sum(axis=(1, 2))
    red_gapped = red_line_mask(gapped).sum(axis=(1, 2))
    assert np.all(red_gapped <= red_nominal)
    s = np.array([i["s"] for i in infos])
    looking_at_gap = (s > 5.8) & (s < 6.6)  # the camera sees about 1-7 m ahead
    assert np.all(red_gapped[looking_at_gap] < 0.5 * red_nominal[looking_at_gap])
    assert changed[s < 1.0].sum() < 10  # at the start the first gap is at the far edge of view
    assert gaps.unpainted(np.array([7.5, 6.9, 8.0, math.nan], dtype=np.float32), 1000.0).tolist() == [True, False, False, False]


def test_world_changes_refuse_the_pybullet_renderer():
    with pytest.raises(ConfigError, match="only the raster renderer"):
        FollowLineEnv("simple", EnvConfig(renderer="pybullet", scenario="line-gaps"))


def test_nominal_is_byte_identical_to_no_scenario():
    config = RunConfig(agent="expert", circuit="simple", seed=2, start="random", plot=False)
    assert config.scenario == "nominal"
    env = FollowLineEnv("simple", EnvConfig(start="random"))
    plain = run_episode(env, load_agent("expert"), config)
    named = run_episode(make_env(config), load_agent("expert"), config)
    assert plain.path.tobytes() == named.path.tobytes()
    assert plain.termination == named.termination == "lap_completed"


def test_cli_records_the_scenario(tmp_path):
    out = tmp_path / "run"
    assert main(["--agent", "expert", "--circuit", "simple", "--scenario", "offset-start", "--no-plot", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["scenario"] == "offset-start"
    rows = (out / "trajectory.csv").read_text().splitlines()
    assert len(rows) > 2


def test_palette_line_is_red_so_the_gap_check_means_something():
    assert PALETTE.line[0] > PALETTE.line[1] and PALETTE.asphalt[0] == PALETTE.asphalt[1]
