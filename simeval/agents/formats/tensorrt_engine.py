"""TensorRT engines of the TensorFlow PilotNet (format ``tensorrt``): ``tftrt-fp32``, ``-fp16``, ``-int8``.

The artifact is an ONNX graph (or, where TensorFlow links TensorRT, a zipped TF-TRT SavedModel)
that ``simeval.build.optimize.tensorrt_build`` made from the Keras model. Engines are not shipped:
they are executable code tied to one TensorRT version and one GPU, and deserializing an engine
from elsewhere runs whatever it holds. The runtime builds its engine from the verified ONNX on
first use and caches it under ``$SIMEVAL_TRT_CACHE`` (default ``~/.cache/simeval/trt``), keyed by
the sha256 of everything that changes it: the ONNX bytes, precision, build limits, calibration
set, TensorRT version, GPU name and compute capability.

Precision follows the TensorRT API in hand. TensorRT 8.6-10.x ("weak typing"): FP16 and INT8 are
builder flags, and INT8 scales come from an entropy calibrator (``IInt8EntropyCalibrator2``); its
calibration cache ships beside the ONNX, so another GPU rebuilds the INT8 engine without the data
set. TensorRT 11 ("strong typing") removed those flags and calibrators: there the precision is in
the ONNX graph already.

Without TensorRT or a CUDA GPU, loading stops with one line saying what is missing.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import json
import os
import zipfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.card import REBUILD_HINT, ModelCard, sha256_of
from simeval.agents.contract import Artifact, RuntimeSpec
from simeval.agents.formats import Runtime, tensor_infos
from simeval.agents.pilotnet import INPUT_SHAPE
from simeval.agents.variants import TensorRTEngine
from simeval.atomic import write_bytes_atomic
from simeval.errors import AgentError, UnavailableError, first_line

TFTRT_ARTIFACT = "model.tftrt.zip"
ONNX_ARTIFACT = "model.onnx"
CALIBRATION_CACHE = "calibration.cache"
CACHE_ENV = "SIMEVAL_TRT_CACHE"
INPUT_NAME = "frame"
OUTPUT_NAME = "command"
INSTALL_HINT = "on a machine with an NVIDIA GPU: pip install 'simeval[tensorrt]'"
Batches = Sequence[NDArray[np.float32]]
"""Pre-processed calibration frames in fixed-size batches."""


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


NVIDIA_DRIVER_FILES = ("/proc/driver/nvidia/version", "/dev/nvidiactl")
"""Present wherever the NVIDIA driver is loaded (also in GPU containers); absent, there is no CUDA GPU."""


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
        missing.append(f"tensorrt does not load ({type(exc).__name__}: {first_line(exc)})")
    gpu = None
    if not any(Path(p).exists() for p in NVIDIA_DRIVER_FILES):  # no driver: no GPU, and no torch import (1-2 s) to learn it
        return Platform(version, None, (*missing, "no CUDA GPU"))
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


def missing_message(name: str, platform: Platform) -> str:
    """The one line a TensorRT agent or builder fails with where it cannot run."""
    found = ", ".join(platform.missing) or "TensorRT and a GPU"
    return f"{name} needs NVIDIA TensorRT and a CUDA GPU (found: {found}); {INSTALL_HINT}"


def require(name: str) -> Platform:
    """What this machine offers TensorRT, or one ``UnavailableError`` line saying what is missing."""
    platform = probe()
    if not platform.ready:
        raise UnavailableError(missing_message(name, platform))
    return platform


def uses_weak_typing(trt: Any) -> bool:
    """TensorRT <= 10 sets precision with builder flags and calibrators; 11 removed both."""
    return hasattr(trt.BuilderFlag, "INT8") and hasattr(trt, "IInt8EntropyCalibrator2")


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
    onnx_sha256: str, config: TensorRTEngine, calibration_sha256: str | None, tensorrt_version: str, gpu: str,
) -> str:
    """The engine's cache key: sha256 of every input that changes the engine."""
    return _key({
        "onnx": onnx_sha256, "config": asdict(config), "calibration": calibration_sha256,
        "tensorrt": tensorrt_version, "gpu": gpu,
    })


def calibration_key(onnx_sha256: str, calibration_sha256: str, tensorrt_version: str) -> str:
    """The calibration cache's key: scales depend on the network, the frames and TensorRT, not the GPU."""
    return _key({"onnx": onnx_sha256, "calibration": calibration_sha256, "tensorrt": tensorrt_version})


# --------------------------------------------------------------------------- engine build (TensorRT)


