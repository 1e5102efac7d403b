"""PilotNet on LiteRT (formerly TensorFlow Lite): ``tflite-dynamic``, ``tflite-fp16``, ``tflite-int8``,
all converted from the shipped tf-fp32 Keras model.

Building (``python -m simeval.optimize tflite-dynamic tflite-fp16 tflite-int8``) needs TensorFlow.
The Keras model's input BatchNorm is first folded into conv1 (exact: conv1 has no padding; the
converter folds a BatchNorm that follows a convolution, not one that precedes it, and an int8
BatchNorm on the frame costs accuracy and time). The result is exported as a SavedModel
(``model.export``, the Keras-3 path that ``TFLiteConverter.from_keras_model`` also takes, but
noisily) and converted with ``tf.lite.TFLiteConverter.from_saved_model``:

- ``tflite-dynamic``: dynamic-range quantization: int8 weights, float activations quantized on
  the fly inside each convolution and dense layer. No calibration data.
- ``tflite-fp16``: float16 weights, dequantized to float32 when the interpreter loads them (CPU);
  half the size, float32 arithmetic.
- ``tflite-int8``: full-integer quantization calibrated with a representative data set of
  frames from the TRAINING circuits: every convolution and the first three dense layers run in
  int8; the last two dense layers (10 and 2 units, the rescaling to SI units folded into the
  last) stay float (see ``FullInt8Config.float_tail``). Input and output are float32.

Driving needs only ``ai_edge_litert`` (the LiteRT interpreter, which replaces the deprecated
``tf.lite.Interpreter``): the agents never import TensorFlow.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.pilotnet import DENSE_LAYERS, INPUT_SHAPE, REBUILD_HINT, PilotNetAgent, preprocess
from simeval.errors import AgentError
from simeval.native_stderr import LITERT_NOTES, filtered

try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError as exc:  # pragma: no cover - exercised only without ai_edge_litert
    raise AgentError(
        f"the tflite agents need the LiteRT interpreter ({exc}); install it with `pip install 'simeval[litert]'`, "
        "or drive torch-fp32 or the experts"
    ) from None

if TYPE_CHECKING:
    from simeval.optimize import BuildContext, VariantResult

ARTIFACT = "model.tflite"
FRAMEWORK = "litert"


@dataclass(frozen=True)
class DynamicRangeConfig:
    """Dynamic-range quantization: int8 weights, activations quantized per call, no calibration."""

    precision: str = "int8"


@dataclass(frozen=True)
class Float16Config:
    """float16 weights (the converter's ``supported_types=[tf.float16]``)."""

    precision: str = "fp16"


@dataclass(frozen=True)
class FullInt8Config:
    """Full-integer int8 quantization calibrated on training frames, float32 input and output.

    Why float32 I/O: an int8 output is ONE per-tensor scale for v (6.5-24 m/s) and w (+-4 rad/s),
    0.105 per step here, i.e. yaw-rate commands in 0.1 rad/s steps; an int8 input saves only the
    model's first op (quantizing 39,600 values): 0.138 vs 0.142 ms per call, measured. Float I/O
    also keeps the agent's interface (``preprocess`` then ``infer``) that of every other variant.
    """

    calibration_frames: int = 512
    """Frames drawn (seeded) from the TRAINING split; the converter runs them one at a time."""
    float_tail: int = 2
    """How many of the last dense layers stay float (selective quantization through the TFLite
    quantization debugger's deny list). They hold 520 of the 1.6 M multiply-adds but set the
    command's precision: test MSE over the fp32 parent's, measured, 0 -> 1.18x (montreal 1.44x),
    1 -> 1.05x (montreal 1.12x), 2 -> 1.03x (montreal 1.05x), 3 -> 1.00x."""
    precision: str = "int8"

    def __post_init__(self) -> None:
        if self.calibration_frames < 1:
            raise ValueError(f"calibration_frames must be >= 1, got {self.calibration_frames}")
        if not 0 <= self.float_tail <= len(DENSE_LAYERS) + 1:
            raise ValueError(f"float_tail must be in 0..{len(DENSE_LAYERS) + 1}, got {self.float_tail}")


ConvertConfig = DynamicRangeConfig | Float16Config | FullInt8Config


# ----------------------------------------------------------------------------- running


def load_interpreter(path: Path, threads: int = 1) -> Interpreter:
    """A LiteRT interpreter for a PilotNet flatbuffer, tensors allocated; a bad file fails with one
    line naming it. ``threads`` is the interpreter's thread count (XNNPACK's too)."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    where = str(path)
    if not Path(path).is_file():
        raise AgentError(f"{where}: no such model file")
    try:
        with filtered(LITERT_NOTES):
            interpreter = Interpreter(model_path=where, num_threads=threads)
            interpreter.allocate_tensors()
    except Exception as exc:  # noqa: BLE001 - the interpreter raises ValueError/RuntimeError for a bad file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AgentError(f"{where}: not a loadable LiteRT model ({reason}); {REBUILD_HINT}") from None
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or tuple(inputs[0]["shape"][1:]) != INPUT_SHAPE or len(outputs) != 1 or outputs[0]["shape"][-1] != 2:
        got = [tuple(d["shape"]) for d in inputs], [tuple(d["shape"]) for d in outputs]
        raise AgentError(f"{where}: expected a (N, 66, 200, 3) -> (N, 2) PilotNet, got {got[0]} -> {got[1]}")
    if inputs[0]["dtype"] != np.float32 or outputs[0]["dtype"] != np.float32:
        got = np.dtype(inputs[0]["dtype"]).name, np.dtype(outputs[0]["dtype"]).name
        raise AgentError(f"{where}: expected float32 input and output (frames in [0, 1], command in m/s, rad/s), got {got[0]} -> {got[1]}")
    return interpreter


class Runner:
    """Runs a PilotNet interpreter on float32 NHWC batches, re-sizing it only when the batch size
    changes (the agent stays at 1; the offline MSE runs batches of 512)."""

    def __init__(self, interpreter: Interpreter):
        self.interpreter = interpreter
        self._bind()

    def _bind(self) -> None:
        self._in = self.interpreter.get_input_details()[0]["index"]
        self._out = self.interpreter.get_output_details()[0]["index"]
        self._batch = int(self.interpreter.get_input_details()[0]["shape"][0])

    def __call__(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        if len(batch) != self._batch:
            self.interpreter.resize_tensor_input(self._in, [len(batch), *INPUT_SHAPE])
            self.interpreter.allocate_tensors()
            self._bind()
        self.interpreter.set_tensor(self._in, np.ascontiguousarray(batch, dtype=np.float32))
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self._out)


class LiteRTAgent(PilotNetAgent):
    """A shipped LiteRT PilotNet (or a user's ``.tflite`` file) on the LiteRT CPU interpreter."""

    NAME = "tflite"
    FRAMEWORK = FRAMEWORK

    def load(self, path: Path, threads: int) -> None:
        self.run = Runner(load_interpreter(path, threads))

    def infer(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return self.run(batch)


class TFLiteDynamicAgent(LiteRTAgent):
    """``tflite-dynamic``: int8 weights, float activations quantized per call."""

    NAME = "tflite-dynamic"
    PRECISION = "int8"


class TFLiteFP16Agent(LiteRTAgent):
    """``tflite-fp16``: float16 weights."""

    NAME = "tflite-fp16"
    PRECISION = "fp16"


class TFLiteInt8Agent(LiteRTAgent):
    """``tflite-int8``: full-integer int8, calibrated on training frames."""

    NAME = "tflite-int8"
    PRECISION = "int8"


# ----------------------------------------------------------------------------- building


def fold_input_norm(model: Any) -> Any:
    """The same Keras PilotNet with its input BatchNorm folded into conv1 (and removed).

    BatchNorm at inference is ``a * x + b`` per input channel; conv1 has no padding, so every tap
    sees a normalised pixel and ``conv1(a * x + b) = conv1'(x)``, with the kernel scaled per input
    channel by ``a`` and ``b`` folded into the bias. Exact up to float rounding.
    """
    from simeval.agents.pilotnet_tf import keras

    norm, conv1 = model.get_layer("input_norm"), model.get_layer("conv1")
    if conv1.padding != "valid":
        raise ValueError(f"conv1 padding must be 'valid' to fold the input norm, got {conv1.padding!r}")
    gamma, beta, mean, var = (np.asarray(w, dtype=np.float64) for w in norm.get_weights())
    a = gamma / np.sqrt(var + norm.epsilon)
    b = beta - mean * a
    frame = keras.Input(INPUT_SHAPE, name="frame")
    x = frame
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or layer is norm:
            continue
        clone = layer.__class__.from_config(layer.get_config())
        x = clone(x)
        weights = layer.get_weights()
        if layer is conv1:
            kernel, bias = (np.asarray(w, dtype=np.float64) for w in weights)
            weights = [(kernel * a[None, None, :, None]).astype(np.float32),
                       (bias + np.einsum("hwio,i->o", kernel, b)).astype(np.float32)]
        clone.set_weights(weights)
    return keras.Model(frame, x, name=f"{model.name}_folded")


def convert(keras_path: Path, out: Path, config: ConvertConfig, frames: NDArray[np.uint8] | None = None) -> Path:
    """Convert the Keras PilotNet at ``keras_path`` (its rescaling to SI units included) to a
    LiteRT flatbuffer at ``out``. ``frames`` (uint8, training circuits) calibrate ``FullInt8Config``."""
    from simeval.agents.pilotnet_tf import load_pilotnet, tf  # sets TF's log level before TF starts
    from simeval.atomic import write_bytes_atomic

    if not isinstance(config, (DynamicRangeConfig, Float16Config, FullInt8Config)):
        raise ValueError(f"config must be one of DynamicRangeConfig, Float16Config, FullInt8Config, got {type(config).__name__}")
    if isinstance(config, FullInt8Config) and (frames is None or len(frames) == 0):
        raise ValueError("frames must hold calibration frames for full-integer int8, got none")
    model = fold_input_norm(load_pilotnet(Path(keras_path)))
    with tempfile.TemporaryDirectory() as work:
        model.export(work, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(work)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        with filtered(LITERT_NOTES):
            if isinstance(config, Float16Config):
                converter.target_spec.supported_types = [tf.float16]
            if isinstance(config, FullInt8Config):
                content = _full_int8(converter, config, frames, tf)
            else:
                content = converter.convert()
    return write_bytes_atomic(out, content)


def _full_int8(converter: Any, config: FullInt8Config, frames: NDArray[np.uint8], tf: Any) -> bytes:
    """Calibrate, then quantize every op to int8 but the last ``float_tail`` dense layers.

    The converter alone has no per-layer switch; its quantization debugger's deny list is TF's
    documented way to keep chosen ops float (selective quantization). The debugger builds a
    ``tf.lite.Interpreter`` for its own checks, whose deprecation warning is not ours to show.
    """
    converter.representative_dataset = lambda: _representative(frames)
    converter.inference_input_type = converter.inference_output_type = tf.float32
    if config.float_tail == 0:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        return converter.convert()
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    experimental = tf.lite.experimental
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*tf\.lite\.Interpreter is deprecated", category=UserWarning)
        debugger = experimental.QuantizationDebugger(converter=converter)
        tail = _dense_outputs(debugger.calibrated_model)[-config.float_tail :]
        debugger.options = experimental.QuantizationDebugOptions(denylisted_nodes=tail)
        return debugger.get_nondebug_quantized_model()


def _dense_outputs(flatbuffer: bytes) -> list[str]:
    """Output tensor names of the FULLY_CONNECTED ops of a LiteRT model, in graph order (the
    names the quantizer's deny list takes), read from the flatbuffer schema."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    graph = model.subgraphs[0]
    dense = schema.BuiltinOperator.FULLY_CONNECTED
    names = []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        if max(code.builtinCode, code.deprecatedBuiltinCode) == dense:
            names.append(graph.tensors[op.outputs[0]].name.decode())
    if len(names) != len(DENSE_LAYERS) + 1:
        raise ValueError(f"the model must have {len(DENSE_LAYERS) + 1} dense layers, got {len(names)}: {names}")
    return names


def _representative(frames: NDArray[np.uint8]) -> Iterator[list[NDArray[np.float32]]]:
    """One pre-processed frame per sample, as the converter's calibrator expects."""
    for i in range(len(frames)):
        yield [preprocess(frames[i : i + 1])]


def _build(parent_dir: Path, out_dir: Path, context: BuildContext, config: ConvertConfig) -> VariantResult:
    from simeval.optimize import VariantResult

    frames = context.calibration_frames(config.calibration_frames) if isinstance(config, FullInt8Config) else None
    artifact = convert(parent_dir / "model.keras", out_dir / ARTIFACT, config, frames)
    method: dict[str, Any] = {
        "conversion": _CONVERSIONS[type(config)],
        "fold_input_norm": "input BatchNorm folded into conv1 before conversion (exact)",
        "config": asdict(config),
        "why": "LiteRT is the maintained runtime for TFLite flatbuffers (ai_edge_litert replaces the deprecated "
               "tf.lite.Interpreter); drives without TensorFlow",
        "runtime": {"interpreter": "ai_edge_litert.interpreter.Interpreter", "num_threads": 1,
                    "op_resolver": "AUTO (XNNPACK delegate for float and int8 ops)"},
        "versions": _versions(),
    }
    if frames is not None:
        method["calibration"] = {"split": "train", "frames": int(len(frames)), "seed": context.seed}
    return VariantResult(
        artifact=artifact, framework=FRAMEWORK, precision=config.precision,
        predict=Runner(load_interpreter(artifact, threads=max(1, min(2, os.cpu_count() or 1)))), method=method,
    )


_CONVERSIONS = {
    DynamicRangeConfig: "tf.lite.TFLiteConverter.from_saved_model, optimizations=[DEFAULT] (dynamic range)",
    Float16Config: "tf.lite.TFLiteConverter.from_saved_model, optimizations=[DEFAULT], supported_types=[float16]",
    FullInt8Config: "tf.lite.TFLiteConverter.from_saved_model, optimizations=[DEFAULT], representative_dataset, "
                    "float32 I/O; tf.lite.experimental.QuantizationDebugger deny list keeps the last float_tail "
                    "dense layers float",
}


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import tensorflow as tf

    return {"tensorflow": tf.__version__, "ai-edge-litert": version("ai-edge-litert")}


def build_dynamic(parent_dir: Path, out_dir: Path, context: BuildContext) -> VariantResult:
    """``tflite-dynamic``: dynamic-range quantization of the shipped tf-fp32 model."""
    return _build(parent_dir, out_dir, context, DynamicRangeConfig())


def build_fp16(parent_dir: Path, out_dir: Path, context: BuildContext) -> VariantResult:
    """``tflite-fp16``: float16 weights."""
    return _build(parent_dir, out_dir, context, Float16Config())


def build_int8(parent_dir: Path, out_dir: Path, context: BuildContext) -> VariantResult:
    """``tflite-int8``: full-integer int8, calibrated on training frames, float32 I/O."""
    return _build(parent_dir, out_dir, context, FullInt8Config())
