"""Agents that misbehave on purpose, loaded by the CLI as `tests.bad_agents:Class`."""

from __future__ import annotations

from simeval.agents.base import Agent, AgentInfo
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


class RaisesInInit(ExpertAgent):
    """A constructor that fails: a model file that cannot be opened, found by the user's own code."""

    info = AgentInfo(name="raises-in-init", framework="numpy")

    def __init__(self) -> None:
        raise RuntimeError("weights file is corrupt")


class RaisesInReset(ExpertAgent):
    info = AgentInfo(name="raises-in-reset", framework="numpy")

    def reset(self, circuit=None) -> None:
        if circuit is not None:  # the expert's constructor resets it without one
            raise ValueError("unknown circuit geometry")
        super().reset(circuit)


class RaisesInClose(ExpertAgent):
    info = AgentInfo(name="raises-in-close", framework="numpy")

    def close(self) -> None:
        raise OSError("session already released")


class NoInfo(Agent):
    """An agent that forgot its ``info``."""

    def act(self, observation, info):
        return 1.0, 0.0


class ExitsMidLap(NanAfterFiveAgent):
    """Calls ``sys.exit(0)`` on its sixth step: a library that 'handles' an error by exiting."""

    info = AgentInfo(name="exits-mid-lap", framework="numpy")

    def act(self, observation, info):
        if self.calls >= 5:
            import sys

            sys.exit(0)
        return super().act(observation, info)


class DiesMidLap(NanAfterFiveAgent):
    """Kills its own process on its sixth step with the signal named by ``SIGNAL``: a segfault in a
    native library, or the kernel's out-of-memory killer."""

    info = AgentInfo(name="dies-mid-lap", framework="numpy")
    SIGNAL = "SIGSEGV"

    def act(self, observation, info):
        if self.calls >= 5:
            import os
            import signal

            os.kill(os.getpid(), getattr(signal, self.SIGNAL))
        return super().act(observation, info)


class KilledMidLap(DiesMidLap):
    SIGNAL = "SIGKILL"


class HardExitMidLap(NanAfterFiveAgent):
    """``os._exit(3)`` on its sixth step: no cleanup, no exception, the process is just gone."""

    info = AgentInfo(name="hard-exit-mid-lap", framework="numpy")

    def act(self, observation, info):
        if self.calls >= 5:
            import os

            os._exit(3)
        return super().act(observation, info)


class SlowAgent(ExpertAgent):
    """The expert at 20 ms a decision: a lap that lasts long enough to be interrupted."""

    info = AgentInfo(name="slow", framework="numpy")

    def act(self, observation, info):
        import time

        time.sleep(0.02)
        return super().act(observation, info)


class CountingAgent(ExpertAgent):
    """The expert, appending its process id to ``$SIMEVAL_TEST_LOADS`` each time it is built: how
    often a sweep loads an agent, and where."""

    info = AgentInfo(name="counting", framework="numpy")

    def __init__(self) -> None:
        import os

        super().__init__()
        with open(os.environ["SIMEVAL_TEST_LOADS"], "a") as handle:
            handle.write(f"{os.getpid()}\n")


class CountingAgentToo(CountingAgent):
    info = AgentInfo(name="counting-too", framework="numpy")
