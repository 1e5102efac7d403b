"""The gate: every shipped agent completes every test circuit from the spawn, in lockstep.

The agents are the experts and every shipped variant of ``simeval.agents.variants`` (the TensorRT
ones are built on a GPU and not shipped). A failure names the agent, the circuit, how far it got
and why it stopped; an agent whose framework is not installed is skipped, saying which.
"""

from __future__ import annotations

import pytest

from simeval.agents.registry import EXPERTS, shipped
from simeval.agents.variants import VARIANTS
from tests.regression.laps import lap, where
from tests.support import TEST_CIRCUITS

MODELS = tuple(v.name for v in VARIANTS if shipped(v.name))
EXPERT_MAX_DEVIATION_MAE_M = 0.3


@pytest.mark.parametrize("circuit_name", TEST_CIRCUITS)
@pytest.mark.parametrize("agent_name", (*EXPERTS, *MODELS))
def test_agent_completes_the_lap(agent_name, circuit_name):
    _, metrics = lap(agent_name, circuit_name)
    assert metrics.completed, where(agent_name, circuit_name)
    if agent_name in EXPERTS:
        assert metrics.deviation_mae_m <= EXPERT_MAX_DEVIATION_MAE_M, (
            f"{where(agent_name, circuit_name)}; deviation MAE {metrics.deviation_mae_m:.3f} m"
        )
