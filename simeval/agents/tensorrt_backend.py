"""TensorRT variants of the TensorFlow PilotNet: ``tftrt-fp32``, ``tftrt-fp16``, ``tftrt-int8``.

Two routes from the shipped Keras model to a TensorRT engine, chosen by what is installed:

- **TF-TRT** (``tensorflow.python.compiler.tensorrt.trt_convert``), the original route, where the
  TensorFlow build links TensorRT (GPU builds up to TF 2.17; later releases dropped it). The
  artifact is the converted SavedModel, zipped.
- **ONNX** everywhere else: the Keras model is exported with tf2onnx (a ``tf.function`` of the
  model, so it is still the TF graph that TensorRT sees), parsed with TensorRT's ONNX parser
  into an explicit-batch network with one optimisation profile (batch 1 optimal, up to
  ``max_batch``) and built into a serialized engine. The artifact is the ONNX file.

Engines are not shipped: they are executable code tied to one TensorRT version and one GPU, and
deserializing an engine from elsewhere runs whatever it holds. The agent builds its engine from
the verified ONNX on first use and caches it under ``$SIMEVAL_TRT_CACHE`` (default
``~/.cache/simeval/trt``), keyed by the sha256 of everything that changes it: the ONNX bytes,
precision, build limits, calibration set, TensorRT version, GPU name and compute capability.

Precision follows the TensorRT API in hand. TensorRT 8.6-10.x ("weak typing"): FP16 and INT8
are builder flags, and INT8 scales come from an entropy calibrator
(``IInt8EntropyCalibrator2``) fed pre-processed frames of the TRAINING circuits; its calibration
cache is kept beside the engine and shipped beside the ONNX, so another GPU rebuilds the INT8
engine without the data set. TensorRT 11 removed those flags and calibrators ("strong typing"):
there the precision is put into the ONNX graph before the build, FP16 by converting weights and
compute to float16 (float32 input and output), INT8 as Q/DQ nodes whose scales come from entropy
calibration on the same frames (ONNX Runtime's calibrator, run on the CPU).

Everything up to the engine build runs without a GPU (export, calibration set, cache keys,
strong-typing conversions checked with ONNX Runtime); without TensorRT or a CUDA GPU, builders and
agents stop with one line that says what is missing and which agents run here.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import re
import tempfile
import zipfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.pilotnet import (
    INPUT_SHAPE,
    REBUILD_HINT,
    PilotNetAgent,
    preprocess,
    read_card,
    sha256_of,
)
from simeval.atomic import write_bytes_atomic, write_text_atomic
from simeval.errors import AgentError

PRECISIONS = ("fp32", "fp16", "int8")
AGENT_NAMES = {precision: f"tftrt-{precision}" for precision in PRECISIONS}
ONNX_ARTIFACT = "model.onnx"
TFTRT_ARTIFACT = "model.tftrt.zip"
CALIBRATION_CACHE = "calibration.cache"
CALIBRATION_SET = "calibration.json"
CACHE_ENV = "SIMEVAL_TRT_CACHE"
OPSET = 17
INPUT_NAME = "frame"
OUTPUT_NAME = "command"
SUMMARIES = {
    "fp32": "TensorRT FP32",
    "fp16": "TensorRT FP16",
    "int8": "TensorRT INT8, entropy calibration on training frames",
}
"""The Method column of the offline table."""
INSTALL_HINT = "on a machine with an NVIDIA GPU: pip install 'simeval[tensorrt]'"


@dataclass(frozen=True)
class TensorRTConfig:
    """How one engine is built; every field is part of the engine's cache key."""

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
        for key in ("max_batch", "workspace_bytes", "calibration_frames", "calibration_batch"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.calibration_batch > self.calibration_frames:
            raise ValueError(
                f"calibration_batch must be <= calibration_frames ({self.calibration_frames}), "
                f"got {self.calibration_batch}"
            )


# --------------------------------------------------------------------------- what is installed


@dataclass(frozen=True)
class Platform:
    """What this machine offers TensorRT: versions found, and what is missing, in words."""

    tensorrt: str | None
    """Version of the ``tensorrt`` Python module, or None."""
    gpu: str | None
    """'NAME (sm_XY)' of CUDA device 0, or None."""
    missing: tuple[str, ...]

    @property
    def ready(self) -> bool:
        return self.tensorrt is not None and self.gpu is not None


def probe() -> Platform:
    """Look for the ``tensorrt`` module and a CUDA GPU (reached through torch, which also holds the
    engine's device memory); never raises."""
    missing: list[str] = []
    version = None
    try:
        version = str(importlib.import_module("tensorrt").__version__)
    except ImportError:
        missing.append("no tensorrt module")
    except Exception as exc:  # noqa: BLE001 - a broken install raises OSError and others
        missing.append(f"tensorrt does not load ({type(exc).__name__}: {str(exc).strip().splitlines()[:1]})")
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            gpu = f"{torch.cuda.get_device_name(0)} (sm_{major}{minor})"
        else:
            missing.append("no CUDA GPU")
    except ImportError:
        missing.append("no torch to reach the GPU")
    return Platform(version, gpu, tuple(missing))


def tftrt_usable() -> bool:
    """True where TensorFlow was built with TensorRT, loads it, and sees a GPU (TF-TRT proper)."""
    try:
        import tensorflow as tf
        from tensorflow.python.compiler.tensorrt import trt_convert

        utils = trt_convert._pywrap_py_utils
        return (
            bool(utils.is_tensorrt_enabled())
            and tuple(utils.get_loaded_tensorrt_version())[0] > 0
            and bool(tf.config.list_physical_devices("GPU"))
        )
    except Exception:  # noqa: BLE001 - any failure means: not usable here
        return False


def runnable_agents() -> list[str]:
    """Registered agents that do not need TensorRT (what to suggest instead)."""
    from simeval.agents.registry import AGENTS

    return sorted(name for name, target in AGENTS.items() if not target.startswith(f"{__name__}:"))


def missing_message(name: str, platform: Platform) -> str:
    """The one line a TensorRT agent or builder fails with where it cannot run."""
    found = ", ".join(platform.missing) or "TensorRT and a GPU"
    return (
        f"{name} needs NVIDIA TensorRT and a CUDA GPU (found: {found}); "
        f"agents that run here: {', '.join(runnable_agents())}; {INSTALL_HINT}"
    )


def _require(name: str) -> Platform:
    platform = probe()
    if not platform.ready:
        raise AgentError(missing_message(name, platform))
    return platform


def _uses_weak_typing(trt: Any) -> bool:
    """TensorRT <= 10 sets precision with builder flags and calibrators; 11 removed both."""
    return hasattr(trt.BuilderFlag, "INT8") and hasattr(trt, "IInt8EntropyCalibrator2")


# --------------------------------------------------------------------------- ONNX export


def export_onnx(keras_path: Path) -> bytes:
    """The Keras PilotNet as ONNX bytes: input ``frame`` (N, 66, 200, 3) float32, output ``command``
    (N, 2) in m/s, rad/s. The same model always gives the same bytes (names are canonical)."""
    import tensorflow as tf
    import tf2onnx

    from simeval.agents.pilotnet_tf import load_pilotnet

    model = load_pilotnet(Path(keras_path))
    spec = (tf.TensorSpec((None, *INPUT_SHAPE), tf.float32, name=INPUT_NAME),)
    function = tf.function(lambda x: model(x, training=False), input_signature=spec)
    try:
        proto, _ = tf2onnx.convert.from_function(function, input_signature=spec, opset=OPSET)
    except Exception as exc:  # noqa: BLE001 - tf2onnx raises many types
        first = str(exc).strip().splitlines()[:1]
        raise AgentError(f"{keras_path}: tf2onnx could not export the model ({type(exc).__name__}: {first})") from None
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


# --------------------------------------------------------------------------- engine cache


def cache_dir() -> Path:
    """Where engines and calibration caches live: ``$SIMEVAL_TRT_CACHE``, else ~/.cache/simeval/trt."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "simeval" / "trt"


def _key(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def engine_key(
    onnx_sha256: str, config: TensorRTConfig, calibration_sha256: str | None, tensorrt_version: str, gpu: str,
) -> str:
    """The engine's cache key: sha256 of every input that changes the engine."""
    return _key({
        "onnx": onnx_sha256, "config": asdict(config), "calibration": calibration_sha256,
        "tensorrt": tensorrt_version, "gpu": gpu,
    })


def calibration_key(onnx_sha256: str, calibration_sha256: str, tensorrt_version: str) -> str:
    """The calibration cache's key: scales depend on the network, the frames and TensorRT, not the GPU."""
    return _key({"onnx": onnx_sha256, "calibration": calibration_sha256, "tensorrt": tensorrt_version})


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


# --------------------------------------------------------------------------- engine build (TensorRT)


@functools.cache
def _logger(trt: Any) -> Any:
    """One logger for the process: TensorRT warns when builders and runtimes get different ones."""
    return trt.Logger(trt.Logger.WARNING)


def _entropy_calibrator(trt: Any, calibration: CalibrationSet | None, cache: Path) -> Any:
    """An ``IInt8EntropyCalibrator2`` that feeds ``calibration``'s batches from one device buffer and
    reads/writes its calibration cache at ``cache``. Without batches it can only replay the cache."""
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = list(calibration.batches) if calibration else []
            self.size = len(self.batches[0]) if self.batches else 1
            self.device = torch.empty((self.size, *INPUT_SHAPE), dtype=torch.float32, device="cuda")
            self.fed = 0
            self.asked_without_data = False

        def get_batch_size(self) -> int:
            return self.size

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self.fed >= len(self.batches):
                self.asked_without_data = not self.batches
                return None
            self.device.copy_(torch.from_numpy(self.batches[self.fed]))
            torch.cuda.synchronize()
            self.fed += 1
            return [int(self.device.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            write_bytes_atomic(cache, bytes(data))

    return EntropyCalibrator()


def _parse(trt: Any, builder: Any, onnx_bytes: bytes) -> Any:
    flags = 0
    if int(trt.__version__.split(".")[0]) < 10:  # explicit batch is the only mode from 10 on
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, _logger(trt))
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise AgentError(f"TensorRT's ONNX parser refused the exported PilotNet: {errors}")
    return network, parser


def _profile(builder: Any, low: int, best: int, high: int) -> Any:
    profile = builder.create_optimization_profile()
    profile.set_shape(INPUT_NAME, (low, *INPUT_SHAPE), (best, *INPUT_SHAPE), (high, *INPUT_SHAPE))
    return profile


def build_engine(
    onnx_bytes: bytes, config: TensorRTConfig, calibration: CalibrationSet | None, calibration_cache: Path | None,
) -> bytes:
    """Serialized engine from ``onnx_bytes``. Under weak typing, FP16/INT8 are builder flags and
    INT8 runs ``IInt8EntropyCalibrator2`` on ``calibration`` (or replays ``calibration_cache``);
    under strong typing the ONNX must already carry its precision (``precision_onnx``)."""
    import tensorrt as trt

    builder = trt.Builder(_logger(trt))
    network, _parser = _parse(trt, builder, onnx_bytes)
    settings = builder.create_builder_config()
    settings.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, config.workspace_bytes)
    settings.add_optimization_profile(_profile(builder, 1, 1, config.max_batch))
    calibrator = None
    if _uses_weak_typing(trt) and config.precision in ("fp16", "int8"):
        settings.set_flag(trt.BuilderFlag.FP16)  # INT8 keeps FP16 for layers without INT8 kernels, as TF-TRT does
    if _uses_weak_typing(trt) and config.precision == "int8":
        if calibration_cache is None:
            raise ValueError("calibration_cache must be a path for an INT8 build, got None")
        settings.set_flag(trt.BuilderFlag.INT8)
        calibrator = _entropy_calibrator(trt, calibration, calibration_cache)
        settings.int8_calibrator = calibrator
        batch = calibrator.get_batch_size()
        settings.set_calibration_profile(_profile(builder, batch, batch, batch))
    serialized = builder.build_serialized_network(network, settings)
    if calibrator is not None and calibrator.asked_without_data:
        raise AgentError(
            f"{calibration_cache}: this calibration cache does not fit TensorRT {trt.__version__}, and "
            f"recalibrating needs the data set: run `python -m simeval.optimize {AGENT_NAMES['int8']}`"
        )
    if serialized is None:
        raise AgentError(f"TensorRT {trt.__version__} could not build the {config.precision} engine (its log says why)")
    return bytes(serialized)


def precision_onnx(
    onnx_bytes: bytes, config: TensorRTConfig, calibration: CalibrationSet | None, weak_typing: bool,
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


def ensure_engine(
    onnx_bytes: bytes, config: TensorRTConfig, platform: Platform,
    calibration: CalibrationSet | None, shipped_calibration: Path | None, calibration_sha256: str | None,
) -> tuple[Path, Path | None]:
    """The cached engine for these inputs, built on a miss; returns it and its calibration cache.

    A shipped calibration cache is copied in first, so an INT8 rebuild on another GPU needs no
    frames. ``calibration_sha256`` names the frames the scales came from (in the key either way).
    """
    onnx_sha = hashlib.sha256(onnx_bytes).hexdigest()
    folder = cache_dir()
    calib_sha = calibration.sha256 if calibration else calibration_sha256
    if config.precision != "int8":
        calib_sha = None
    version, gpu = platform.tensorrt or "", platform.gpu or ""
    engine = folder / f"{engine_key(onnx_sha, config, calib_sha, version, gpu)}.engine"
    calib_cache = None
    if calib_sha is not None:
        calib_cache = folder / f"{calibration_key(onnx_sha, calib_sha, version)}.calibration"
        replay = calibration is None and shipped_calibration is not None and shipped_calibration.is_file()
        if replay and not calib_cache.is_file():
            write_bytes_atomic(calib_cache, shipped_calibration.read_bytes())
    if not engine.is_file():
        write_bytes_atomic(engine, build_engine(onnx_bytes, config, calibration, calib_cache))
    return engine, calib_cache


# --------------------------------------------------------------------------- running an engine


class EngineRunner:
    """A deserialized engine and its device buffers: ``float32 NHWC batch -> (n, 2)`` on the GPU.

    Input and output live in torch CUDA tensors sized for ``max_batch``; each call copies the batch
    in, runs ``execute_async_v3`` on torch's current stream and copies the result out (the copy back
    waits for the stream), so the timing includes both transfers, as a driving agent pays them.
    """

    def __init__(self, engine_bytes: bytes, max_batch: int):
        import tensorrt as trt
        import torch

        self._torch = torch
        self.runtime = trt.Runtime(_logger(trt))
        self.engine = self.runtime.deserialize_cuda_engine(engine_bytes)
        if self.engine is None:
            raise AgentError(
                f"TensorRT {trt.__version__} could not deserialize the cached engine; delete {cache_dir()} to rebuild it"
            )
        self.context = self.engine.create_execution_context()
        self.max_batch = max_batch
        self.input = torch.empty((max_batch, *INPUT_SHAPE), dtype=torch.float32, device="cuda")
        self.output = torch.empty((max_batch, 2), dtype=torch.float32, device="cuda")
        self.stream = torch.cuda.Stream()  # TensorRT syncs extra on the default stream

    def __call__(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        return np.concatenate([self._run(batch[i : i + self.max_batch]) for i in range(0, len(batch), self.max_batch)])

    def _run(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        n = len(batch)
        inp, out = self.input[:n], self.output[:n]
        with self._torch.cuda.stream(self.stream):
            inp.copy_(self._torch.from_numpy(batch))
            if not self.context.set_input_shape(INPUT_NAME, (n, *INPUT_SHAPE)):
                raise AgentError(f"the engine refuses a batch of {n} (its profile admits 1 to {self.max_batch})")
            self.context.set_tensor_address(INPUT_NAME, inp.data_ptr())
            self.context.set_tensor_address(OUTPUT_NAME, out.data_ptr())
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise AgentError("TensorRT failed to run the engine (execute_async_v3 returned False)")
            return out.cpu().numpy()  # the copy back waits for the stream

    def close(self) -> None:
        self.context = self.engine = self.runtime = None


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


def build_tftrt(keras_path: Path, config: TensorRTConfig, calibration: CalibrationSet | None, target: Path) -> Path:
    """TF-TRT: SavedModel of the Keras model -> ``TrtGraphConverterV2`` (INT8 calibrated on
    ``calibration``) -> engines built for batch 1 and ``max_batch`` -> zipped to ``target``."""
    import tensorflow as tf
    from tensorflow.python.compiler.tensorrt import trt_convert

    from simeval.agents.pilotnet_tf import load_pilotnet

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


class SavedModelRunner:
    """A TF-TRT SavedModel (unzipped once into the cache, by sha256) as ``batch -> (n, 2)``."""

    def __init__(self, artifact: Path):
        import tensorflow as tf

        folder = cache_dir() / "tftrt" / sha256_of(artifact)
        if not (folder / "saved_model.pb").is_file():
            with zipfile.ZipFile(artifact) as archive:
                archive.extractall(folder)
        self._tf = tf
        self._serve = tf.saved_model.load(str(folder)).signatures["serving_default"]

    def __call__(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._serve(**{INPUT_NAME: self._tf.constant(batch)})[OUTPUT_NAME].numpy()


# --------------------------------------------------------------------------- builders


def _stage(
    precision: str, parent_dir: Path, context: Any, config: TensorRTConfig,
) -> tuple[Path, bytes, CalibrationSet | None]:
    """The CPU steps: the parent's Keras model exported to ONNX and, for INT8, the calibration set
    (training frames) with its hash, both written under the cache's build folder."""
    keras_path = parent_dir / read_card(parent_dir).artifact
    work = cache_dir() / "build" / AGENT_NAMES[precision]
    onnx_bytes = export_onnx(keras_path)
    write_bytes_atomic(work / ONNX_ARTIFACT, onnx_bytes)
    calibration = None
    if precision == "int8":
        calibration = calibration_set(context.calibration_frames(config.calibration_frames), config.calibration_batch)
        write_text_atomic(work / CALIBRATION_SET, json.dumps(calibration.describe(), indent=2) + "\n")
    return keras_path, onnx_bytes, calibration


def _build(precision: str, parent_dir: Path, out_dir: Path, context: Any) -> Any:
    """CPU steps first (export, calibration set), then TF-TRT where TensorFlow has it, else the
    ONNX route; without TensorRT or a GPU, stop after the CPU steps with the one line."""
    from simeval.optimize import VariantResult

    name = AGENT_NAMES[precision]
    config = TensorRTConfig(precision)
    keras_path, onnx_bytes, calibration = _stage(precision, parent_dir, context, config)
    method: dict[str, Any] = {
        "summary": SUMMARIES[precision], "config": asdict(config), "source": f"TensorFlow model {keras_path.name}",
    }
    if calibration is not None:
        method["calibration"] = calibration.describe() | {"calibrator": "entropy (KL divergence)"}
    if tftrt_usable():
        artifact = build_tftrt(keras_path, config, calibration, out_dir / TFTRT_ARTIFACT)
        method |= {"route": "tf-trt", "why": "TensorFlow here links TensorRT: TF-TRT proper"}
        return VariantResult(artifact, "tensorrt", precision, SavedModelRunner(artifact), method)
    platform = probe()
    if not platform.ready:
        where = cache_dir() / "build" / name
        raise AgentError(f"{missing_message(name, platform)} (CPU steps done: ONNX and calibration set in {where})")
    artifact, runner, facts = _build_onnx_route(onnx_bytes, config, calibration, platform, out_dir)
    return VariantResult(artifact, "tensorrt", precision, runner, method | facts)


def _build_onnx_route(
    onnx_bytes: bytes, config: TensorRTConfig, calibration: CalibrationSet | None, platform: Platform, out_dir: Path,
) -> tuple[Path, EngineRunner, dict[str, Any]]:
    """Engine from the export (precision put into the graph under strong typing); ships the ONNX
    it was built from and, for calibrated INT8, the calibration cache."""
    import tensorrt as trt
    import tf2onnx

    weak = _uses_weak_typing(trt)
    built = precision_onnx(onnx_bytes, config, calibration, weak)
    engine, calib_cache = ensure_engine(built, config, platform, calibration, None, None)
    artifact = write_bytes_atomic(out_dir / ONNX_ARTIFACT, built)
    if calib_cache is not None and calib_cache.is_file():
        write_bytes_atomic(out_dir / CALIBRATION_CACHE, calib_cache.read_bytes())
    facts = {
        "route": "onnx", "typing": "weak" if weak else "strong", "tensorrt": platform.tensorrt, "gpu": platform.gpu,
        "exporter": f"tf2onnx {tf2onnx.__version__}, opset {OPSET}",
        "why": "this TensorFlow has no TensorRT (TF-TRT left TensorFlow after 2.17): Keras -> tf2onnx -> TensorRT's ONNX parser",
    }
    return artifact, EngineRunner(engine.read_bytes(), config.max_batch), facts


def build_fp32(parent_dir: Path, out_dir: Path, context: Any) -> Any:
    """``tftrt-fp32``: TensorRT engine at full precision."""
    return _build("fp32", parent_dir, out_dir, context)


def build_fp16(parent_dir: Path, out_dir: Path, context: Any) -> Any:
    """``tftrt-fp16``: TensorRT engine with FP16 kernels."""
    return _build("fp16", parent_dir, out_dir, context)


def build_int8(parent_dir: Path, out_dir: Path, context: Any) -> Any:
    """``tftrt-int8``: TensorRT engine with INT8 kernels, entropy-calibrated on training frames."""
    return _build("int8", parent_dir, out_dir, context)


# --------------------------------------------------------------------------- agents


class TensorRTAgent(PilotNetAgent):
    """A shipped ``tftrt-*`` variant on the GPU: checks TensorRT and CUDA first (one line if
    missing), then the artifact's sha256, then builds or reuses the cached engine."""

    FRAMEWORK = "tensorrt"
    PRECISION = "fp32"

    def __init__(self, path: Path | None = None, threads: int = 1) -> None:
        super().__init__(path, threads)
        self.info = replace(self.info, device=f"cuda: {self._platform.gpu}")

    def check_runtime(self) -> None:
        self._platform = _require(self.NAME)

    def load(self, path: Path, threads: int) -> None:
        method = read_card(path.parent).training.get("method", {})
        config = TensorRTConfig(**{**method.get("config", {}), "precision": self.PRECISION})
        if path.suffix == ".zip":
            if not tftrt_usable():
                raise AgentError(f"{path}: a TF-TRT SavedModel needs TensorFlow built with TensorRT; {REBUILD_HINT}")
            self._run: Any = SavedModelRunner(path)
        else:
            self._run = self._engine(path, config, self._platform, method)

    @staticmethod
    def _engine(artifact: Path, config: TensorRTConfig, platform: Platform, method: dict[str, Any]) -> EngineRunner:
        import tensorrt as trt

        typing = "weak" if _uses_weak_typing(trt) else "strong"
        if config.precision != "fp32" and method.get("typing", typing) != typing:
            raise AgentError(
                f"{artifact}: built for {method['typing']}-typed TensorRT ({method.get('tensorrt')}), this is "
                f"TensorRT {platform.tensorrt}; rebuild it with `python -m simeval.optimize {AGENT_NAMES[config.precision]}`"
            )
        calibration_sha = method.get("calibration", {}).get("sha256")
        if config.precision == "int8" and calibration_sha is None:
            raise AgentError(f"{artifact.parent / 'card.json'}: no calibration record in the card; {REBUILD_HINT}")
        shipped_cache = artifact.parent / CALIBRATION_CACHE
        engine, _ = ensure_engine(artifact.read_bytes(), config, platform, None, shipped_cache, calibration_sha)
        return EngineRunner(engine.read_bytes(), config.max_batch)

    def infer(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._run(batch)

    def infer_batch(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._run(batch)  # the engine takes up to max_batch frames per call; the runner splits

    def close(self) -> None:
        if isinstance(getattr(self, "_run", None), EngineRunner):
            self._run.close()


class TFTRTFP32Agent(TensorRTAgent):
    """``tftrt-fp32``."""

    PRECISION = "fp32"
    NAME = "tftrt-fp32"


class TFTRTFP16Agent(TensorRTAgent):
    """``tftrt-fp16``."""

    PRECISION = "fp16"
    NAME = "tftrt-fp16"


class TFTRTInt8Agent(TensorRTAgent):
    """``tftrt-int8``."""

    PRECISION = "int8"
    NAME = "tftrt-int8"
