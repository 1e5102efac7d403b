"""Int8 PilotNets in PyTorch (``torch.ao.quantization``, x86 engine): the builds of ``torch-dynamic``,
``torch-static`` and ``torch-qat`` from the shipped ``torch-fp32``, each saved as a TorchScript file
that holds the whole program (``simeval.agents.formats.torchscript`` loads it).

Before quantizing, two exact rewrites of the fp32 network (``fold_pilotnet``): the input
BatchNorm is folded into conv1 (``simeval.build.optimize.folding``), and the output rescaling to
(v m/s, w rad/s) into the last linear layer ``out``.

- ``torch-dynamic``: dynamic-range int8 linear layers; the convolution weights are stored as int8
  too (per output channel, symmetric) and turned back into fp32 once, when the file loads:
  weight-only int8 on disk, fp32 convolution arithmetic.
- ``torch-static``: post-training static int8 of every convolution and linear layer, each fused
  with its ReLU, calibrated with histogram observers on frames of the TRAINING circuits. The last
  layer ``out`` (10 -> 2) stays fp32, so (v, w) are not put on an int8 grid.
- ``torch-qat``: the same network with fake quantization, fine-tuned from ``torch-fp32`` on the
  train split for a few short epochs (validated on the val split after each epoch, best kept),
  then converted to int8 like ``torch-static``.

Why ``torch.ao`` and TorchScript, both deprecated in torch 2.13, and not PT2E with
``torch.export``: the eager int8 kernels run without compiling, and TorchScript is the one format
that stores them; each card's ``notes`` and the README give the measurements behind the choice.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.ao.quantization as tq
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import nn

from simeval.agents.card import read_card
from simeval.agents.formats import one_by_one
from simeval.agents.formats.torch_state_dict import load_pilotnet
from simeval.agents.formats.torchscript import (
    ARTIFACT,
    DEPRECATED,
    ENGINE,
    FORMAT,
    META_FILE,
    deprecated_apis,
    load_torchscript,
    use_x86_engine,
)
from simeval.agents.pilotnet import LabelRange, preprocess
from simeval.agents.variants import TorchDynamicInt8, TorchQAT, TorchStaticInt8
from simeval.build.evaluate import mse_report, predict
from simeval.build.optimize.context import BuildContext, Built
from simeval.build.optimize.folding import fold_input_norm_torch

PREDICT_NOTE = "test MSE measured frame by frame through the saved artifact, exactly as the agent drives"


def _deprecations_note(*keys: str) -> dict[str, str]:
    return {DEPRECATED[k][1].replace("\\", ""): DEPRECATED[k][2] for k in keys}


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
    """The fp32 ``PilotNet`` rewritten exactly (input norm into conv1, rescaling into ``out``)."""
    model = fold_input_norm_torch(model)
    head = model.head
    out = head.out
    with torch.no_grad():
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


# ------------------------------------------------------------------------------------- saving
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


# ------------------------------------------------------------------------------------ builders
def _parent(parent_dir: Path) -> tuple[nn.Module, LabelRange]:
    card = read_card(parent_dir)
    return load_pilotnet(parent_dir / card.artifact), card.labels


def _built(path: Path, variant: str, method: dict[str, Any]) -> Built:
    """The artifact, with a predict that runs the saved file frame by frame, as the agent does
    (dynamic quantization picks its ranges per call, so batching would change its error)."""
    module = load_torchscript(path, variant)

    def call(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            return module(torch.from_numpy(batch)).numpy()

    return Built(artifact=path, predict=lambda batch: one_by_one(call, batch), method=method)


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


def build_dynamic(recipe: TorchDynamicInt8, parent_dir: Path, out_dir: Path, context: BuildContext) -> Built:
    """``torch-dynamic``: dynamic-range int8 linears + weight-only int8 convolutions (no calibration)."""
    use_x86_engine("torch-dynamic")
    parent, _ = _parent(parent_dir)
    model = fold_pilotnet(parent)
    for i in range(1, len(model.features) // 2 + 1):
        setattr(model.features, f"conv{i}", Int8WeightConv2d(getattr(model.features, f"conv{i}")))
    qconfig = tq.default_dynamic_qconfig if recipe.linear_qconfig == "per_tensor" else tq.per_channel_dynamic_qconfig
    with deprecated_apis("ao", "qtensor"):
        model = tq.quantize_dynamic(model, {nn.Linear: qconfig})
    path = save_torchscript(model, out_dir / ARTIFACT, "torch-dynamic", freeze=False)
    method = _common_method("torch.ao.quantization.quantize_dynamic on the linears (x86 engine) + weight-only int8 "
                            "convolutions, TorchScript", ("jit", "ao", "qtensor"))
    method |= {
        "config": dataclasses.asdict(recipe),
        "convolutions": "int8 weights on disk (symmetric, per output channel), fp32 arithmetic after load",
        "why": "dynamic int8 of the linears alone leaves the convolutions' fp32 weights; int8-stored convolution "
        "weights make the file about 4x smaller than fp32 at the same accuracy (see the card's notes)",
    }
    return _built(path, "torch-dynamic", method)


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


def build_static(recipe: TorchStaticInt8, parent_dir: Path, out_dir: Path, context: BuildContext) -> Built:
    """``torch-static``: post-training static int8, histogram-calibrated on training-circuit frames."""
    use_x86_engine("torch-static")
    parent, _ = _parent(parent_dir)
    frames = context.calibration_frames(recipe.calibration_frames)
    with deprecated_apis("ao", "reduce_range", "qtensor"):
        model = _static_model(parent)
        tq.prepare(model, inplace=True)
        _calibrate(model, frames, recipe.calibration_batch)
        tq.convert(model, inplace=True)
    path = save_torchscript(model, out_dir / ARTIFACT, "torch-static", freeze=True)
    method = _common_method("torch.ao.quantization eager mode, prepare/calibrate/convert (x86 engine), TorchScript",
                            ("jit", "ao", "reduce_range", "qtensor"))
    method |= {
        "config": dataclasses.asdict(recipe),
        "calibration": {"frames": len(frames), "split": "train", "seed": context.seed, "observer": "histogram, 7-bit activations"},
        "fp32_layers": ["out (10 -> 2, 22 weights): an int8 output would put (v, w) on a 7-bit grid"],
        "why": STATIC_WHY,
    }
    return _built(path, "torch-static", method)


STATIC_WHY = ("int8 kernels that run without compiling (the maintained PT2E path needs inductor for int8 speed, "
              "and torch.export cannot serialize the eager int8 modules); see the card's notes")


def build_qat(recipe: TorchQAT, parent_dir: Path, out_dir: Path, context: BuildContext) -> Built:
    """``torch-qat``: fake-quantized fine-tuning of the parent on the train split, best epoch on val, then int8."""
    use_x86_engine("torch-qat")
    parent, labels = _parent(parent_dir)
    data = context.training()
    calibration = context.calibration_frames(recipe.calibration_frames)
    with deprecated_apis("ao", "reduce_range", "qtensor"):
        model, history = _quantization_aware_training(parent, labels, data, calibration, recipe)
    path = save_torchscript(model, out_dir / ARTIFACT, "torch-qat", freeze=True)
    method = _common_method("torch.ao.quantization eager-mode QAT (prepare_qat, fake quantization, x86 engine), "
                            "convert, TorchScript", ("jit", "ao", "reduce_range", "qtensor"))
    method |= {
        "config": dataclasses.asdict(recipe),
        "data": {"train": "train split", "validation": "val split", "calibration": "train split", "seed": context.seed},
        "history": history,
        "best_epoch": min(history, key=lambda h: h["val_mse_int8"])["epoch"],
        "fp32_layers": ["out (10 -> 2, 22 weights), as in torch-static"],
        "why": "fake quantization needs eager-mode modules with observers; the converted model is the same kind "
        "as torch-static: " + STATIC_WHY,
    }
    return _built(path, "torch-qat", method)


def _quantization_aware_training(
    parent: nn.Module, labels: LabelRange, data: dict[str, dict[str, NDArray]], calibration: NDArray[np.uint8], config: TorchQAT
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
               config: TorchQAT, epoch: int) -> float:
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
    with torch.inference_mode():
        predicted = predict(lambda batch: model(torch.from_numpy(batch)).numpy(), val["frames"])
    return mse_report(predicted, val["labels"], labels)["mse_normalized"]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
