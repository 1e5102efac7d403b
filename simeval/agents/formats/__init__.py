"""Model formats: one runtime per kind of model file, which loads the file and runs it.

A ``Runtime`` reads one format and runs the input tensor it is given, returning every output
tensor; it names its inputs and outputs (``TensorInfo``) so that a contract that does not fit the
model fails at load. What the tensors mean belongs to the model contract and the model agent
(``simeval.agents.contract``, ``simeval.agents.model``), as DonkeyCar's pilots own their
interpreters' meaning. Each runtime lives in its own module and imports its framework there, so a
format is resolved to a class only when a model of it is loaded (``--agent expert`` imports none).
"""

from __future__ import annotations

import importlib
import importlib.util
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from numpy.typing import NDArray

from simeval.errors import UnavailableError, UnknownNameError

if TYPE_CHECKING:
    from simeval.agents.card import ModelCard
    from simeval.agents.contract import Artifact, RuntimeSpec


@dataclass(frozen=True)
class Format:
    """Where a format's runtime lives, what it needs installed, and whether its files are programs."""

    runtime: str
    """'module:Class' of its ``Runtime``."""
    modules: tuple[str, ...]
    """Python modules it imports (checked without importing them)."""
    extra: str
    """The pip extra that installs them: ``pip install 'simeval[<extra>]'``."""
    carries_code: bool = False
    """Loading a file of this format can run code from it: by path only with ``--trust-model``."""
    why: str = ""
    """Why it carries code, for the refusal."""


FORMATS: dict[str, Format] = {
    "onnx": Format("simeval.agents.formats.onnx_model:OnnxRuntime", ("onnxruntime",), "onnx"),
    "tflite": Format("simeval.agents.formats.litert:LiteRTRuntime", ("ai_edge_litert",), "litert"),
    "torch-state-dict": Format("simeval.agents.formats.torch_state_dict:StateDictRuntime", ("torch",), "torch"),
    "keras": Format("simeval.agents.formats.keras_model:KerasRuntime", ("tensorflow", "keras"), "tf"),
    "torchscript": Format(
        "simeval.agents.formats.torchscript:TorchScriptRuntime", ("torch",), "torch", True,
        "a TorchScript file is a program (TorchScript code calling torch operators)",
    ),
    "torch-export": Format(
        "simeval.agents.formats.torch_export:TorchExportRuntime", ("torch",), "torch", True,
        "torch.export.load unpickles parts of a .pt2 file without weights_only (it can run code)",
    ),
    "tf-savedmodel": Format(
        "simeval.agents.formats.tf_savedmodel:SavedModelRuntime", ("tensorflow",), "tf", True,
        "a SavedModel is a TensorFlow program (its ops can read and write files)",
    ),
    "tensorrt-engine": Format(
        "simeval.agents.formats.tensorrt_engine:EngineFileRuntime", ("tensorrt",), "tensorrt", True,
        "a serialized TensorRT engine holds native code for the GPU",
    ),
    "tensorrt": Format("simeval.agents.formats.tensorrt_engine:TensorRTRuntime", ("tensorrt",), "tensorrt"),
    "sb3": Format(
        "simeval.agents.formats.sb3_policy:SB3PolicyRuntime", ("stable_baselines3", "torch"), "rl", True,
        "a Stable-Baselines3 .zip holds cloudpickled Python objects (the policy's class, settings and spaces), "
        "which run code when unpickled",
    ),
}
"""Every format a model file can have. ``tensorrt`` is simeval's own TensorRT route (an ONNX graph
built into a cached engine at load); ``tensorrt-engine`` is a user's serialized engine."""

SUFFIXES: dict[str, str] = {
    ".onnx": "onnx", ".tflite": "tflite", ".pt": "torch-state-dict", ".pth": "torch-state-dict",
    ".keras": "keras", ".h5": "keras", ".torchscript": "torchscript", ".ts": "torchscript", ".jit": "torchscript",
    ".pt2": "torch-export", ".engine": "tensorrt-engine", ".plan": "tensorrt-engine", ".zip": "sb3",
}
"""The format of a user's model file without a contract, by suffix (a folder holding
``saved_model.pb`` is a tf-savedmodel; a ``.zip`` is what Stable-Baselines3's ``model.save`` writes)."""


