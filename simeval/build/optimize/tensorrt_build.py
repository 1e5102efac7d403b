"""TensorRT variants of the TensorFlow PilotNet: the builds of ``tftrt-fp32``, ``-fp16`` and ``-int8``
(driven by ``simeval.agents.formats.tensorrt_engine``).

Two routes from the shipped Keras model to a TensorRT engine, chosen by what is installed:

- **TF-TRT** (``tensorflow.python.compiler.tensorrt.trt_convert``), the original route, where the
  TensorFlow build links TensorRT (GPU builds up to TF 2.17; later releases dropped it). The
  artifact is the converted SavedModel, zipped.
- **ONNX** everywhere else: the Keras model is exported with tf2onnx (a ``tf.function`` of the
  model, so it is still the TF graph that TensorRT sees), parsed with TensorRT's ONNX parser into
  an explicit-batch network with one optimisation profile (batch 1 optimal, up to ``max_batch``)
  and built into a serialized engine. The artifact is the ONNX file (engines are not shipped).

INT8 scales come from entropy calibration on pre-processed frames of the TRAINING circuits. Under
TensorRT 11's strong typing the precision is put into the ONNX graph before the build: FP16 by
converting weights and compute to float16 (float32 input and output), INT8 as Q/DQ nodes whose
scales come from entropy calibration on the same frames (ONNX Runtime's calibrator, on the CPU).

Everything up to the engine build runs without a GPU (export, calibration set, cache keys,
strong-typing conversions checked with ONNX Runtime); without TensorRT or a CUDA GPU the build
stops after those steps with one line that says what is missing.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.card import read_card
from simeval.agents.formats.keras_model import load_pilotnet
from simeval.agents.formats.tensorrt_engine import (
    CALIBRATION_CACHE,
    INPUT_NAME,
    ONNX_ARTIFACT,
    OUTPUT_NAME,
    TFTRT_ARTIFACT,
    EngineRunner,
    Platform,
    SavedModelRunner,
    cache_dir,
    ensure_engine,
    missing_message,
    probe,
    tftrt_usable,
    uses_weak_typing,
)
from simeval.agents.pilotnet import INPUT_SHAPE, preprocess
from simeval.agents.variants import TensorRTEngine, variant
from simeval.atomic import write_bytes_atomic, write_text_atomic
from simeval.build.optimize.context import BuildContext, Built
from simeval.errors import AgentError, UnavailableError, first_line

OPSET = 17
CALIBRATION_SET = "calibration.json"


# --------------------------------------------------------------------------- ONNX export


def export_onnx(keras_path: Path) -> bytes:
    """The Keras PilotNet as ONNX bytes: input ``frame`` (N, 66, 200, 3) float32, output ``command``
    (N, 2) in m/s, rad/s. The same model always gives the same bytes (names are canonical)."""
    import tensorflow as tf
    import tf2onnx

    model = load_pilotnet(Path(keras_path))
    spec = (tf.TensorSpec((None, *INPUT_SHAPE), tf.float32, name=INPUT_NAME),)
    function = tf.function(lambda x: model(x, training=False), input_signature=spec)
    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=OPSET)
    except Exception as exc:  # noqa: BLE001 - tf2onnx raises many types
        raise AgentError(f"{keras_path}: tf2onnx could not export the model ({type(exc).__name__}: {first_line(exc)})") from None
    return _canonical(proto).SerializeToString()


def _canonical(model: Any) -> Any:
    """Rename nodes, intermediate tensors and tf2onnx's helper constants by position, and sort the
    initializers: tf2onnx numbers names with a process-wide counter and orders constants as it
    meets them, which would change the bytes (and the engine cache key) on every export."""
    graph = model.graph
    counted = {t.name for t in graph.initializer if re.search(r"__\d+", t.name)}  # weights keep their Keras names
    rename = {graph.output[0].name: OUTPUT_NAME}
    keep = {i.name for i in graph.input} | {t.name for t in graph.initializer} - counted
    for index, node in enumerate(graph.node):
        node.name = f"{node.op_type}_{index}"
        for k, name in enumerate(node.input):
            if name in counted:
                rename.setdefault(name, f"{node.name}_in{k}")
        for k, name in enumerate(node.output):
            if name not in keep:
                rename.setdefault(name, f"{node.name}:{k}")
    for node in graph.node:
        node.input[:] = [rename.get(n, n) for n in node.input]
        node.output[:] = [rename.get(n, n) for n in node.output]
    for value in [*graph.output, *graph.value_info, *graph.initializer]:
        value.name = rename.get(value.name, value.name)
    tensors = sorted((_copy(t) for t in graph.initializer), key=lambda t: t.name)
    del graph.initializer[:]
    graph.initializer.extend(tensors)
    for value in [*graph.input, *graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    graph.doc_string = ""  # names the traced function, numbered per process
    model.producer_version = ""
    return model


def _copy(message: Any) -> Any:
    twin = type(message)()
    twin.CopyFrom(message)
    return twin


def onnx_predict(onnx_bytes: bytes) -> Any:
    """A CPU ONNX Runtime session as ``float32 NHWC batch -> (n, 2)`` (checks the export here)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
    return lambda batch: session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(batch, np.float32)})[0]


