"""LiteRT (formerly TensorFlow Lite) variants of the Keras network: the builds of ``tflite-dynamic``,
``tflite-fp16`` and ``tflite-int8`` (driven by ``simeval.agents.formats.litert``). Needs TensorFlow.

The Keras model's input BatchNorm is first folded into conv1 (``simeval.build.optimize.folding``:
the converter folds a BatchNorm that follows a convolution, not one that precedes it, and an int8
BatchNorm on the frame costs accuracy and time). The result is exported as a SavedModel
(``model.export``) and converted with ``tf.lite.TFLiteConverter.from_saved_model``:

- ``tflite-dynamic``: dynamic-range quantization: int8 weights, float activations quantized on
  the fly inside each convolution and dense layer. No calibration data.
- ``tflite-fp16``: float16 weights, dequantized to float32 when the interpreter loads them (CPU);
  half the size, float32 arithmetic.
- ``tflite-int8``: full-integer quantization calibrated with a representative data set of
  frames from the TRAINING circuits: every convolution and the first dense layers run in int8;
  the last ``float_tail`` dense layers stay float. Input and output are float32.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.formats.keras_model import load_pilotnet, tf  # TensorFlow starts with its notes filtered
from simeval.agents.formats.litert import ARTIFACT, BatchRunner, load_interpreter
from simeval.agents.native_stderr import LITERT_NOTES, filtered
from simeval.agents.pilotnet import DENSE_LAYERS, preprocess
from simeval.agents.variants import LiteRTDynamicRange, LiteRTFloat16, LiteRTFullInt8
from simeval.atomic import write_bytes_atomic
from simeval.build.optimize.context import BuildContext, Built
from simeval.build.optimize.folding import fold_input_norm_keras

Conversion = LiteRTDynamicRange | LiteRTFloat16 | LiteRTFullInt8


def convert(keras_path: Path, out: Path, config: Conversion, frames: NDArray[np.uint8] | None = None) -> Path:
    """Convert the Keras PilotNet at ``keras_path`` (its rescaling to SI units included) to a
    LiteRT flatbuffer at ``out``. ``frames`` (uint8, training circuits) calibrate ``LiteRTFullInt8``."""
    if not isinstance(config, (LiteRTDynamicRange, LiteRTFloat16, LiteRTFullInt8)):
        raise ValueError(f"config must be one of LiteRTDynamicRange, LiteRTFloat16, LiteRTFullInt8, got {type(config).__name__}")
    if isinstance(config, LiteRTFullInt8) and (frames is None or len(frames) == 0):
        raise ValueError("frames must hold calibration frames for full-integer int8, got none")
    model = fold_input_norm_keras(load_pilotnet(Path(keras_path)))
    with tempfile.TemporaryDirectory() as work:
        model.export(work, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(work)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        with filtered(LITERT_NOTES):
            if isinstance(config, LiteRTFloat16):
                converter.target_spec.supported_types = [tf.float16]
            if isinstance(config, LiteRTFullInt8):
                content = _full_int8(converter, config, frames, tf)
            else:
                content = converter.convert()
    return write_bytes_atomic(out, content)


def _full_int8(converter: Any, config: LiteRTFullInt8, frames: NDArray[np.uint8], tf: Any) -> bytes:
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


def build(recipe: Conversion, parent_dir: Path, out_dir: Path, context: BuildContext) -> Built:
    """``tflite-dynamic``, ``tflite-fp16`` or ``tflite-int8`` (by ``recipe``) from the shipped tf-fp32 model."""
    config = recipe
    frames = context.calibration_frames(config.calibration_frames) if isinstance(config, LiteRTFullInt8) else None
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
    runner = BatchRunner(load_interpreter(artifact, threads=max(1, min(2, os.cpu_count() or 1))))
    return Built(artifact=artifact, predict=lambda batch: runner(batch)[0], method=method)


_CONVERSIONS = {
    LiteRTDynamicRange: "tf.lite.TFLiteConverter.from_saved_model, optimizations=[DEFAULT] (dynamic range)",
    LiteRTFloat16: "tf.lite.TFLiteConverter.from_saved_model, optimizations=[DEFAULT], supported_types=[float16]",
    LiteRTFullInt8: "tf.lite.TFLiteConverter.from_saved_model, optimizations=[DEFAULT], representative_dataset, "
                    "float32 I/O; tf.lite.experimental.QuantizationDebugger deny list keeps the last float_tail "
                    "dense layers float",
}


def _versions() -> dict[str, str]:
    from importlib.metadata import version

    import tensorflow as tf

    return {"tensorflow": tf.__version__, "ai-edge-litert": version("ai-edge-litert")}
