"""The gate: every shipped agent completes every test circuit from the spawn, in lockstep.

The agents are the experts and every shipped variant of ``simeval.agents.variants`` (the TensorRT
ones are built on a GPU and not shipped). A failure names the agent, the circuit, how far it got
and why it stopped; an agent whose framework is not installed is skipped, saying which.
"""

from __future__ import annotations

import functools

import pytest

from simeval.agents import load_agent
from simeval.agents.formats import missing
from simeval.agents.registry import EXPERTS, shipped
from simeval.agents.variants import BY_NAME, VARIANTS
from simeval.env import FollowLineEnv
from simeval.eval.metrics import compute_metrics
from simeval.eval.run import RunConfig, run_episode
from tests.support import TEST_CIRCUITS, circuit

MODELS = tuple(v.name for v in VARIANTS if shipped(v.name))
EXPERT_MAX_DEVIATION_MAE_M = 0.3


@functools.cache
def agent(name: str):
    """One agent per name for the whole gate: loading a model once is what a user's run does too."""
    if name in BY_NAME and missing(BY_NAME[name].format):
        pytest.skip(f"{name}: {missing(BY_NAME[name].format)}")
    return load_agent(name)


@pytest.mark.parametrize("circuit_name", TEST_CIRCUITS)
@pytest.mark.parametrize("agent_name", (*EXPERTS, *MODELS))
def test_agent_completes_the_lap(agent_name, circuit_name):
    c = circuit(circuit_name)
    env = FollowLineEnv(c)
    record = run_episode(env, agent(agent_name), RunConfig(agent=agent_name, circuit=circuit_name))
    metrics = compute_metrics(record, c)
    where = (
        f"{agent_name} on {circuit_name}: {metrics.percentage_completed:.1f}% of the lap, "
        f"stopped by {metrics.termination} at t={record.sim_time_s:.1f} s"
        + (f" ({record.error})" if record.error else "")
    )
    assert metrics.completed, where
    if agent_name in EXPERTS:
        assert metrics.deviation_mae_m <= EXPERT_MAX_DEVIATION_MAE_M, f"{where}; deviation MAE {metrics.deviation_mae_m:.3f} m"