# --------------------------------------------------------------------------- calibration set


@dataclass(frozen=True)
class CalibrationSet:
    """The batches an INT8 calibrator is fed: pre-processed training frames, in fixed-size batches."""

    batches: tuple[NDArray[np.float32], ...]
    sha256: str
    """Of the pre-processed frames (so a change of frames or of pre-processing recalibrates)."""

    @property
    def frames(self) -> int:
        return sum(len(b) for b in self.batches)

    def describe(self) -> dict[str, Any]:
        return {
            "sha256": self.sha256, "frames": self.frames, "batches": len(self.batches),
            "batch": len(self.batches[0]), "source": "train split (training circuits only)",
        }


def calibration_set(frames: NDArray[np.uint8], batch: int) -> CalibrationSet:
    """Pre-process ``frames`` with the one ``preprocess`` and cut them into whole batches (a partial
    last batch is dropped: the calibration profile has one fixed batch size)."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    if len(frames) < batch:
        raise ValueError(f"frames must hold at least one batch of {batch}, got {len(frames)}")
    data = preprocess(frames)[: len(frames) // batch * batch]
    digest = hashlib.sha256(repr(data.shape).encode())
    digest.update(np.ascontiguousarray(data).tobytes())
    batches = tuple(np.ascontiguousarray(b) for b in np.split(data, len(data) // batch))
    return CalibrationSet(batches, digest.hexdigest())


# --------------------------------------------------------------------------- strong typing (TensorRT 11)


def to_fp16_onnx(onnx_bytes: bytes) -> bytes:
    """Weights and compute in float16, input and output kept float32 (what a strongly typed
    TensorRT builds as FP16)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(onnx.load_from_string(onnx_bytes), keep_io_types=True).SerializeToString()


def to_qdq_onnx(onnx_bytes: bytes, calibration: CalibrationSet) -> bytes:
    """Explicit INT8: Q/DQ nodes on the inputs and weights of the convolutions and matrix products
    only, placed as TensorRT wants them: symmetric INT8, per-channel weights, float biases (the
    input scaling and the output rescaling stay float). Activation scales come from entropy
    calibration on ``calibration``."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(calibration.batches)

        def get_next(self) -> dict[str, NDArray[np.float32]] | None:
            batch = next(self._batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(onnx_bytes)
        quantize_static(
            source, target, Reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8, per_channel=True, calibrate_method=CalibrationMethod.Entropy,
            op_types_to_quantize=["Conv", "MatMul"],
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True, "QuantizeBias": False},
        )
        return target.read_bytes()


def precision_onnx(
    onnx_bytes: bytes, config: TensorRTEngine, calibration: CalibrationSet | None, weak_typing: bool,
) -> bytes:
    """The ONNX that TensorRT builds: the export itself under weak typing, or with its precision put
    into the graph (float16, or INT8 Q/DQ) for TensorRT 11's strong typing."""
    if weak_typing or config.precision == "fp32":
        return onnx_bytes
    if config.precision == "fp16":
        return to_fp16_onnx(onnx_bytes)
    if calibration is None:
        raise ValueError("calibration must be given for an INT8 build, got None")
    return to_qdq_onnx(onnx_bytes, calibration)


# --------------------------------------------------------------------------- TF-TRT proper


def _zip_folder(folder: Path, target: Path) -> Path:
    """A reproducible zip of ``folder`` (sorted names, fixed times): one file to hash and ship."""
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / target.name
        with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                info = zipfile.ZipInfo(path.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                archive.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
        return write_bytes_atomic(target, staging.read_bytes())


def build_tftrt(keras_path: Path, config: TensorRTEngine, calibration: CalibrationSet | None, target: Path) -> Path:
    """TF-TRT: SavedModel of the Keras model -> ``TrtGraphConverterV2`` (INT8 calibrated on
    ``calibration``) -> engines built for batch 1 and ``max_batch`` -> zipped to ``target``."""
    import tensorflow as tf
    from tensorflow.python.compiler.tensorrt import trt_convert

    model = load_pilotnet(keras_path)
    module = tf.Module()
    module.model = model
    module.serve = tf.function(
        lambda x: {OUTPUT_NAME: model(x, training=False)},
        input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.float32, name=INPUT_NAME)],
    )
    with tempfile.TemporaryDirectory() as tmp:
        saved, converted = Path(tmp) / "saved", Path(tmp) / "converted"
        tf.saved_model.save(module, str(saved), signatures={"serving_default": module.serve})
        converter = trt_convert.TrtGraphConverterV2(
            input_saved_model_dir=str(saved), precision_mode=config.precision.upper(),
            max_workspace_size_bytes=config.workspace_bytes, use_calibration=config.precision == "int8",
            use_dynamic_shape=True, dynamic_shape_profile_strategy="Range", maximum_cached_engines=1,
        )
        if config.precision == "int8":
            converter.convert(calibration_input_fn=lambda: ((tf.constant(b),) for b in calibration.batches))
        else:
            converter.convert()
        converter.build(input_fn=lambda: ((tf.zeros((n, *INPUT_SHAPE), tf.float32),) for n in (1, config.max_batch)))
        converter.save(str(converted))
        return _zip_folder(converted, target)


