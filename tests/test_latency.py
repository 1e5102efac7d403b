"""Latency mode: a fixed latency is bit-reproducible, and the published phenomenon stays visible.

With the 120 ms of the unoptimized TF PilotNet in Gazebo, torch-fp32 leaves montreal's road
within the first few percent of the lap; the same model in lockstep (L = 0) completes it.
"""

from __future__ import annotations

import pytest

from simeval.agents import load_agent
from simeval.eval.metrics import compute_metrics
from simeval.eval.run import RunConfig, make_env, run_episode

pytest.importorskip("torch")


def fixed_latency_lap(latency_ms: float, circuit: str = "montreal"):
    """One torch-fp32 lap with a fixed latency, from a freshly loaded agent."""
    config = RunConfig(agent="torch-fp32", circuit=circuit, timing="latency", latency_ms=latency_ms, plot=False)
    env, agent = make_env(config), load_agent(config.agent)
    try:
        record = run_episode(env, agent, config)
        return record, compute_metrics(record, env.circuit)
    finally:
        agent.close()
        env.close()


def test_a_fixed_latency_lap_is_bit_reproducible():
    first, first_metrics = fixed_latency_lap(80.0)
    second, second_metrics = fixed_latency_lap(80.0)
    assert first_metrics.completed is True, first_metrics.termination
    assert first.path.tobytes() == second.path.tobytes()
    assert (first.v_cmd, first.w_cmd) == (second.v_cmd, second.w_cmd)
    deterministic = ("percentage_completed", "lap_time_s", "deviation_mae_m", "deviation_max_m", "termination", "steps")
    assert {k: getattr(first_metrics, k) for k in deterministic} == {k: getattr(second_metrics, k) for k in deterministic}


def test_torch_fp32_fails_montreal_at_120_ms_and_completes_it_at_0():
    _, slow = fixed_latency_lap(120.0)
    _, instant = fixed_latency_lap(0.0)
    assert instant.completed is True and instant.termination == "lap_completed"
    assert slow.completed is False, f"torch-fp32 completed montreal with 120 ms latency: {slow}"
    assert slow.termination == "off_track" and slow.percentage_completed < 20.0
