"""The model agent: a driving network from one model file, whatever its format.

It owns what the tensors mean (the camera frame through ``preprocess`` in, (v m/s, w rad/s) out)
and times the model call; a runtime (``simeval.agents.formats``) only loads the file and runs it.
A shipped variant is read from ``agents/<name>/`` after its sha256 is checked against its card; a
user's file is loaded as untrusted input, by a runtime that never runs code from it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.base import Agent, AgentInfo
from simeval.agents.card import load_verified, sha256_of
from simeval.agents.formats import Runtime, one_by_one, runtime_class
from simeval.agents.pilotnet import INPUT_SHAPE, preprocess
from simeval.agents.variants import Variant
from simeval.errors import AgentError

WARM_UP_CALLS = 3


class ModelAgent(Agent):
    """Pre-process the frame, time the runtime's call, return (v, w).

    Build it with ``shipped(variant)`` or ``from_file(path, format)``.
    """

    def __init__(self, runtime: Runtime, info: AgentInfo, *, frame_by_frame: bool = False):
        super().__init__()
        self.runtime = runtime
        self.info = info
        self.frame_by_frame = frame_by_frame
        self.warm_up()

    @classmethod
    def shipped(cls, variant: Variant, threads: int = 1) -> ModelAgent:
        """The shipped artifact of ``variant``, sha256-checked against its card."""
        runtime_cls = runtime_class(variant.format)
        runtime_cls.check_available(variant.name)
        card, path = load_verified(variant.name)
        runtime = runtime_cls(path, threads=threads, card=card, name=variant.name)
        info = _info(variant.name, runtime, variant.precision, path)
        return cls(runtime, info, frame_by_frame=variant.frame_by_frame)

    @classmethod
    def from_file(cls, path: Path, format_name: str, threads: int = 1) -> ModelAgent:
        """A user's model file of ``format_name`` (fp32, no card)."""
        path = Path(path)
        if not path.is_file():
            raise AgentError(f"{path}: no such model file")
        runtime_cls = runtime_class(format_name)
        runtime_cls.check_available(str(path))
        runtime = runtime_cls(path, threads=threads, card=None, name=str(path))
        return cls(runtime, _info(str(path), runtime, "fp32", path))

    def warm_up(self, calls: int = WARM_UP_CALLS) -> None:
        """Run the model on a blank frame a few times at load, so that one-off costs (TensorFlow's
        tracing, lazy kernel selection) are not charged to the first frame of a lap, where a
        measured-latency run would count them as latency."""
        blank = np.zeros((1, *INPUT_SHAPE), dtype=np.float32)
        for _ in range(calls):
            self.runtime.infer(blank)

    @property
    def batched(self) -> bool:
        """Whether ``infer_batch`` runs a batch in one call (else frame by frame)."""
        return self.runtime.BATCHED and not self.frame_by_frame

    def act(self, observation: NDArray[np.uint8], info: dict[str, Any]) -> tuple[float, float]:
        batch = preprocess(observation[None])
        start = time.perf_counter()
        out = self.runtime.infer(batch)
        self.last_inference_s = time.perf_counter() - start
        v, w = np.asarray(out, dtype=np.float64).reshape(-1)[:2]
        return float(v), float(w)

    def infer(self, batch: NDArray[np.float32]) -> NDArray[np.floating]:
        """The model call alone on pre-processed frames (what ``inference_time_*`` measures)."""
        return self.runtime.infer(batch)

    def infer_batch(self, batch: NDArray[np.float32]) -> NDArray[np.floating]:
        """Many pre-processed frames, (n, 66, 200, 3) -> (n, 2)."""
        if self.frame_by_frame:
            return one_by_one(self.runtime.infer, batch)
        return self.runtime.infer_batch(batch)

    def close(self) -> None:
        self.runtime.close()


def _info(name: str, runtime: Runtime, precision: str, path: Path) -> AgentInfo:
    return AgentInfo(
        name=name, framework=runtime.FRAMEWORK, precision=precision, artifact=path,
        artifact_bytes=path.stat().st_size, artifact_sha256=sha256_of(path), device=runtime.device,
    )