# --------------------------------------------------------------------------- builders


def _stage(
    name: str, parent_dir: Path, context: BuildContext, config: TensorRTEngine,
) -> tuple[Path, bytes, CalibrationSet | None]:
    """The CPU steps: the parent's Keras model exported to ONNX and, for INT8, the calibration set
    (training frames) with its hash, both written under the cache's build folder."""
    keras_path = parent_dir / read_card(parent_dir).artifact
    work = cache_dir() / "build" / name
    onnx_bytes = export_onnx(keras_path)
    write_bytes_atomic(work / ONNX_ARTIFACT, onnx_bytes)
    calibration = None
    if config.precision == "int8":
        calibration = calibration_set(context.calibration_frames(config.calibration_frames), config.calibration_batch)
        write_text_atomic(work / CALIBRATION_SET, json.dumps(calibration.describe(), indent=2) + "\n")
    return keras_path, onnx_bytes, calibration


def build(recipe: TensorRTEngine, parent_dir: Path, out_dir: Path, context: BuildContext) -> Built:
    """A ``tftrt-*`` variant: CPU steps first (export, calibration set), then TF-TRT where TensorFlow
    has it, else the ONNX route; without TensorRT or a GPU, stop after the CPU steps with one line."""
    name = f"tftrt-{recipe.precision}"
    config = recipe
    keras_path, onnx_bytes, calibration = _stage(name, parent_dir, context, config)
    method: dict[str, Any] = {
        "summary": variant(name).summary, "config": asdict(config), "source": f"TensorFlow model {keras_path.name}",
    }
    if calibration is not None:
        method["calibration"] = calibration.describe() | {"calibrator": "entropy (KL divergence)"}
    if tftrt_usable():
        artifact = build_tftrt(keras_path, config, calibration, out_dir / TFTRT_ARTIFACT)
        method |= {"route": "tf-trt", "why": "TensorFlow here links TensorRT: TF-TRT proper"}
        return Built(artifact, SavedModelRunner(artifact), method)
    platform = probe()
    if not platform.ready:
        where = cache_dir() / "build" / name
        raise UnavailableError(f"{missing_message(name, platform)} (CPU steps done: ONNX and calibration set in {where})")
    artifact, runner, facts = _build_onnx_route(onnx_bytes, config, calibration, platform, out_dir)
    return Built(artifact, runner, method | facts)


def _build_onnx_route(
    onnx_bytes: bytes, config: TensorRTEngine, calibration: CalibrationSet | None, platform: Platform, out_dir: Path,
) -> tuple[Path, EngineRunner, dict[str, Any]]:
    """Engine from the export (precision put into the graph under strong typing); ships the ONNX
    it was built from and, for calibrated INT8, the calibration cache."""
    import tensorrt as trt
    import tf2onnx

    weak = uses_weak_typing(trt)
    built = precision_onnx(onnx_bytes, config, calibration, weak)
    batches, calib_sha = (calibration.batches, calibration.sha256) if calibration else (None, None)
    engine, calib_cache = ensure_engine(built, config, platform, batches, None, calib_sha)
    artifact = write_bytes_atomic(out_dir / ONNX_ARTIFACT, built)
    if calib_cache is not None and calib_cache.is_file():
        write_bytes_atomic(out_dir / CALIBRATION_CACHE, calib_cache.read_bytes())
    facts = {
        "route": "onnx", "typing": "weak" if weak else "strong", "tensorrt": platform.tensorrt, "gpu": platform.gpu,
        "exporter": f"tf2onnx {tf2onnx.__version__}, opset {OPSET}",
        "why": "this TensorFlow has no TensorRT (TF-TRT left TensorFlow after 2.17): Keras -> tf2onnx -> TensorRT's ONNX parser",
    }
    return artifact, EngineRunner(engine.read_bytes(), config.max_batch), facts
