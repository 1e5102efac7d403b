"""ONNX graphs on ONNX Runtime's CPU provider (format ``onnx``): ``onnx-fp32`` and ``onnx-int8``.

Driving needs only ``onnxruntime``: these agents never import torch, although their graphs were
exported from the torch network (``simeval.build.optimize.onnx_export``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from simeval.agents.card import ModelCard
from simeval.agents.formats import Runtime
from simeval.agents.pilotnet import INPUT_SHAPE
from simeval.errors import AgentError, first_line

ARTIFACT = "model.onnx"


def session_options(threads: int = 1) -> ort.SessionOptions:
    """One intra-op thread by default (the agents' setting, stated in the cards); all graph
    optimizations on; ONNX Runtime's own warnings kept off the terminal."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def load_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """An ONNX Runtime CPU session for a PilotNet graph; a bad file fails with one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise AgentError(f"{path}: no such model file")
    try:
        session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors for a bad file
        reason = first_line(exc)
        raise AgentError(f"{path}: not a loadable ONNX model ({reason})") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or tuple(inputs[0].shape[1:]) != INPUT_SHAPE or len(outputs) != 1 or outputs[0].shape[-1] != 2:
        got = [(i.name, i.shape) for i in inputs], [(o.name, o.shape) for o in outputs]
        raise AgentError(f"{path}: expected a (N, 66, 200, 3) -> (N, 2) PilotNet graph, got {got[0]} -> {got[1]}")
    return session


class OnnxRuntime(Runtime):
    """An ONNX PilotNet graph, (N, 66, 200, 3) -> (N, 2), on ONNX Runtime's CPU provider."""

    FRAMEWORK = "onnxruntime"

    def __init__(self, path: Path, *, threads: int, card: ModelCard | None, name: str) -> None:
        self.session = load_session(path, threads)
        self._input = self.session.get_inputs()[0].name

    def infer(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return self.session.run(None, {self._input: np.ascontiguousarray(batch, dtype=np.float32)})[0]
