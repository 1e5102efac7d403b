"""Where episodes start: drawn starts stay on the road and are recorded; a sweep's seeds differ."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simeval.env import EnvConfig, FollowLineEnv
from simeval.eval.run import RunConfig
from simeval.sim.starts import HEADING_ERROR_RAD, OFFSET_FRACTION, draw_start
from simeval.track.circuit import Circuit

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def montreal() -> Circuit:
    return Circuit.from_name("montreal")


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_a_perturbed_start_is_near_the_line_and_turned_a_little(montreal: Circuit, seed: int) -> None:
    start = draw_start("perturbed", montreal, np.random.default_rng(seed))
    assert 0.0 <= start.s_m < montreal.length_m
    right, left = montreal.width_at(start.s_m)
    assert abs(start.offset_m) <= OFFSET_FRACTION * min(right, left) + 1e-12
    assert abs(start.heading_error_rad) <= HEADING_ERROR_RAD
    s, d = montreal.project(np.array(start.pose[:2]))
    assert d == pytest.approx(start.offset_m, abs=5e-3)  # project() is approximate on curves
    road = float(montreal.heading_at(start.s_m))
    assert math.remainder(start.pose[2] - road - start.heading_error_rad, math.tau) == pytest.approx(0.0, abs=1e-9)


def test_the_env_records_each_start_and_the_car_starts_on_the_road(montreal: Circuit) -> None:
    env = FollowLineEnv(montreal, EnvConfig(start="perturbed"))
    draws = []
    for seed in range(8):
        _, info = env.reset(seed=seed)
        assert info["termination"] is None  # not in a wall
        assert (info["x"], info["y"], info["yaw"]) == pytest.approx(env.start_pose.pose)
        draws.append(env.start_pose)
    assert len({d.s_m for d in draws}) == 8
    env.reset(seed=3)
    assert env.start_pose == draws[3]  # the same seed, the same start
    env.reset(seed=3, options={"start": "spawn"})
    assert env.start_pose.kind == "spawn" and env.start_pose.pose == montreal.spawn_pose
    env.close()


def test_the_random_start_draws_as_before(montreal: Circuit) -> None:
    """'random' is the start older results used: the same point for the same seed."""
    env = FollowLineEnv(montreal, EnvConfig(start="random"))
    env.reset(seed=5)
    s0 = float(np.random.default_rng(5).uniform(0.0, montreal.length_m))
    x, y = montreal.position(s0)
    assert env.start_pose.pose == (float(x), float(y), float(montreal.heading_at(s0)))
    env.close()


def test_a_run_s_seeded_start_is_the_spawn_for_seed_0_only() -> None:
    assert RunConfig(seed=0).env_config().start == "spawn"
    assert RunConfig(seed=1).env_config().start == "perturbed"
    assert RunConfig(seed=4, start="spawn").env_config().start == "spawn"
    assert RunConfig(seed=4, start="random").env_config().start == "random"


def test_a_sweep_s_seeds_start_apart_and_config_json_says_where(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "simeval.sweep", "--agents", "expert", "--circuits", "simple", "--seeds", "3",
               "--max-time-s", "4", "--jobs", "1", "--no-plot", "--no-progress", "--out", str(out)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    runs = sorted((out / "runs").iterdir())
    starts = [json.loads((run / "config.json").read_text())["start"] for run in runs]
    assert [s["kind"] for s in starts] == ["spawn", "perturbed", "perturbed"]
    assert starts[1]["s_m"] != starts[2]["s_m"] and starts[1]["offset_m"] != 0.0
    trajectories = {(run / "trajectory.csv").read_bytes() for run in runs}
    assert len(trajectories) == 3
    fixed = tmp_path / "fixed"
    subprocess.run([*command[:-2], "--start", "spawn", "--out", str(fixed)], cwd=ROOT, check=True, capture_output=True)
    spawned = sorted((fixed / "runs").iterdir())
    assert len({(run / "trajectory.csv").read_bytes() for run in spawned}) == 1  # the user fixed the start
    assert (spawned[0] / "trajectory.csv").read_bytes() == (runs[0] / "trajectory.csv").read_bytes()
