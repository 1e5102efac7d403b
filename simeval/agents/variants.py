"""The one table of model variants: what each shipped PilotNet is, what it is made from, and how.

A ``Variant`` names its artifact's format (which runtime drives it, ``simeval.agents.formats``),
its precision, its parent (the model it is built from) and its recipe: a small frozen record of
the settings that make it. The registry of agents, ``python -m simeval.optimize``, ``simeval.train``,
the offline table, the regression gate and the tests all read this table, so adding a variant is
one entry here plus, for a new kind of recipe, its build handler in ``simeval.build.optimize``.

Recipes are data only (no framework is imported here): the build code that carries them out
lives in ``simeval.build``; what was measured when a recipe's settings were chosen is in each
variant's card (``notes``) and in the README.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from simeval.errors import UnknownNameError

PRECISIONS = ("fp32", "fp16", "int8")


def _positive(record: object, *keys: str) -> None:
    for key in keys:
        value = getattr(record, key)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be an integer >= 1, got {value!r}")


# ------------------------------------------------------------------------------------ recipes
@dataclass(frozen=True)
class Trained:
    """Trained from scratch on the data set by ``python -m simeval.train --framework <framework>``."""

    framework: str
    """'torch' or 'tf'."""


@dataclass(frozen=True)
class TorchDynamicInt8:
    """Dynamic-range int8 linear layers (torch.ao, x86 engine) and int8-stored convolution weights."""

    linear_qconfig: str = "per_tensor"
    """'per_tensor' or 'per_channel' int8 weights of the linear layers."""

    def __post_init__(self) -> None:
        if self.linear_qconfig not in ("per_tensor", "per_channel"):
            raise ValueError(f"linear_qconfig must be 'per_tensor' or 'per_channel', got {self.linear_qconfig!r}")


@dataclass(frozen=True)
class TorchStaticInt8:
    """Post-training static int8 (torch.ao, x86 engine), calibrated on frames of the training circuits."""

    calibration_frames: int = 512
    """Frames drawn (seeded) from the TRAINING split."""
    calibration_batch: int = 64
    backend: str = "x86"

    def __post_init__(self) -> None:
        _positive(self, "calibration_frames", "calibration_batch")
        if self.backend != "x86":
            raise ValueError(f"backend must be 'x86' (the only int8 engine these artifacts are built for), got {self.backend!r}")


@dataclass(frozen=True)
class TorchQAT:
    """Quantization-aware fine-tuning of the parent, then int8 like ``TorchStaticInt8``."""

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
    threads: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))

    def __post_init__(self) -> None:
        _positive(self, "epochs", "frames_per_epoch", "batch_size", "calibration_frames", "threads")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.freeze_observers_after < 0:
            raise ValueError(f"freeze_observers_after must be >= 0, got {self.freeze_observers_after}")
        if self.val_frames is not None and self.val_frames < 1:
            raise ValueError(f"val_frames must be >= 1 or None, got {self.val_frames}")


@dataclass(frozen=True)
class OnnxExport:
    """The torch network exported to an ONNX graph (``torch.onnx.export(dynamo=True)``)."""

    opset: int = 20
    """ONNX opset; 20 is what torch 2.13's exporter emits natively (no version conversion)."""
    dynamic_batch: bool = True
    """A symbolic batch dimension: batch 1 to drive, large batches for the offline MSE."""
    fold_input_norm: bool = True
    """Fold the input BatchNorm into conv1 before export (exact; saves a pass over the frame)."""

    def __post_init__(self) -> None:
        if not 17 <= self.opset <= 23:
            raise ValueError(f"opset must be in 17..23, got {self.opset}")


CALIBRATION_METHODS = ("MinMax", "Entropy", "Percentile")


@dataclass(frozen=True)
class OnnxStaticInt8:
    """Static (calibrated) QDQ int8 of the exported graph with ONNX Runtime's quantizer."""

    export: OnnxExport = OnnxExport()
    calibration_frames: int = 512
    """Frames drawn (seeded) from the TRAINING split to fix the activation ranges."""
    calibration_batch: int = 32
    calibrate_method: str = "MinMax"
    """MinMax keeps every calibration value in range."""
    per_channel: bool = True
    """One weight scale per output channel (conv filters and dense rows differ by 10x in range)."""
    reduce_range: bool = False
    """7-bit weights, for x86 CPUs without VNNI."""
    keep_float: tuple[str, ...] = ("head.out", "rescale")
    """Torch modules left in float: the 10 -> 2 output layer would otherwise round the command to
    256 levels."""

    def __post_init__(self) -> None:
        _positive(self, "calibration_frames", "calibration_batch")
        if self.calibrate_method not in CALIBRATION_METHODS:
            raise ValueError(f"calibrate_method must be one of {CALIBRATION_METHODS}, got {self.calibrate_method!r}")


@dataclass(frozen=True)
class LiteRTDynamicRange:
    """LiteRT dynamic-range quantization: int8 weights, activations quantized per call, no calibration."""


@dataclass(frozen=True)
class LiteRTFloat16:
    """LiteRT float16 weights (the converter's ``supported_types=[tf.float16]``)."""


@dataclass(frozen=True)
class LiteRTFullInt8:
    """LiteRT full-integer int8 calibrated on training frames, float32 input and output (an int8
    output would share one scale between v and w)."""

    calibration_frames: int = 512
    """Frames drawn (seeded) from the TRAINING split; the converter runs them one at a time."""
    float_tail: int = 2
    """How many of the last dense layers stay float (the quantization debugger's deny list): they
    hold few multiply-adds but set the command's precision."""

    def __post_init__(self) -> None:
        _positive(self, "calibration_frames")
        if not 0 <= self.float_tail <= 5:
            raise ValueError(f"float_tail must be in 0..5, got {self.float_tail}")


