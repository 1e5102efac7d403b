"""Agents that misbehave on purpose, loaded by the CLI as `tests.bad_agents:Class`."""

from __future__ import annotations

from simeval.agents.base import AgentInfo
from simeval.agents.expert import ExpertAgent


class NanAfterFiveAgent(ExpertAgent):
    """Drives like the expert, then returns NaN: a model whose output blew up mid-lap."""

    info = AgentInfo(name="nan-after-five", framework="numpy")

    def reset(self, circuit=None) -> None:
        super().reset(circuit)
        self.calls = 0

    def act(self, observation, info):
        self.calls += 1
        return (float("nan"), 0.0) if self.calls > 5 else super().act(observation, info)


class CrashAfterFiveAgent(NanAfterFiveAgent):
    """Raises mid-lap: a backend that fails after a few frames."""

    info = AgentInfo(name="crash-after-five", framework="numpy")

    def act(self, observation, info):
        if self.calls >= 5:
            raise RuntimeError("inference backend lost its session")
        return super().act(observation, info)
