"""The one episode loop: it speaks gymnasium's API (so wrapped envs drive the same laps), sets a
measured latency through wrappers, caps and perturbs episodes, and records what happened."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

from simeval import ENV_ID
from simeval.agents import load_agent
from simeval.env import FollowLineEnv, Termination
from simeval.eval.metrics import LapMetrics, compute_metrics, deviation_profile
from simeval.eval.rollout import rollout
from tests.bad_agents import CrashAfterFiveAgent, NanAfterFiveAgent
from tests.support import circuit


def test_a_wrapped_env_drives_the_same_lap_as_the_bare_one():
    bare = rollout(FollowLineEnv(circuit("simple")), load_agent("expert"), seed=1, options={"start": "random"})
    wrapped_env = gymnasium.make(ENV_ID, circuit="simple")
    assert wrapped_env is not wrapped_env.unwrapped  # gymnasium.make adds its checking wrappers
    wrapped = rollout(wrapped_env, load_agent("expert"), seed=1, options={"start": "random"})
    assert bare.termination == wrapped.termination == Termination.LAP_COMPLETED
    assert bare.path.tobytes() == wrapped.path.tobytes()
    assert (bare.v_cmd, bare.w_cmd) == (wrapped.v_cmd, wrapped.w_cmd)


def test_a_measured_latency_reaches_the_env_through_wrappers():
    """The latency callback's value must act on the env itself, not land on a wrapper."""
    env = gymnasium.make(ENV_ID, circuit="simple")
    lap = rollout(env, load_agent("expert"), seed=0, max_steps=20, latency=lambda wall: 0.2)
    assert env.unwrapped.latency_s == pytest.approx(0.2)
    assert np.diff(lap.t) == pytest.approx(0.2)  # the next frame waits for the late command


def test_max_steps_caps_the_episode_and_perturb_changes_what_is_sent():
    sent = []
    lap = rollout(FollowLineEnv(circuit("simple")), load_agent("expert"), seed=0, max_steps=7,
                  perturb=lambda command: (command[0] * 0.5, command[1]),
                  on_step=lambda step: sent.append((step.command, step.executed)))
    assert lap.termination is None and len(lap.v_cmd) == len(sent) == 7
    assert all(executed == (command[0] * 0.5, command[1]) for command, executed in sent)
    assert lap.v_cmd == [command[0] for command, _ in sent]  # the record keeps the agent's own command


@pytest.mark.parametrize(("agent", "termination", "error"), [
    (NanAfterFiveAgent(), Termination.INVALID_ACTION, "non-finite command"),
    (CrashAfterFiveAgent(), Termination.AGENT_ERROR, "RuntimeError: inference backend lost its session"),
])
def test_a_failing_agent_is_a_recorded_outcome(agent, termination, error):
    lap = rollout(FollowLineEnv(circuit("simple")), agent, seed=0)
    assert lap.termination == termination and error in lap.error
    assert len(lap.v_cmd) == 5 and lap.final_pose is not None


def test_metrics_are_typed_and_round_trip_through_json():
    c = circuit("simple")
    lap = rollout(FollowLineEnv(c), load_agent("pure-pursuit"), seed=0)
    profile = deviation_profile(lap, c)
    metrics = compute_metrics(lap, c, profile)
    assert isinstance(metrics.termination, Termination) and metrics.completed
    assert metrics.deviation_mae_m == pytest.approx(float(np.nanmean(profile.deviation_m)))
    assert profile.along_m[1] - profile.along_m[0] == 0.5
    assert LapMetrics.from_dict(metrics.as_dict()) == metrics
