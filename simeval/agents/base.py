"""The agent protocol: what the runner asks of every driver, from the expert to a TensorRT engine."""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from simeval.sim.camera import CameraConfig

if TYPE_CHECKING:
    from simeval.track.circuit import Circuit


@dataclass(frozen=True)
class AgentInfo:
    """Metadata that the runner writes beside an agent's results."""

    name: str
    framework: str
    """'numpy' for the experts; 'torch', 'tensorflow', 'tensorrt', ... for models."""
    precision: str = "n/a"
    """'fp32', 'fp16', 'int8', or 'n/a' for the experts."""
    artifact: Path | None = None
    artifact_bytes: int | None = None
    artifact_sha256: str | None = None
    device: str = "cpu"
    privileged: bool = False
    """True when the agent reads the true state (``info`` and the circuit), not only the frame."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Every setting that changes how the agent drives (an expert's gains), for config.json."""

    def as_dict(self) -> dict[str, Any]:
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(self).items()}


class Agent(ABC):
    """A driver: ``act(frame, info) -> (v, w)``.

    Learned agents must use only ``observation``; privileged ones may read ``info`` (the env's
    state) and the circuit given at ``reset``. ``last_inference_s`` is the wall time of the model
    call alone in the last ``act`` (for the experts, the whole decision).
    """

    info: AgentInfo

    def __init__(self) -> None:
        self.last_inference_s = float("nan")

    @property
    def camera(self) -> CameraConfig:
        """The camera image this agent drives from, which the env renders: the 66x200 frame of the
        published pipeline unless the agent (a model's contract) asks for the whole sensor image."""
        return CameraConfig()

    def reset(self, circuit: Circuit) -> None:  # noqa: B027 - optional hook
        """Called before each episode with the circuit it runs on."""

    @abstractmethod
    def act(self, observation: NDArray[np.uint8], info: dict[str, Any]) -> tuple[float, float]:
        """The command (v m/s, w rad/s) for this frame."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions, engines or threads."""


def describe_failure(exc: BaseException) -> str:
    """One line for what an agent raised: ``Type: message``, or the ``sys.exit`` it called."""
    if isinstance(exc, SystemExit):
        return f"the agent called sys.exit({exc.code!r})"
    if isinstance(exc, AgentFailed):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def close_agent(agent: Agent) -> str | None:
    """Close ``agent``; what its ``close`` raised, described, or None (a run's results are written
    by then: the caller reports it)."""
    try:
        agent.close()
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the agent's own failure, reported by the caller
        return describe_failure(exc)
    return None


class AgentFailed(Exception):
    """An agent's failure outside ``act``, already described in full (``FailedAgent``'s)."""


class FailedAgent(Agent):
    """Stands in for an agent whose constructor raised, so that the run is recorded like any other
    agent failure (termination 'agent_error', results written) instead of ending in a traceback:
    every episode ends before its first step, with the reason."""

    def __init__(self, name: str, error: BaseException) -> None:
        super().__init__()
        self.reason = f"the agent's constructor raised {describe_failure(error)}"
        self.info = AgentInfo(name=name, framework="unknown", settings={"error": self.reason})

    def reset(self, circuit: Circuit) -> None:
        raise AgentFailed(self.reason)

    def act(self, observation: NDArray[np.uint8], info: dict[str, Any]) -> tuple[float, float]:
        raise AgentFailed(self.reason)