@functools.cache
def _logger(trt: Any) -> Any:
    """One logger for the process: TensorRT warns when builders and runtimes get different ones."""
    return trt.Logger(trt.Logger.WARNING)


def _entropy_calibrator(trt: Any, batches: Batches | None, cache: Path) -> Any:
    """An ``IInt8EntropyCalibrator2`` that feeds ``batches`` from one device buffer and reads/writes
    its calibration cache at ``cache``. Without batches it can only replay the cache."""
    import torch

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = list(batches) if batches else []
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
    onnx_bytes: bytes, config: TensorRTEngine, batches: Batches | None, calibration_cache: Path | None,
) -> bytes:
    """Serialized engine from ``onnx_bytes``. Under weak typing, FP16/INT8 are builder flags and
    INT8 runs ``IInt8EntropyCalibrator2`` on calibration ``batches`` (or replays
    ``calibration_cache``); under strong typing the ONNX must already carry its precision
    (``simeval.build.optimize.tensorrt_build.precision_onnx``)."""
    import tensorrt as trt

    builder = trt.Builder(_logger(trt))
    network, _parser = _parse(trt, builder, onnx_bytes)
    settings = builder.create_builder_config()
    settings.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, config.workspace_bytes)
    settings.add_optimization_profile(_profile(builder, 1, 1, config.max_batch))
    calibrator = None
    if uses_weak_typing(trt) and config.precision in ("fp16", "int8"):
        settings.set_flag(trt.BuilderFlag.FP16)  # INT8 keeps FP16 for layers without INT8 kernels, as TF-TRT does
    if uses_weak_typing(trt) and config.precision == "int8":
        if calibration_cache is None:
            raise ValueError("calibration_cache must be a path for an INT8 build, got None")
        settings.set_flag(trt.BuilderFlag.INT8)
        calibrator = _entropy_calibrator(trt, batches, calibration_cache)
        settings.int8_calibrator = calibrator
        batch = calibrator.get_batch_size()
        settings.set_calibration_profile(_profile(builder, batch, batch, batch))
    serialized = builder.build_serialized_network(network, settings)
    if calibrator is not None and calibrator.asked_without_data:
        raise AgentError(
            f"{calibration_cache}: this calibration cache does not fit TensorRT {trt.__version__}, and "
            "recalibrating needs the data set: run `python -m simeval.optimize tftrt-int8`"
        )
    if serialized is None:
        raise AgentError(f"TensorRT {trt.__version__} could not build the {config.precision} engine (its log says why)")
    return bytes(serialized)


def ensure_engine(
    onnx_bytes: bytes, config: TensorRTEngine, platform: Platform,
    batches: Batches | None, shipped_calibration: Path | None, calibration_sha256: str | None,
) -> tuple[Path, Path | None]:
    """The cached engine for these inputs, built on a miss; returns it and its calibration cache.

    A shipped calibration cache is copied in first, so an INT8 rebuild on another GPU needs no
    frames. ``calibration_sha256`` names the frames the scales came from (in the key either way);
    ``batches`` are those frames, pre-processed, when the engine is built from them.
    """
    onnx_sha = hashlib.sha256(onnx_bytes).hexdigest()
    folder = cache_dir()
    calib_sha = calibration_sha256
    if config.precision != "int8":
        calib_sha = None
    version, gpu = platform.tensorrt or "", platform.gpu or ""
    engine = folder / f"{engine_key(onnx_sha, config, calib_sha, version, gpu)}.engine"
    calib_cache = None
    if calib_sha is not None:
        calib_cache = folder / f"{calibration_key(onnx_sha, calib_sha, version)}.calibration"
        replay = batches is None and shipped_calibration is not None and shipped_calibration.is_file()
        if replay and not calib_cache.is_file():
            write_bytes_atomic(calib_cache, shipped_calibration.read_bytes())
    if not engine.is_file():
        write_bytes_atomic(engine, build_engine(onnx_bytes, config, batches, calib_cache))
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


# --------------------------------------------------------------------------- the runtime


