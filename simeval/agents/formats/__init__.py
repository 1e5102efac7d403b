"""Model formats: one runtime per kind of model file, which loads the file and runs it.

A ``Runtime`` knows how to read one format and call it on float32 NHWC batches (from
``simeval.agents.pilotnet.preprocess``), returning (n, 2) commands in m/s and rad/s; the model
agent (``simeval.agents.model``) owns what the tensors mean. Each runtime lives in its own module
and imports its framework there, so a name is resolved to a class only when a model of that
format is loaded (``--agent expert`` imports none).
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from numpy.typing import NDArray

from simeval.errors import UnavailableError, UnknownNameError

if TYPE_CHECKING:
    from simeval.agents.card import ModelCard


@dataclass(frozen=True)
class Format:
    """Where a format's runtime lives and what it needs installed."""

    runtime: str
    """'module:Class' of its ``Runtime``."""
    modules: tuple[str, ...]
    """Python modules it imports (checked without importing them)."""
    extra: str
    """The pip extra that installs them: ``pip install 'simeval[<extra>]'``."""


FORMATS: dict[str, Format] = {
    "torch-state-dict": Format("simeval.agents.formats.torch_state_dict:StateDictRuntime", ("torch",), "torch"),
    "torchscript": Format("simeval.agents.formats.torchscript:TorchScriptRuntime", ("torch",), "torch"),
    "keras": Format("simeval.agents.formats.keras_model:KerasRuntime", ("tensorflow", "keras"), "tf"),
    "onnx": Format("simeval.agents.formats.onnx_model:OnnxRuntime", ("onnxruntime",), "onnx"),
    "tflite": Format("simeval.agents.formats.litert:LiteRTRuntime", ("ai_edge_litert",), "litert"),
    "tensorrt": Format("simeval.agents.formats.tensorrt_engine:TensorRTRuntime", ("tensorrt",), "tensorrt"),
}

SUFFIXES: dict[str, str] = {".pt": "torch-state-dict", ".keras": "keras"}
"""The format of a user's model file, by suffix. Only formats that cannot carry code are here: a
TorchScript file is a program, so simeval loads only its own, checked against their cards."""


class Runtime(ABC):
    """One loaded model file: ``infer`` runs a float32 NHWC batch, returning (n, 2) in m/s, rad/s."""

    FRAMEWORK: ClassVar[str]
    """Recorded as the agent's framework ('torch', 'tensorflow', 'onnxruntime', ...)."""
    BATCHED: ClassVar[bool] = True
    """Whether ``infer`` takes a whole batch in one call (else ``infer_batch`` runs frame by frame)."""
    device: str = "cpu"

    @classmethod  # noqa: B027 - an optional hook: most runtimes need nothing beyond their module
    def check_available(cls, name: str) -> None:
        """Raise ``AgentError`` (what is missing, what runs here) before any file is read."""

    @abstractmethod
    def __init__(self, path: Path, *, threads: int, card: ModelCard | None, name: str) -> None:
        """Load ``path`` for inference on ``threads`` CPU threads; ``card`` is the shipped
        artifact's card (None for a user's file); ``name`` names the model in errors."""

    @abstractmethod
    def infer(self, batch: NDArray[np.float32]) -> NDArray[np.floating]:
        """The model call alone: what a run's ``inference_time_*`` measures."""

    def infer_batch(self, batch: NDArray[np.float32]) -> NDArray[np.floating]:
        """Many frames, (n, 66, 200, 3) -> (n, 2): one call where the runtime batches."""
        return self.infer(batch) if self.BATCHED else one_by_one(self.infer, batch)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions, engines or device memory."""


def one_by_one(infer: Callable[[NDArray[np.float32]], NDArray[np.floating]], batch: NDArray[np.float32]) -> NDArray[np.floating]:
    """``infer`` on each frame of ``batch`` alone, the results stacked: (n, 2)."""
    return np.concatenate([np.asarray(infer(batch[i : i + 1])).reshape(1, 2) for i in range(len(batch))])


def missing(format_name: str) -> str | None:
    """What this machine lacks to run ``format_name`` (a module that is not installed), or None.

    Checks installation only (nothing is imported); hardware is checked when a model loads.
    """
    spec = get_format(format_name)
    absent = [m for m in spec.modules if importlib.util.find_spec(m) is None]
    return f"{', '.join(absent)} not installed (pip install 'simeval[{spec.extra}]')" if absent else None


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise UnknownNameError("model format", name, FORMATS)
    return FORMATS[name]


def runtime_class(format_name: str) -> type[Runtime]:
    """The runtime of a format, imported now; a missing framework is one ``AgentError`` line."""
    module_name, _, class_name = get_format(format_name).runtime.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnavailableError(
            f"{format_name} models need {exc.name or exc}; install it with "
            f"`pip install 'simeval[{FORMATS[format_name].extra}]'`"
        ) from None
    return getattr(module, class_name)