def format_of(path: Path) -> str | None:
    """The format of a model file, from its name; a ``.pt``/``.pth`` file is looked into, since
    both PyTorch state dicts and TorchScript files carry those names. None when the name says none."""
    path = Path(path)
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return "tf-savedmodel"
    fmt = SUFFIXES.get(path.suffix.lower())
    if fmt == "torch-state-dict" and _is_torchscript(path):
        return "torchscript"
    return fmt


def _is_torchscript(path: Path) -> bool:
    """Whether a PyTorch zip archive holds TorchScript code (``<archive>/code/``), which a state dict
    saved with ``torch.save`` never does. Reads the zip's directory only."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any(part == "code" for name in archive.namelist() for part in name.split("/")[1:2])
    except (OSError, zipfile.BadZipFile):
        return False


@dataclass(frozen=True)
class TensorInfo:
    """One input or output tensor of a loaded model."""

    name: str
    shape: tuple[int | None, ...] | None
    """Its shape, batch first; None for a dimension (or the whole shape) the model does not fix."""
    dtype: str
    """numpy dtype name ('float32', 'uint8', 'int8', ...)."""
    quantization: tuple[float, int] | None = None
    """(scale, zero point) of a quantized tensor."""

    def describe(self) -> str:
        dims = "?" if self.shape is None else "(" + ", ".join("N" if d is None else str(d) for d in self.shape) + ")"
        return f"{self.name} {dims} {self.dtype}"


class Runtime(ABC):
    """One loaded model file: ``run`` takes the input tensor and returns every output, in order."""

    FRAMEWORK: ClassVar[str]
    """Recorded as the agent's framework ('torch', 'tensorflow', 'onnxruntime', ...)."""
    BATCHED: ClassVar[bool] = True
    """Whether ``run`` takes a batch of several frames in one call."""
    device: str = "cpu"
    inputs: tuple[TensorInfo, ...] = ()
    outputs: tuple[TensorInfo, ...] = ()

    @classmethod  # noqa: B027 - an optional hook: most runtimes need nothing beyond their module
    def check_available(cls, name: str) -> None:
        """Raise ``UnavailableError`` (what is missing) before any file is read."""

    @abstractmethod
    def __init__(self, artifact: Artifact, *, spec: RuntimeSpec, card: ModelCard | None, name: str) -> None:
        """Load ``artifact.path`` to run as ``spec`` says; ``card`` is a shipped model's card (None
        for a user's file); ``name`` names the model in errors."""

    @abstractmethod
    def run(self, batch: NDArray) -> list[NDArray]:
        """The model call alone: what a run's ``inference_time_*`` measures."""

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
    absent = [m for m in spec.modules if not _installed(m)]
    return f"{', '.join(absent)} not installed (pip install 'simeval[{spec.extra}]')" if absent else None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module blocked or half-imported counts as absent
        return False


def get_format(name: str) -> Format:
    if name not in FORMATS:
        raise UnknownNameError("model format", name, FORMATS)
    return FORMATS[name]


def runtime_class(format_name: str) -> type[Runtime]:
    """The runtime of a format, imported now; a missing framework is one ``UnavailableError`` line."""
    module_name, _, class_name = get_format(format_name).runtime.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnavailableError(
            f"{format_name} models need {exc.name or exc}; install it with "
            f"`pip install 'simeval[{FORMATS[format_name].extra}]'`"
        ) from None
    return getattr(module, class_name)


def tensor_infos(names: Sequence[str], shapes: Sequence[Sequence[object] | None], dtypes: Sequence[object],
                 quantizations: Sequence[tuple[float, int] | None] | None = None) -> tuple[TensorInfo, ...]:
    """``TensorInfo``s from a framework's lists (dimensions that are not positive ints become None)."""
    quantizations = quantizations or [None] * len(names)
    return tuple(
        TensorInfo(str(name), None if shape is None else tuple(d if isinstance(d, int) and d > 0 else None for d in shape),
                   np.dtype(dtype).name, quant)
        for name, shape, dtype, quant in zip(names, shapes, dtypes, quantizations, strict=True)
    )
