"""The env's action modes (simeval/sim/actions.py): the native and the symmetric box, and
``to_action`` / ``from_action`` as inverses of each other in both, on the real env."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simeval import ENV_ID
from simeval.agents import load_agent
from simeval.env import ActionError, FollowLineEnv
from simeval.errors import UnknownNameError
from simeval.eval.rollout import rollout
from simeval.sim.actions import ACTION_MODES, ActionMapping, mode_of_box
from simeval.sim.vehicle import VehicleConfig
from tests.support import circuit

ENVS = {mode: FollowLineEnv(circuit("simple"), action=mode) for mode in ACTION_MODES}


def test_the_boxes_of_the_two_modes():
    native, symmetric = ENVS["native"].action_space, ENVS["symmetric"].action_space
    assert np.array_equal(native.low, [0.0, -1.0]) and np.array_equal(native.high, [1.0, 1.0])
    assert np.array_equal(symmetric.low, [-1.0, -1.0]) and np.array_equal(symmetric.high, [1.0, 1.0])
    assert native.dtype == symmetric.dtype == np.float32
    assert np.allclose(ENVS["symmetric"].from_action([-1.0, 0.0]), [0.0, 0.0])  # the box's ends: 0 and 25 m/s
    assert np.allclose(ENVS["symmetric"].from_action([0.0, -1.0]), [12.5, -8.0])
    assert np.allclose(ENVS["symmetric"].from_action([1.0, 1.0]), [25.0, 8.0])
    assert np.allclose(ENVS["native"].from_action([0.5, 0.5]), [12.5, 4.0])


def test_the_mode_is_a_registered_kwarg_and_a_bad_one_is_one_line():
    env = gymnasium.make(ENV_ID, circuit="simple", action="symmetric")
    assert np.array_equal(env.action_space.low, [-1.0, -1.0])
    env.close()
    with pytest.raises(UnknownNameError, match="unknown action mode 'symetric'. Did you mean 'symmetric'"):
        FollowLineEnv(circuit("simple"), action="symetric")


@settings(max_examples=200, deadline=None)
@given(mode=st.sampled_from(ACTION_MODES), v=st.floats(-100, 100), w=st.floats(-100, 100))
def test_from_action_inverts_to_action(mode, v, w):
    env = ENVS[mode]
    command = env.from_action(env.to_action(v, w))
    assert np.allclose(command, [v, w], rtol=1e-12, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(mode=st.sampled_from(ACTION_MODES), a=st.floats(-10, 10), b=st.floats(-10, 10))
def test_to_action_inverts_from_action(mode, a, b):
    env = ENVS[mode]
    assert np.allclose(env.to_action(*env.from_action(np.array([a, b]))), [a, b], rtol=1e-12, atol=1e-12)


def test_from_action_refuses_what_is_not_an_action():
    with pytest.raises(ActionError, match="shape"):
        ENVS["symmetric"].from_action([1.0, 2.0, 3.0])


def test_the_expert_drives_the_same_lap_in_both_modes():
    """The rollout speaks (v, w) through ``to_action``: the mode changes no trajectory (to float rounding)."""
    laps = {mode: rollout(FollowLineEnv(circuit("simple"), action=mode), load_agent("expert"), seed=0, max_steps=300)
            for mode in ACTION_MODES}
    assert len(laps["native"].x) == len(laps["symmetric"].x) == 300
    assert np.allclose(laps["native"].x, laps["symmetric"].x, atol=1e-9) and np.allclose(laps["native"].y, laps["symmetric"].y, atol=1e-9)


def test_a_saved_box_names_its_mode():
    assert mode_of_box([0.0, -1.0], [1.0, 1.0]) == "native"
    assert mode_of_box(np.float32([-1.0, -1.0]), np.float32([1.0, 1.0])) == "symmetric"
    assert mode_of_box([-2.0, -2.0], [2.0, 2.0]) is None
    assert mode_of_box([0.2, -1.0], [1.0, 1.0], VehicleConfig(min_speed_mps=5.0)) == "native"
    assert np.allclose(ActionMapping("symmetric", VehicleConfig(min_speed_mps=5.0)).from_action(np.array([-1.0, 0.0])), [5.0, 0.0])
