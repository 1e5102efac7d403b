"""Helpers shared by the tests: the real shipped circuits, loaded once (they are immutable)."""

from __future__ import annotations

import functools

import numpy as np

from simeval.track.catalogue import evaluation_circuits
from simeval.track.circuit import Circuit

TEST_CIRCUITS = tuple(evaluation_circuits())


@functools.cache
def circuit(name: str) -> Circuit:
    return Circuit.from_name(name)


def rollout_frames(count: int, circuit_name: str = "austin") -> np.ndarray:
    """``count`` camera frames of the expert driving a TRAINING circuit (every third step, so they
    differ): calibration data for tests that need no data set, never a test circuit."""
    from simeval.agents.expert import ExpertAgent
    from simeval.env import FollowLineEnv
    from simeval.eval.rollout import rollout

    frames: list[np.ndarray] = []
    lap = rollout(FollowLineEnv(circuit(circuit_name)), ExpertAgent(), seed=0, max_steps=count * 3,
                  on_step=lambda step: frames.append(step.observation))
    assert lap.termination is None, lap.termination
    return np.stack(frames[::3])