class TensorRTRuntime(Runtime):
    """A shipped ``tftrt-*`` variant on the GPU: TensorRT and CUDA are checked first (one line if
    missing), then the engine is built from the verified ONNX or reused from the cache."""

    FRAMEWORK = "tensorrt"

    @classmethod
    def check_available(cls, name: str) -> None:
        require(name)

    def __init__(self, artifact: Artifact, *, spec: RuntimeSpec, card: ModelCard | None, name: str) -> None:
        path = Path(artifact.path)
        if card is None:
            raise AgentError(f"{path}: a TensorRT model needs its card (precision, calibration); drive a shipped tftrt-* agent")
        platform = require(name)
        self.device = f"cuda: {platform.gpu}"
        method = card.training.get("method", {})
        config = TensorRTEngine(**{**method.get("config", {}), "precision": card.precision})
        if path.suffix == ".zip":
            if not tftrt_usable():
                raise AgentError(f"{path}: a TF-TRT SavedModel needs TensorFlow built with TensorRT; {REBUILD_HINT}")
            self._run: Any = SavedModelRunner(path)
        else:
            self._run = self._engine(path, config, platform, method)
        self.inputs = tensor_infos([INPUT_NAME], [(None, *INPUT_SHAPE)], ["float32"])
        self.outputs = tensor_infos([OUTPUT_NAME], [(None, 2)], ["float32"])

    @staticmethod
    def _engine(artifact: Path, config: TensorRTEngine, platform: Platform, method: dict[str, Any]) -> EngineRunner:
        import tensorrt as trt

        typing = "weak" if uses_weak_typing(trt) else "strong"
        if config.precision != "fp32" and method.get("typing", typing) != typing:
            raise AgentError(
                f"{artifact}: built for {method['typing']}-typed TensorRT ({method.get('tensorrt')}), this is "
                f"TensorRT {platform.tensorrt}; rebuild it with `python -m simeval.optimize tftrt-{config.precision}`"
            )
        calibration_sha = method.get("calibration", {}).get("sha256")
        if config.precision == "int8" and calibration_sha is None:
            raise AgentError(f"{artifact.parent / 'card.json'}: no calibration record in the card; {REBUILD_HINT}")
        shipped_cache = artifact.parent / CALIBRATION_CACHE
        engine, _ = ensure_engine(artifact.read_bytes(), config, platform, None, shipped_cache, calibration_sha)
        return EngineRunner(engine.read_bytes(), config.max_batch)

    def run(self, batch: NDArray) -> list[NDArray]:
        return [self._run(batch)]  # the engine takes up to max_batch frames per call; the runner splits

    def close(self) -> None:
        if isinstance(getattr(self, "_run", None), EngineRunner):
            self._run.close()


class EngineFileRuntime(Runtime):
    """A user's serialized TensorRT engine (trusted: an engine holds native code), on the GPU.

    The engine's own input and output tensors are used as they are (one input; every output, in
    the engine's order), with device buffers sized for the engine's largest profile batch.
    """

    FRAMEWORK = "tensorrt"

    @classmethod
    def check_available(cls, name: str) -> None:
        require(name)

    def __init__(self, artifact: Artifact, *, spec: RuntimeSpec, card: ModelCard | None, name: str) -> None:
        import tensorrt as trt
        import torch

        platform = require(name)
        self.device = f"cuda: {platform.gpu}"
        path = Path(artifact.path)
        if not path.is_file():
            raise AgentError(f"{path}: no such model file")
        self._torch = torch
        self.runtime = trt.Runtime(_logger(trt))
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise AgentError(f"{path}: TensorRT {trt.__version__} could not deserialize this engine (built by another "
                             "TensorRT version or for another GPU?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        modes = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        infos = {n: (tuple(self.engine.get_tensor_shape(n)), trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self.inputs = tensor_infos([n for n in names if modes[n]], [infos[n][0] for n in names if modes[n]],
                                   [infos[n][1] for n in names if modes[n]])
        self.outputs = tensor_infos([n for n in names if not modes[n]], [infos[n][0] for n in names if not modes[n]],
                                    [infos[n][1] for n in names if not modes[n]])
        self.stream = torch.cuda.Stream()

    def run(self, batch: NDArray) -> list[NDArray]:
        torch = self._torch
        name = self.inputs[0].name
        inp = torch.from_numpy(np.ascontiguousarray(batch)).cuda()
        with torch.cuda.stream(self.stream):
            if not self.context.set_input_shape(name, tuple(batch.shape)):
                raise AgentError(f"the engine refuses an input of shape {tuple(batch.shape)}")
            self.context.set_tensor_address(name, inp.data_ptr())
            outputs = []
            for info in self.outputs:
                shape = tuple(self.context.get_tensor_shape(info.name))
                out = torch.empty(shape, dtype=getattr(torch, info.dtype), device="cuda")
                self.context.set_tensor_address(info.name, out.data_ptr())
                outputs.append(out)
            if not self.context.execute_async_v3(self.stream.cuda_stream):
                raise AgentError("TensorRT failed to run the engine (execute_async_v3 returned False)")
            return [o.cpu().numpy() for o in outputs]  # the copy back waits for the stream

    def close(self) -> None:
        self.context = self.engine = self.runtime = None
