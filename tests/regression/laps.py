"""One lap per (agent, circuit) for the whole test session: the gate and the model-file laps
compare against the same torch-fp32 laps without driving them twice."""

from __future__ import annotations

import functools

import pytest

from simeval.agents import load_agent
from simeval.agents.base import Agent
from simeval.agents.formats import missing
from simeval.agents.variants import BY_NAME
from simeval.env import EnvConfig, FollowLineEnv
from simeval.eval.metrics import LapMetrics, compute_metrics
from simeval.eval.rollout import LapRecord
from simeval.eval.run import RunConfig, run_episode
from tests.support import circuit


@functools.cache
def agent(name: str) -> Agent:
    """One agent per name or model path: loading a model once is what a user's run does too (a
    model file is the test's own, hence trusted)."""
    if name in BY_NAME and missing(BY_NAME[name].format):
        pytest.skip(f"{name}: {missing(BY_NAME[name].format)}")
    return load_agent(name, trust_model=True)


@functools.cache
def lap(agent_name: str, circuit_name: str) -> tuple[LapRecord, LapMetrics]:
    """``agent_name`` drives ``circuit_name`` from the spawn in lockstep, seeing its own camera."""
    driver = agent(agent_name)
    env = FollowLineEnv(circuit(circuit_name), EnvConfig(camera=driver.camera))
    try:
        record = run_episode(env, driver, RunConfig(agent=agent_name, circuit=circuit_name))
    finally:
        env.close()
    return record, compute_metrics(record, env.circuit)


def where(agent_name: str, circuit_name: str) -> str:
    """How far the lap got and why it stopped: the message of a failed lap assert."""
    record, metrics = lap(agent_name, circuit_name)
    return (
        f"{agent_name} on {circuit_name}: {metrics.percentage_completed:.1f}% of the lap, "
        f"stopped by {metrics.termination} at t={record.sim_time_s:.1f} s"
        + (f" ({record.error})" if record.error else "")
    )
