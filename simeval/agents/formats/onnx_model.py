"""ONNX graphs on ONNX Runtime (format ``onnx``): ``onnx-fp32``, ``onnx-int8``, or a user's ``.onnx`` file.

Driving needs only ``onnxruntime``: these agents never import torch, although their graphs were
exported from the torch network (``simeval.build.optimize.onnx_export``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from simeval.agents.card import ModelCard
from simeval.agents.contract import Artifact, RuntimeSpec
from simeval.agents.formats import Runtime, tensor_infos
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


ONNX_TYPES = {"tensor(float)": "float32", "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(float16)": "float16",
              "tensor(double)": "float64", "tensor(int32)": "int32", "tensor(int64)": "int64"}


def load_session(path: Path, threads: int = 1, device: str = "cpu") -> ort.InferenceSession:
    """An ONNX Runtime session (CPU, or CUDA where installed); a bad file fails with one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise AgentError(f"{path}: no such model file")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device == "cuda" else ["CPUExecutionProvider"]
    try:
        return ort.InferenceSession(str(path), session_options(threads), providers=providers)
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors for a bad file
        raise AgentError(f"{path}: not a loadable ONNX model ({first_line(exc)})") from None


def _infos(args: list) -> tuple:
    return tensor_infos([a.name for a in args], [a.shape for a in args], [ONNX_TYPES.get(a.type, "float32") for a in args])


class OnnxRuntime(Runtime):
    """An ONNX graph on ONNX Runtime's CPU provider (CUDA with ``device = "cuda"`` where installed)."""

    FRAMEWORK = "onnxruntime"

    def __init__(self, artifact: Artifact, *, spec: RuntimeSpec, card: ModelCard | None, name: str) -> None:
        self.session = load_session(Path(artifact.path), spec.threads, spec.device)
        self.device = "cuda" if self.session.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.inputs, self.outputs = _infos(self.session.get_inputs()), _infos(self.session.get_outputs())
        self._input = self.inputs[0].name if self.inputs else ""

    def run(self, batch: NDArray) -> list[NDArray]:
        return self.session.run(None, {self._input: np.ascontiguousarray(batch)})
