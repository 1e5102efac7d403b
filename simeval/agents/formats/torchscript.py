"""TorchScript files (format ``torchscript``): simeval's int8 PilotNets ``torch-dynamic``,
``torch-static`` and ``torch-qat`` (built with ``torch.ao.quantization`` by ``simeval.optimize``),
and a user's TorchScript PilotNet (DeepLearningStudio's optimisation script writes them).

A TorchScript file holds the whole program (the int8 kernels' packed weights included), so it
loads without any Python class. It is also a program: simeval loads its own files only when their
``simeval.json`` names this format and their sha256 matches their card, and a user's file only with
``--trust-model``. The quantized kernels are PyTorch's x86 engine (FBGEMM / oneDNN), which the
runtime selects before loading.

``torch.jit`` and quantized tensors are deprecated in torch 2.13; the warnings of exactly the
calls made on purpose are silenced where they are made (``deprecated_apis``), with the reason
beside each.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from numpy.typing import NDArray

from simeval.agents.card import ModelCard
from simeval.agents.contract import Artifact, RuntimeSpec
from simeval.agents.formats import Runtime, tensor_infos
from simeval.agents.pilotnet import INPUT_SHAPE
from simeval.errors import AgentError, UnavailableError, first_line

ARTIFACT = "model.torchscript"
FORMAT = "simeval-torch-int8/1"
"""Written into every artifact (extra file ``simeval.json``); the loader refuses other files."""
META_FILE = "simeval.json"
ENGINE = "x86"
"""PyTorch's x86 quantized engine: FBGEMM and oneDNN int8 kernels (needs an x86-64 CPU)."""

DEPRECATED: dict[str, tuple[type[Warning], str, str]] = {
    "jit": (
        DeprecationWarning,
        r"`torch\.jit\.(script|save|load|freeze|trace|trace_method)` is deprecated",
        "TorchScript is the one format that stores torch's eager int8 kernels with the program; "
        "torch.export cannot serialize their packed weights",
    ),
    "ao": (
        DeprecationWarning,
        r"torch\.ao\.quantization is deprecated",
        "torch.ao eager-mode quantization gives int8 kernels that run without compiling; "
        "PT2E (torchao) needs inductor for that",
    ),
    "qtensor": (
        UserWarning,
        r"torch\.quantize_per_tensor, torch\.quantize_per_channel and other quantized tensor creation functions",
        "the x86 int8 kernels take quantized tensors (deprecated in torch 2.13, pytorch#184982)",
    ),
    "reduce_range": (
        UserWarning,
        r"Please use quant_min and quant_max to specify the range for observers",
        "the x86 default qconfig still sets reduce_range (7-bit activations, which FBGEMM needs)",
    ),
}
"""Warnings of deprecated APIs that simeval calls on purpose (loading here, building in
``simeval.build.optimize.torch_int8``): (category, message regex, why)."""


@contextmanager
def deprecated_apis(*keys: str) -> Iterator[None]:
    """Silence exactly the warnings ``DEPRECATED[key]`` for the calls inside; every other warning passes."""
    with warnings.catch_warnings():
        for key in keys:
            category, pattern, _ = DEPRECATED[key]
            warnings.filterwarnings("ignore", message=pattern, category=category)
        yield


def use_x86_engine(name: str) -> None:
    """Select the x86 int8 engine, or fail with one line saying what is needed and what runs here."""
    engines = torch.backends.quantized.supported_engines
    if ENGINE not in engines:
        raise UnavailableError(
            f"{name} needs PyTorch's x86 int8 engine (FBGEMM/oneDNN on an x86-64 CPU); this torch offers "
            f"{', '.join(engines)}"
        )
    torch.backends.quantized.engine = ENGINE


def _spend_quantized_tensor_warning() -> None:
    """Quantized tensors are deprecated in torch 2.13 (pytorch#184982). The C++ side warns once per
    process when the first one is made; inside ``torch.jit.load`` that warning bypasses Python's
    filters and is printed straight to stderr. Making one tiny quantized tensor from Python first,
    inside a filter for exactly that message, spends the once-per-process warning where it can be
    filtered."""
    with deprecated_apis("qtensor"):
        torch.quantize_per_tensor(torch.zeros(1), 1.0, 0, torch.quint8)


def load_torchscript(path: Path, name: str, *, ours: bool = True) -> torch.jit.ScriptModule:
    """Load a TorchScript PilotNet for inference: frozen, and (simeval's own) warmed up.

    Only for files you built, that ``load_verified`` checked against their card, or that a user
    trusts: TorchScript is a program. With ``ours`` the file must carry simeval's ``simeval.json``
    (what ``simeval.build.optimize.torch_int8`` writes); anything else is refused.
    """
    path = Path(path)
    _spend_quantized_tensor_warning()
    extra = {META_FILE: ""}
    try:
        with deprecated_apis("jit"):
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (FileNotFoundError, ValueError) as exc:
        if not path.is_file():
            raise AgentError(f"{path}: no such model file") from None
        raise AgentError(f"{path}: not a loadable TorchScript file ({first_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - the TorchScript reader raises RuntimeError and others for a bad file
        raise AgentError(f"{path}: not a loadable TorchScript file ({type(exc).__name__}: {first_line(exc)})") from None
    meta = _read_meta(extra[META_FILE])
    if not ours:
        return _frozen(module.eval())
    if meta.get("format") != FORMAT:
        raise AgentError(f"{path}: not a simeval int8 PilotNet (format {meta.get('format')!r}, expected {FORMAT!r})")
    frozen = module if meta.get("frozen") else _frozen(module.eval())
    with torch.inference_mode():
        for _ in range(3):  # TorchScript optimizes on the first calls: keep that out of the first lap step
            frozen(torch.zeros((1, *INPUT_SHAPE)))
    return frozen


def _frozen(module: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """The module frozen for inference where TorchScript can freeze it (a traced module of any
    origin may not be freezable: it then runs as it is)."""
    try:
        with deprecated_apis("jit"):
            return torch.jit.freeze(module)
    except Exception:  # noqa: BLE001 - freezing is an optimisation; a module that refuses it still runs
        return module


def _read_meta(raw: bytes | str) -> dict[str, Any]:
    try:
        meta = json.loads(raw or "{}")
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


class TorchScriptRuntime(Runtime):
    """A TorchScript PilotNet on torch's CPU kernels, int8 ones on the x86 engine: simeval's own
    (``torch-dynamic``, ``torch-static``, ``torch-qat``) or a trusted user's file."""

    FRAMEWORK = "torch"

    @classmethod
    def check_available(cls, name: str) -> None:
        use_x86_engine(name)  # before the checksum: a machine without the engine fails on that alone

    def __init__(self, artifact: Artifact, *, spec: RuntimeSpec, card: ModelCard | None, name: str) -> None:
        torch.set_num_threads(spec.threads)
        ours = card is not None
        self.model = load_torchscript(Path(artifact.path), name, ours=ours)
        if spec.batchnorm == "train":
            self.model.train()
        self._mode = torch.no_grad if spec.batchnorm == "train" else torch.inference_mode
        shape = (None, *INPUT_SHAPE) if ours else None  # a user's TorchScript does not say its input shape
        self.inputs = tensor_infos(["input"], [shape], ["float32"])
        self.outputs = tensor_infos(["output"], [(None, 2) if ours else None], ["float32"])

    def run(self, batch: NDArray) -> list[NDArray]:
        with self._mode():
            out = self.model(torch.from_numpy(batch))
        return [o.numpy() for o in out] if isinstance(out, (tuple, list)) else [out.numpy()]
