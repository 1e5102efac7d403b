"""Helpers shared by the tests: the real shipped circuits, loaded once (they are immutable)."""

from __future__ import annotations

import functools

from simeval.circuit import Circuit

TEST_CIRCUITS = ("simple", "montreal", "montmelo")


@functools.cache
def circuit(name: str) -> Circuit:
    return Circuit.from_name(name)


def rollout_frames(count: int, circuit_name: str = "austin"):
    """``count`` camera frames of the expert driving a TRAINING circuit (every third step, so they
    differ): calibration data for tests that must run without the data set (CI), never a test
    circuit."""
    import numpy as np

    from simeval.agents.expert import ExpertAgent
    from simeval.env import FollowLineEnv

    env = FollowLineEnv(circuit(circuit_name))
    agent = ExpertAgent()
    obs, info = env.reset(seed=0)
    agent.reset(env.circuit)
    frames = []
    for _ in range(count * 3):
        frames.append(obs)
        obs, _, terminated, truncated, info = env.step(env.to_action(*agent.act(obs, info)))
        assert not (terminated or truncated)
    return np.stack(frames[::3])
