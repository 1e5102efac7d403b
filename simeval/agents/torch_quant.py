"""Int8 PilotNets in PyTorch: ``torch-dynamic``, ``torch-static`` and ``torch-qat``.

Each variant is built from the shipped ``torch-fp32`` by ``python -m simeval.optimize NAME`` and
shipped as a TorchScript file that holds the whole program, so it loads without the ``PilotNet``
class (this module never imports ``pilotnet_torch`` outside the builders).

Before quantizing, two exact rewrites of the fp32 network (``fold_pilotnet``):

- the input BatchNorm is folded into conv1. It is a per-channel affine map applied before a
  valid-padding convolution, so the fold is exact (no padded border sees the shift);
- the output rescaling to (v m/s, w rad/s) is folded into the last linear layer ``out``.

What each variant is:

- ``torch-dynamic``: the linear layers are dynamic-range int8 (int8 weights, activations quantized
  per call; the published variant). Dynamic quantization of the linears alone leaves the
  convolutions' 0.52 MB of fp32 weights (3.2x smaller than fp32); so the convolution weights are
  stored as int8 too (per output channel, symmetric) and turned back into fp32 once, when the agent
  loads: weight-only int8 on disk, fp32 convolution arithmetic. Dynamically quantized convolutions
  (``quantized::conv2d_dynamic``) were measured and rejected: test MSE 1.14x the parent's (7-bit
  activations, as FBGEMM requires; with 8-bit ones the kernel saturates: 30x).
- ``torch-static``: post-training static int8 of every convolution and linear layer, each fused
  with its ReLU, x86 engine (FBGEMM / oneDNN kernels), calibrated with histogram observers on
  frames of the TRAINING circuits. The last layer ``out`` (10 -> 2, 22 weights) stays fp32: int8
  output would put (v, w) on a 7-bit grid (0.2 m/s steps) and cost 1.19x the parent's MSE, for no
  gain in size or speed.
- ``torch-qat``: the same network with fake quantization, fine-tuned from ``torch-fp32`` on the
  train split for a few short epochs (validated on the val split after each epoch, best kept),
  then converted to int8 like ``torch-static``.

Why ``torch.ao.quantization`` + TorchScript, both deprecated in torch 2.13, and not the maintained
PT2E (torchao 0.18) + ``torch.export`` path. Measured on the build machine (2-core AMD EPYC with
AVX512-VNNI, one thread, batch 1, medians of 2,000 interleaved calls): fp32 0.78-0.82 ms;
torch-static 0.18-0.19 ms (4.4x). PT2E (``X86InductorQuantizer``, ``prepare_pt2e``/``convert_pt2e``)
runs quantize/dequantize around fp32 kernels unless inductor compiles it: 3.8-4.2 ms uncompiled;
0.39-0.41 ms (2.0x) compiled with freezing, after a compile at every load (9 s cold, 3.5 s from
inductor's cache, 34 s with another job on the CPUs) that needs a C++ compiler at run time; its
``torch.export`` file is 1.76 MB, 3.64x smaller than fp32 (short of 3.8x) even with the unused fp32
weights and example inputs stripped; test MSE 1.05x. AOTInductor avoids the compile by shipping a
shared library, which would run native code from the artifact. ``torch.export`` cannot serialize the
eager int8 modules (their packed weights). torchao's eager int8 configs
(``Int8DynamicActivationInt8WeightConfig``) cover linears only and ran 5x slower than fp32
(``torch._int_mm`` on CPU). Each card's ``training.method`` repeats the numbers it relied on.

Deprecations: the builders and the loader silence exactly the warnings of the deprecated APIs they
call (``DEPRECATED``), each where it is called; the card lists them.

Loading is safe for the shipped artifacts because they are ours: ``load_verified`` checks the
file's sha256 against its card before ``torch.jit.load`` reads it. A TorchScript file is a program
(TorchScript code calling torch operators), so never pass these agents a file you did not build;
the registry routes a user's ``.pt`` file to ``torch-fp32`` (weights only), never here.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.pilotnet import (
    INPUT_SHAPE,
    REBUILD_HINT,
    LabelRange,
    PilotNetAgent,
    mse_report,
    preprocess,
    read_card,
)
from simeval.errors import AgentError

try:
    import torch
    import torch.ao.quantization as tq
    import torch.nn.functional as F
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise AgentError(f"the torch agents need PyTorch ({exc}); install it with `pip install 'simeval[torch]'`") from None

if TYPE_CHECKING:
    from simeval.optimize import BuildContext, VariantResult

ARTIFACT = "model.torchscript"
FORMAT = "simeval-torch-int8/1"
"""Written into every artifact (extra file ``simeval.json``); the loader refuses other files."""
META_FILE = "simeval.json"
ENGINE = "x86"
"""PyTorch's x86 quantized engine: FBGEMM and oneDNN int8 kernels (needs an x86-64 CPU)."""
RUNS_HERE_WITHOUT_INT8 = "torch-fp32, tf-fp32, expert, pure-pursuit"
PREDICT_NOTE = "test MSE measured frame by frame through the saved artifact, exactly as the agent drives"

