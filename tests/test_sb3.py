"""Reinforcement learning with Stable-Baselines3: ``check_env`` on the symmetric action box, the PPO
example run with a tiny budget (as CleanRL tests its scripts), and its saved policy driven through
``--agent policy.zip`` (format ``sb3``: trusted only with ``--trust-model``, its action mode read
from its saved action space, its actions decoded as the env decodes them)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
import zipfile

import numpy as np
import pytest

from simeval.env import FollowLineEnv
from simeval.paths import REPO_ROOT
from simeval.run import main
from tests.support import circuit

sb3 = pytest.importorskip("stable_baselines3")
EXAMPLE = REPO_ROOT / "examples" / "train_ppo.py"
TERMINATIONS = {"lap_completed", "off_track", "timeout", "stuck"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The example's policy after 128 steps (two PPO updates of 64), and what the example printed."""
    out = tmp_path_factory.mktemp("ppo")
    args = ["--total-timesteps", "128", "--n-steps", "64", "--batch-size", "32", "--n-epochs", "1", "--out", str(out)]
    result = subprocess.run([sys.executable, str(EXAMPLE), *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return out / "policy.zip", result.stdout


def test_check_env_passes_without_warnings_on_the_symmetric_box():
    from stable_baselines3.common.env_checker import check_env

    env = FollowLineEnv(circuit("simple"), action="symmetric")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env)
    env.close()
    with pytest.warns(UserWarning, match="symmetric and normalized Box action space"):  # why the option exists
        check_env(FollowLineEnv(circuit("simple")))


def test_the_ppo_example_trains_saves_and_drives_a_lap(trained):
    policy, printed = trained
    assert policy.is_file() and zipfile.is_zipfile(policy)
    assert "      64 steps" in printed and "     128 steps" in printed and "of a lap" in printed
    metrics = json.loads((policy.parent / "eval_lap" / "metrics.json").read_text())
    assert metrics["termination"] in TERMINATIONS
    assert f"python -m simeval.run --agent {policy} --trust-model --circuit simple" in printed


def test_a_saved_policy_drives_a_lap_through_agent(trained, tmp_path):
    policy, _ = trained
    lap = tmp_path / "lap"
    command = ["-m", "simeval.run", "--agent", str(policy), "--trust-model", "--circuit", "simple", "--max-time-s", "5",
               "--no-plot", "--out", str(lap)]
    result = subprocess.run([sys.executable, *command], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((lap / "metrics.json").read_text())
    assert metrics["termination"] in TERMINATIONS and metrics["steps"] >= 1 and metrics["progress_m"] > 0
    rows = (lap / "trajectory.csv").read_text().splitlines()
    assert rows[0].startswith("t_s,x_m,y_m") and len(rows) >= 3
    config = json.loads((lap / "config.json").read_text())
    agent = config["agent"]
    assert agent["framework"] == "stable-baselines3" and agent["settings"]["trusted"]
    assert agent["settings"]["contract"]["preset"] == "sb3-symmetric"
    assert agent["settings"]["contract"]["artifact"]["format"] == "sb3"


def test_a_policy_file_loads_only_with_trust_model(trained, capsys):
    policy, _ = trained
    assert main(["--agent", str(policy), "--circuit", "simple", "--no-plot"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "refused: a Stable-Baselines3 .zip holds cloudpickled Python objects" in err and "--trust-model" in err


def _with_space(policy, out, key, **fields):
    """A copy of ``policy`` whose saved ``key`` space reads ``fields``."""
    with zipfile.ZipFile(policy) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "data":
                data = json.loads(content)
                data[key].update(fields)
                content = json.dumps(data).encode()
            target.writestr(name, content)
    return out


@pytest.mark.parametrize(("key", "fields", "message"), [
    ("action_space", {"low": "[-2. -2.]", "high": "[2. 2.]"}, "action space Box([-2.0, -2.0], [2.0, 2.0]) is neither of the env's action boxes"),
    ("observation_space", {"_shape": [1, 84, 84]}, "the policy observes (1, 84, 84) uint8, not the env's camera frame"),
])
def test_a_policy_whose_spaces_do_not_fit_the_env_is_refused(trained, tmp_path, capsys, key, fields, message):
    policy = _with_space(trained[0], tmp_path / "other.zip", key, **fields)
    assert main(["--agent", str(policy), "--trust-model", "--circuit", "simple", "--no-plot"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


@pytest.mark.parametrize("mode", ["symmetric", "native"])
def test_the_policy_acts_as_the_env_decodes_its_actions(trained, tmp_path, mode):
    """The agent's (v, w) is ``env.from_action`` of what SB3 itself predicts, in the policy's mode."""
    from stable_baselines3 import PPO

    from simeval.agents import load_agent

    env = FollowLineEnv(circuit("simple"), action=mode, start="random")
    if mode == "symmetric":
        path = trained[0]
    else:  # an untrained policy on the native box is enough: its action mode is what is read
        path = tmp_path / "native.zip"
        PPO("CnnPolicy", env, n_steps=16, batch_size=16, seed=1, device="cpu").save(path)
    agent = load_agent(str(path), trust_model=True)
    reference = PPO.load(path, device="cpu")
    try:
        assert agent.contract.preset == f"sb3-{mode}"
        obs, info = env.reset(seed=3)
        for _ in range(5):
            action, _ = reference.predict(obs, deterministic=True)
            assert np.allclose(agent.act(obs, info), env.from_action(action), atol=1e-4)
            obs, _, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                obs, info = env.reset()
    finally:
        agent.close()
        env.close()


def test_models_init_writes_the_contract_the_policy_drives_with(trained, tmp_path, capsys):
    from simeval.agents.contract import read_contract
    from simeval.models import main as models_main

    contract = tmp_path / "policy.simeval.toml"
    assert models_main(["init", str(trained[0]), "--out", str(contract)]) == 0
    written = read_contract(contract)
    assert written.preset == "sb3-symmetric" and written.artifact.format == "sb3"
    assert (written.output.v.scale, written.output.v.offset, written.output.w.scale) == (12.5, 12.5, 8.0)