@dataclass(frozen=True)
class TensorRTEngine:
    """A TensorRT engine of the TensorFlow model; every field is part of the engine's cache key."""

    precision: str
    """'fp32', 'fp16' or 'int8'."""
    max_batch: int = 64
    """Largest batch the optimisation profile admits (batch 1 is the optimum: driving)."""
    workspace_bytes: int = 1 << 30
    """Builder scratch memory limit (the WORKSPACE pool)."""
    calibration_frames: int = 512
    """Training-circuit frames the INT8 calibrator sees."""
    calibration_batch: int = 32
    """Frames per calibration batch (the calibration profile's fixed batch)."""

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        _positive(self, "max_batch", "workspace_bytes", "calibration_frames", "calibration_batch")
        if self.calibration_batch > self.calibration_frames:
            raise ValueError(
                f"calibration_batch must be <= calibration_frames ({self.calibration_frames}), got {self.calibration_batch}"
            )


Recipe = (
    Trained | TorchDynamicInt8 | TorchStaticInt8 | TorchQAT | OnnxExport | OnnxStaticInt8
    | LiteRTDynamicRange | LiteRTFloat16 | LiteRTFullInt8 | TensorRTEngine
)


# ------------------------------------------------------------------------------------ the table
@dataclass(frozen=True)
class Variant:
    """One shipped (or buildable) PilotNet."""

    name: str
    format: str
    """The artifact's format: a key of ``simeval.agents.formats.FORMATS``."""
    precision: str
    """'fp32', 'fp16' or 'int8'."""
    parent: str | None
    """The variant this one is built from; None for a model trained from scratch."""
    recipe: Recipe
    summary: str
    """How it was made, in a few words: the Method column of the offline table."""
    frame_by_frame: bool = False
    """Run a batch one frame at a time: dynamic quantization takes its ranges from each call, so a
    batch would change every frame's result (its card's MSE is measured frame by frame, as it drives)."""

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"variant {self.name}: precision must be one of {PRECISIONS}, got {self.precision!r}")


VARIANTS: tuple[Variant, ...] = (
    Variant("torch-fp32", "torch-state-dict", "fp32", None, Trained("torch"), "PyTorch, trained fp32"),
    Variant("tf-fp32", "keras", "fp32", None, Trained("tf"), "Keras, trained fp32"),
    Variant("torch-dynamic", "torchscript", "int8", "torch-fp32", TorchDynamicInt8(),
            "Dynamic range Q (torch.ao)", frame_by_frame=True),
    Variant("torch-static", "torchscript", "int8", "torch-fp32", TorchStaticInt8(), "Static Q (torch.ao)"),
    Variant("torch-qat", "torchscript", "int8", "torch-fp32", TorchQAT(), "QAT (torch.ao)"),
    Variant("onnx-fp32", "onnx", "fp32", "torch-fp32", OnnxExport(), "ONNX Runtime fp32"),
    Variant("onnx-int8", "onnx", "int8", "torch-fp32", OnnxStaticInt8(), "ONNX Runtime static QDQ int8"),
    Variant("tflite-dynamic", "tflite", "int8", "tf-fp32", LiteRTDynamicRange(), "LiteRT dynamic range int8"),
    Variant("tflite-fp16", "tflite", "fp16", "tf-fp32", LiteRTFloat16(), "LiteRT float16 weights"),
    Variant("tflite-int8", "tflite", "int8", "tf-fp32", LiteRTFullInt8(), "LiteRT full-integer int8"),
    Variant("tftrt-fp32", "tensorrt", "fp32", "tf-fp32", TensorRTEngine("fp32"), "TensorRT FP32"),
    Variant("tftrt-fp16", "tensorrt", "fp16", "tf-fp32", TensorRTEngine("fp16"), "TensorRT FP16"),
    Variant("tftrt-int8", "tensorrt", "int8", "tf-fp32", TensorRTEngine("int8"),
            "TensorRT INT8, entropy calibration on training frames"),
)
BY_NAME: dict[str, Variant] = {v.name: v for v in VARIANTS}


def card_contract(variant: Variant, artifact: str) -> dict[str, object]:
    """The contract a shipped variant's card carries: simeval's own input and output conventions,
    the variant's format, and whether it may run batches."""
    from simeval.agents.contract import Artifact, ModelContract, RuntimeSpec

    contract = ModelContract(
        artifact=Artifact(path=artifact, format=variant.format,
                          architecture="simeval-pilotnet" if variant.format == "torch-state-dict" else None),
        runtime=RuntimeSpec(batched=not variant.frame_by_frame),
        notes=f"simeval's {variant.name}: {variant.summary}",
    )
    return contract.as_dict()


def variant(name: str) -> Variant:
    """The variant called ``name``; an unknown name suggests the nearest one."""
    if name not in BY_NAME:
        raise UnknownNameError("variant", name, BY_NAME)
    return BY_NAME[name]


def built_variants() -> list[Variant]:
    """The variants built from a parent (``python -m simeval.optimize``), in table order."""
    return [v for v in VARIANTS if v.parent is not None]


def trained_variants() -> dict[str, Variant]:
    """The variants trained from scratch, by framework ('torch', 'tf')."""
    return {v.recipe.framework: v for v in VARIANTS if isinstance(v.recipe, Trained)}