DEPRECATED: dict[str, tuple[type[Warning], str, str]] = {
    "jit": (
        DeprecationWarning,
        r"`torch\.jit\.(script|save|load|freeze)` is deprecated",
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
"""Warnings of deprecated APIs that this module calls on purpose: (category, message regex, why)."""


@contextmanager
def deprecated_apis(*keys: str) -> Iterator[None]:
    """Silence exactly the warnings ``DEPRECATED[key]`` for the calls inside; every other warning passes."""
    with warnings.catch_warnings():
        for key in keys:
            category, pattern, _ = DEPRECATED[key]
            warnings.filterwarnings("ignore", message=pattern, category=category)
        yield


def _deprecations_note(*keys: str) -> dict[str, str]:
    return {DEPRECATED[k][1].replace("\\", ""): DEPRECATED[k][2] for k in keys}


# ------------------------------------------------------------------------------------ configs
@dataclass(frozen=True)
class DynamicInt8Config:
    """``torch-dynamic``: dynamic-range int8 linears, weight-only int8 convolutions."""

    linear_qconfig: str = "per_tensor"
    """'per_tensor' or 'per_channel' int8 weights of the linears; per tensor measured better here
    (test MSE 1.01x vs 1.05x the parent's, frame by frame)."""

    def __post_init__(self) -> None:
        if self.linear_qconfig not in ("per_tensor", "per_channel"):
            raise ValueError(f"linear_qconfig must be 'per_tensor' or 'per_channel', got {self.linear_qconfig!r}")


@dataclass(frozen=True)
class StaticInt8Config:
    """``torch-static``: post-training static int8, calibrated on frames of the training circuits."""

    calibration_frames: int = 512
    """Frames drawn (seeded) from the TRAINING split; 2048 measured no better (1.036x vs 1.039x)."""
    calibration_batch: int = 64
    backend: str = ENGINE

    def __post_init__(self) -> None:
        _validate_positive(self, ("calibration_frames", "calibration_batch"))
        if self.backend != ENGINE:
            raise ValueError(f"backend must be {ENGINE!r} (the only int8 engine these artifacts are built for), got {self.backend!r}")


@dataclass(frozen=True)
class QATConfig:
    """``torch-qat``: quantization-aware fine-tuning of ``torch-fp32``, then int8 like ``torch-static``."""

    epochs: int = 3
    frames_per_epoch: int = 16_384
    """Frames drawn (seeded, without replacement) from the train split for each short epoch."""
    batch_size: int = 128
    learning_rate: float = 2e-5
    """Adam step size; the parent was trained at 1e-3, fine-tuning stays close to it."""
    freeze_observers_after: int = 2
    """Epochs after which the activation ranges stop moving (the last epochs train on fixed ranges)."""
    calibration_frames: int = 512
    """Training frames that set the initial ranges before the first step."""
    val_frames: int | None = None
    """Validation frames scored after each epoch (None: the whole val split)."""
    seed: int = 0
    threads: int = max(1, os.cpu_count() or 1)

    def __post_init__(self) -> None:
        _validate_positive(self, ("epochs", "frames_per_epoch", "batch_size", "calibration_frames", "threads"))
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.freeze_observers_after < 0:
            raise ValueError(f"freeze_observers_after must be >= 0, got {self.freeze_observers_after}")
        if self.val_frames is not None and self.val_frames < 1:
            raise ValueError(f"val_frames must be >= 1 or None, got {self.val_frames}")


def _validate_positive(config: Any, keys: tuple[str, ...]) -> None:
    for key in keys:
        value = getattr(config, key)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be an integer >= 1, got {value!r}")


# ------------------------------------------------------------------------ the network, folded
class Int8ReadyPilotNet(nn.Module):
    """PilotNet with the input BatchNorm folded into conv1 and the rescaling folded into ``out``.

    ``quant``/``dequant`` mark where int8 begins and ends for static quantization: everything from
    conv1 to fc4's ReLU; ``out`` stays fp32. Input float32 NHWC (N, 66, 200, 3) in [0, 1];
    output (N, 2) in m/s and rad/s.
    """

    def __init__(self, features: nn.Sequential, head: nn.Sequential, out: nn.Linear):
        super().__init__()
        self.quant = tq.QuantStub()
        self.features = features
        self.flatten = nn.Flatten()
        self.head = head
        self.dequant = tq.DeQuantStub()
        self.out = out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(x.permute(0, 3, 1, 2))
        x = self.head(self.flatten(self.features(x)))
        return self.out(self.dequant(x))


FUSED_PAIRS = [[f"features.conv{i}", f"features.relu{i}"] for i in range(1, 6)] + [
    [f"head.fc{i}", f"head.relu{i}"] for i in range(1, 5)
]


def fold_pilotnet(model: nn.Module) -> Int8ReadyPilotNet:
    """The fp32 ``PilotNet`` rewritten exactly (see the module docstring) into ``Int8ReadyPilotNet``."""
    model = copy.deepcopy(model).eval()
    norm, conv1 = model.input_norm, model.features.conv1
    gain = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    shift = norm.bias - norm.running_mean * gain
    head = model.head
    out = head.out
    with torch.no_grad():
        weight = conv1.weight.clone()
        conv1.bias += (weight * shift.view(1, -1, 1, 1)).sum(dim=(1, 2, 3))
        conv1.weight.copy_(weight * gain.view(1, -1, 1, 1))
        out.weight.mul_(model.rescale.scale.view(-1, 1))
        out.bias.mul_(model.rescale.scale).add_(model.rescale.offset)
    del head.out
    return Int8ReadyPilotNet(model.features, head, out).eval()


class Int8WeightConv2d(nn.Module):
    """A valid-padding convolution whose weights are stored as int8, one symmetric scale per output
    channel. ``forward`` rebuilds the fp32 weights; freezing the module at load folds that into a
    constant, so the artifact is small and the arithmetic is fp32."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if conv.padding not in ((0, 0), "valid") or conv.groups != 1 or conv.dilation != (1, 1):
            raise ValueError(f"conv must be a plain valid-padding Conv2d, got {conv}")
        weight = conv.weight.detach()
        scale = weight.abs().amax(dim=(1, 2, 3)).clamp_min(1e-12) / 127.0
        self.register_buffer("qweight", torch.round(weight / scale.view(-1, 1, 1, 1)).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scale", scale.float())
        self.register_buffer("bias", conv.bias.detach().clone())
        self.stride = tuple(conv.stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.qweight.float() * self.scale.view(-1, 1, 1, 1)
        return F.conv2d(x, weight, self.bias, self.stride)


# ------------------------------------------------------------------------------ save and load
def save_torchscript(model: nn.Module, path: Path, variant: str, freeze: bool) -> Path:
    """Script ``model`` and write it whole, with ``simeval.json`` (format, variant, engine) inside.

    ``freeze`` inlines the weights and code now (smaller file); leave it off where freezing would
    store derived fp32 tensors (``Int8WeightConv2d``): the loader freezes such a file instead.
    """
    from io import BytesIO

    from simeval.atomic import write_bytes_atomic

    meta = {"format": FORMAT, "variant": variant, "engine": ENGINE, "frozen": freeze, "torch": torch.__version__}
    buffer = BytesIO()
    with deprecated_apis("jit"):
        scripted = torch.jit.script(model.eval())
        if freeze:
            scripted = torch.jit.freeze(scripted)
        torch.jit.save(scripted, buffer, _extra_files={META_FILE: json.dumps(meta)})
    return write_bytes_atomic(path, buffer.getvalue())


def use_x86_engine(name: str) -> None:
    """Select the x86 int8 engine, or fail with one line saying what is needed and what runs here."""
    engines = torch.backends.quantized.supported_engines
    if ENGINE not in engines:
        raise AgentError(
            f"{name} needs PyTorch's x86 int8 engine (FBGEMM/oneDNN on an x86-64 CPU); this torch offers "
            f"{', '.join(engines)}; agents that run here: {RUNS_HERE_WITHOUT_INT8}"
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


def load_torchscript(path: Path, name: str) -> torch.jit.ScriptModule:
    """Load an int8 PilotNet written by ``save_torchscript``, frozen for inference and warmed up.

    Only for files you built or that ``load_verified`` checked against their card: TorchScript is a
    program. The file must carry this module's ``simeval.json``; anything else is refused.
    """
    path = Path(path)
    use_x86_engine(name)
    _spend_quantized_tensor_warning()
    extra = {META_FILE: ""}
    try:
        with deprecated_apis("jit"):
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (FileNotFoundError, ValueError) as exc:
        if not path.is_file():
            raise AgentError(f"{path}: no such model file; {REBUILD_HINT}") from None
        raise AgentError(f"{path}: not a loadable TorchScript file ({_first_line(exc)}); {REBUILD_HINT}") from None
    except Exception as exc:  # noqa: BLE001 - the TorchScript reader raises RuntimeError and others for a bad file
        raise AgentError(f"{path}: not a loadable TorchScript file ({type(exc).__name__}: {_first_line(exc)}); {REBUILD_HINT}") from None
    meta = _read_meta(extra[META_FILE])
    if meta.get("format") != FORMAT:
        raise AgentError(f"{path}: not a simeval int8 PilotNet (format {meta.get('format')!r}, expected {FORMAT!r}); {REBUILD_HINT}")
    frozen = module
    if not meta.get("frozen"):
        with deprecated_apis("jit"):
            frozen = torch.jit.freeze(module.eval())
    with torch.inference_mode():
        for _ in range(3):  # TorchScript optimizes on the first calls: keep that out of the first lap step
            frozen(torch.zeros((1, *INPUT_SHAPE)))
    return frozen


def _read_meta(raw: bytes | str) -> dict[str, Any]:
    try:
        meta = json.loads(raw or "{}")
    except ValueError:
        return {}
    return meta if isinstance(meta, dict) else {}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _frame_by_frame(module: torch.jit.ScriptModule) -> Callable[[NDArray[np.float32]], NDArray[np.float32]]:
    """A predict function that runs the loaded artifact one frame at a time, as the agent does
    (dynamic quantization picks its ranges per call, so batching would change its error)."""

    def predict(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            return np.concatenate([module(torch.from_numpy(batch[i : i + 1])).numpy() for i in range(len(batch))])

    return predict


# ------------------------------------------------------------------------------------ builders
def _parent(parent_dir: Path) -> tuple[nn.Module, LabelRange]:
    from simeval.agents.pilotnet_torch import load_pilotnet

    card = read_card(parent_dir)
    return load_pilotnet(parent_dir / card.artifact), card.labels


def _result(path: Path, variant: str, method: dict[str, Any]) -> VariantResult:
    from simeval.optimize import VariantResult

    module = load_torchscript(path, variant)
    return VariantResult(artifact=path, framework="torch", precision="int8", predict=_frame_by_frame(module), method=method)


def _common_method(path: str, keys: tuple[str, ...]) -> dict[str, Any]:
    return {
        "path": path,
        "folds": "input BatchNorm into conv1 (exact: valid padding); output rescaling into `out`",
        "artifact": "TorchScript (torch.jit.script, freeze where it keeps the file small, save), loaded with "
        "torch.jit.load after the sha256 check against this card; a TorchScript file is a program: load only "
        "files you built",
        "engine": ENGINE,
        "deprecated_apis_filtered": _deprecations_note(*keys),
        "test_mse": PREDICT_NOTE,
    }


def build_dynamic(parent_dir: Path, out_dir: Path, context: BuildContext, config: DynamicInt8Config | None = None) -> VariantResult:
    """``torch-dynamic``: dynamic-range int8 linears + weight-only int8 convolutions (no calibration)."""
    config = config or DynamicInt8Config()
    use_x86_engine("torch-dynamic")
    parent, _ = _parent(parent_dir)
    model = fold_pilotnet(parent)
    for i in range(1, len(model.features) // 2 + 1):
        setattr(model.features, f"conv{i}", Int8WeightConv2d(getattr(model.features, f"conv{i}")))
    qconfig = tq.default_dynamic_qconfig if config.linear_qconfig == "per_tensor" else tq.per_channel_dynamic_qconfig
    with deprecated_apis("ao", "qtensor"):
        model = tq.quantize_dynamic(model, {nn.Linear: qconfig})
    path = save_torchscript(model, out_dir / ARTIFACT, "torch-dynamic", freeze=False)
    method = _common_method("torch.ao.quantization.quantize_dynamic on the linears (x86 engine) + weight-only int8 "
                            "convolutions, TorchScript", ("jit", "ao", "qtensor"))
    method |= {
        "config": dataclasses.asdict(config),
        "convolutions": "int8 weights on disk (symmetric, per output channel), fp32 arithmetic after load",
        "why": "dynamic int8 of the linears alone is 3.2x smaller than fp32 (2.00 MB); int8 conv weights bring it "
        "to 3.9x. Measured alternatives (test MSE / parent, frame by frame): dynamic int8 convolutions "
        "(quantized::conv2d_dynamic) 1.14x per channel, 1.15x per tensor, 30x with 8-bit activations "
        "(saturation); weight-only int8 convolutions 1.03x. torchao Int8DynamicActivationInt8WeightConfig: "
        "linears only, 6.2 ms per frame uncompiled, 5x slower than fp32 in the same run (torch._int_mm on CPU). "
        "Speed is not this variant's aim: 0.54-0.56 ms vs fp32 0.78-0.82 ms (convolutions compute in fp32).",
    }
    return _result(path, "torch-dynamic", method)


def _static_model(parent: nn.Module) -> Int8ReadyPilotNet:
    """Folded and fused (conv/linear + ReLU), with the x86 static qconfig on all but ``out``."""
    model = tq.fuse_modules(fold_pilotnet(parent), FUSED_PAIRS)
    model.qconfig = tq.get_default_qconfig(ENGINE)
    model.out.qconfig = None
    return model


def _calibrate(model: nn.Module, frames: NDArray[np.uint8], batch: int) -> None:
    """Run frames through a prepared model so its observers see the activation ranges."""
    with torch.no_grad():
        for start in range(0, len(frames), batch):
            model(torch.from_numpy(preprocess(frames[start : start + batch])))


def build_static(parent_dir: Path, out_dir: Path, context: BuildContext, config: StaticInt8Config | None = None) -> VariantResult:
    """``torch-static``: post-training static int8, histogram-calibrated on training-circuit frames."""
    config = config or StaticInt8Config()
    use_x86_engine("torch-static")
    parent, _ = _parent(parent_dir)
    frames = context.calibration_frames(config.calibration_frames)
    with deprecated_apis("ao", "reduce_range", "qtensor"):
        model = _static_model(parent)
        tq.prepare(model, inplace=True)
        _calibrate(model, frames, config.calibration_batch)
        tq.convert(model, inplace=True)
    path = save_torchscript(model, out_dir / ARTIFACT, "torch-static", freeze=True)
    method = _common_method("torch.ao.quantization eager mode, prepare/calibrate/convert (x86 engine), TorchScript",
                            ("jit", "ao", "reduce_range", "qtensor"))
    method |= {
        "config": dataclasses.asdict(config),
        "calibration": {"frames": len(frames), "split": "train", "seed": context.seed, "observer": "histogram, 7-bit activations"},
        "fp32_layers": ["out (10 -> 2, 22 weights): int8 output would step v by 0.2 m/s; all-int8 measured 1.19x the parent's test MSE"],
        "why": _STATIC_WHY,
    }
    return _result(path, "torch-static", method)


_STATIC_WHY = (
    "int8 kernels that run without compiling. Measured on the build machine (one thread, batch 1, medians of "
    "2,000 interleaved calls): fp32 0.78-0.82 ms, this path 0.18-0.19 ms (4.4x). PT2E (torchao 0.18 "
    "X86InductorQuantizer, prepare_pt2e/convert_pt2e): 3.8-4.2 ms uncompiled; 0.39-0.41 ms (2.0x) with "
    "torch.compile (inductor, freezing) after a compile at every load (9 s cold, 3.5 s cached) that needs a C++ "
    "compiler at run time; its torch.export file 1.76 MB (3.64x, short of the 3.8x target) even stripped of unused "
    "fp32 weights and example inputs; test MSE 1.05x. AOTInductor would ship native code in the artifact; "
    "torch.export cannot serialize the eager int8 modules (packed weights)."
)


def build_qat(parent_dir: Path, out_dir: Path, context: BuildContext, config: QATConfig | None = None) -> VariantResult:
    """``torch-qat``: fake-quantized fine-tuning of the parent on the train split, best epoch on val, then int8."""
    config = config or QATConfig()
    use_x86_engine("torch-qat")
    parent, labels = _parent(parent_dir)
    data = context.training()
    calibration = context.calibration_frames(config.calibration_frames)
    with deprecated_apis("ao", "reduce_range", "qtensor"):
        model, history = _quantization_aware_training(parent, labels, data, calibration, config)
    path = save_torchscript(model, out_dir / ARTIFACT, "torch-qat", freeze=True)
    method = _common_method("torch.ao.quantization eager-mode QAT (prepare_qat, fake quantization, x86 engine), "
                            "convert, TorchScript", ("jit", "ao", "reduce_range", "qtensor"))
    method |= {
        "config": dataclasses.asdict(config),
        "data": {"train": "train split", "validation": "val split", "calibration": "train split", "seed": context.seed},
        "history": history,
        "best_epoch": min(history, key=lambda h: h["val_mse_int8"])["epoch"],
        "fp32_layers": ["out (10 -> 2, 22 weights), as in torch-static"],
        "why": "fake quantization needs eager-mode modules with observers; the converted model is the same kind "
        "as torch-static, so the same measurements apply: " + _STATIC_WHY,
    }
    return _result(path, "torch-qat", method)


def _quantization_aware_training(
    parent: nn.Module, labels: LabelRange, data: dict[str, dict[str, NDArray]], calibration: NDArray[np.uint8], config: QATConfig
) -> tuple[nn.Module, list[dict[str, float | None]]]:
    """Fine-tune with fake quantization; after every epoch convert a copy to int8 and score it on val.

    Returns the best int8 model (epoch 0 is the QAT observers' post-training quantization) and the history.
    """
    torch.manual_seed(config.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        model = fold_pilotnet(parent).train()
        model = tq.fuse_modules_qat(model, FUSED_PAIRS)
        model.qconfig = tq.get_default_qat_qconfig(ENGINE)
        model.out.qconfig = None
        tq.prepare_qat(model, inplace=True)
        _calibrate(model, calibration, 64)
        train, val = data["train"], data["val"]
        val_count = len(val["frames"]) if config.val_frames is None else min(config.val_frames, len(val["frames"]))
        val = {k: v[:val_count] for k, v in val.items()}
        best = _int8_copy(model)
        history = [{"epoch": 0, "train_mse": None, "val_mse_int8": _val_mse(best, val, labels), "seconds": 0.0}]
        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        scale = torch.from_numpy(labels.scale)
        for epoch in range(1, config.epochs + 1):
            if epoch > config.freeze_observers_after:
                model.apply(tq.disable_observer)
            started = time.perf_counter()
            train_mse = _qat_epoch(model, optimizer, train, scale, config, epoch)
            candidate = _int8_copy(model)
            val_mse = _val_mse(candidate, val, labels)
            history.append({"epoch": epoch, "train_mse": train_mse, "val_mse_int8": val_mse,
                            "seconds": round(time.perf_counter() - started, 1)})
            _log(f"torch-qat epoch {epoch}/{config.epochs}: train MSE {train_mse:.6f}, val MSE (int8) {val_mse:.6f}")
            if val_mse < min(h["val_mse_int8"] for h in history[:-1]):
                best = candidate
        return best, history
    finally:
        torch.set_num_threads(threads)


def _qat_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, train: dict[str, NDArray], scale: torch.Tensor,
               config: QATConfig, epoch: int) -> float:
    """One short epoch on ``frames_per_epoch`` seeded training frames; loss = MSE of normalised (v, w)."""
    rng = np.random.default_rng([config.seed, epoch])
    count = min(config.frames_per_epoch, len(train["frames"]))
    chosen = rng.choice(len(train["frames"]), size=count, replace=False)
    model.train()
    total, seen = 0.0, 0
    for start in range(0, count, config.batch_size):
        idx = np.sort(chosen[start : start + config.batch_size])
        x = torch.from_numpy(preprocess(train["frames"][idx]))
        y = torch.from_numpy(np.asarray(train["labels"][idx], dtype=np.float32))
        optimizer.zero_grad(set_to_none=True)
        loss = (((model(x) - y) / scale) ** 2).mean()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
        seen += len(idx)
    return total / max(seen, 1)


def _int8_copy(model: nn.Module) -> nn.Module:
    converted = copy.deepcopy(model).eval()
    tq.convert(converted, inplace=True)
    return converted


def _val_mse(model: nn.Module, val: dict[str, NDArray], labels: LabelRange) -> float:
    from simeval.train import predict

    with torch.inference_mode():
        predicted = predict(lambda batch: model(torch.from_numpy(batch)).numpy(), val["frames"])
    return mse_report(predicted, val["labels"], labels)["mse_normalized"]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -------------------------------------------------------------------------------------- agents
class TorchInt8Agent(PilotNetAgent):
    """An int8 PilotNet from its TorchScript artifact: the shipped one (sha256-checked against its
    card), or ``path``, a file you built with ``simeval.optimize`` (a program: never one from elsewhere)."""

    FRAMEWORK = "torch"
    PRECISION = "int8"

    def check_runtime(self) -> None:
        use_x86_engine(self.NAME)  # before the checksum: a machine without the engine fails on that alone

    def load(self, path: Path, threads: int) -> None:
        torch.set_num_threads(threads)
        self.model = load_torchscript(path, self.NAME)

    def infer(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            return self.model(torch.from_numpy(batch)).numpy()

    infer_batch = infer
    """Static int8 computes each frame of a batch exactly as alone: one call for the whole batch."""


class TorchDynamicAgent(TorchInt8Agent):
    """``torch-dynamic``: dynamic-range int8 linears, int8-stored convolution weights."""

    NAME = "torch-dynamic"

    infer_batch = PilotNetAgent.infer_batch
    """Frame by frame: dynamic quantization takes its activation ranges from each call, so a batch
    would change every frame's result (its card's MSE is measured frame by frame, as it drives)."""


class TorchStaticAgent(TorchInt8Agent):
    """``torch-static``: post-training static int8 (x86 engine)."""

    NAME = "torch-static"


class TorchQATAgent(TorchInt8Agent):
    """``torch-qat``: quantization-aware fine-tuned, then static int8 (x86 engine)."""

    NAME = "torch-qat"
