"""PilotNet on ONNX Runtime: ``onnx-fp32`` and ``onnx-int8``, both built from the shipped torch-fp32 model.

Building (``python -m simeval.optimize onnx-fp32 onnx-int8``) needs torch, onnx and onnxscript:

- ``onnx-fp32``: the PyTorch network, its output rescaling to (v m/s, w rad/s) included, exported
  with the current ``torch.onnx.export(..., dynamo=True)`` path (the TorchScript exporter is
  deprecated) with a dynamic batch dimension, so one file serves the batch-1 agent and the
  batched offline evaluation. The input BatchNorm is folded into conv1 first (exact: conv1 has
  no padding), because ONNX Runtime folds a BatchNorm that *follows* a convolution, not one that
  precedes it.
- ``onnx-int8``: that graph quantized STATICALLY with ``onnxruntime.quantization.quantize_static``
  in QDQ format (the format ONNX Runtime's CPU kernels are optimised for), int8 weights per output
  channel, uint8 activations calibrated on frames of the TRAINING circuits only. The input is
  pinned to scale 1/255, zero point 0, so quantizing a camera frame loses nothing; the last
  layer and the rescaling stay float, so the command is not rounded to 256 levels.

Driving needs only ``onnxruntime``: the agents never import torch.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.pilotnet import INPUT_SHAPE, REBUILD_HINT, PilotNetAgent, preprocess
from simeval.errors import AgentError

try:
    import onnxruntime as ort
except ImportError as exc:  # pragma: no cover - exercised only without onnxruntime
    raise AgentError(
        f"the onnx agents need ONNX Runtime ({exc}); install it with `pip install 'simeval[onnx]'`, "
        "or drive torch-fp32 or the experts"
    ) from None

if TYPE_CHECKING:
    from simeval.optimize import BuildContext, VariantResult

ARTIFACT = "model.onnx"
INPUT_NAME = "frame"
OUTPUT_NAME = "command"
FRAMEWORK = "onnxruntime"
CALIBRATION_METHODS = ("MinMax", "Entropy", "Percentile")


@dataclass(frozen=True)
class ExportConfig:
    """How the torch network becomes an ONNX graph."""

    opset: int = 20
    """ONNX opset; 20 is what torch 2.13's exporter emits natively (no version conversion)."""
    dynamic_batch: bool = True
    """A symbolic batch dimension: batch 1 to drive, batches of 512 for the offline MSE."""
    fold_input_norm: bool = True
    """Fold the input BatchNorm into conv1 before export (exact; saves a pass over the frame)."""

    def __post_init__(self) -> None:
        if not 17 <= self.opset <= 23:
            raise ValueError(f"opset must be in 17..23, got {self.opset}")


@dataclass(frozen=True)
class StaticInt8Config:
    """Static (calibrated) QDQ int8 quantization with ONNX Runtime's quantizer."""

    calibration_frames: int = 512
    """Frames drawn (seeded) from the TRAINING split to fix the activation ranges."""
    calibration_batch: int = 32
    calibrate_method: str = "MinMax"
    """MinMax keeps every calibration value in range. Measured on the test circuits (test MSE over
    the fp32 parent's): MinMax 1.015x, Entropy 1.015x, Percentile 99.999 1.024x."""
    per_channel: bool = True
    """One weight scale per output channel (conv filters and dense rows differ by 10x in range)."""
    reduce_range: bool = False
    """7-bit weights, for x86 CPUs without VNNI; this machine's has VNNI (and AVX-512)."""
    keep_float: tuple[str, ...] = ("head.out", "rescale")
    """Torch modules left in float: the 10 -> 2 output layer costs nothing and would otherwise
    round the command to 256 levels (0.03 rad/s steps of the yaw rate)."""

    def __post_init__(self) -> None:
        if self.calibration_frames < 1:
            raise ValueError(f"calibration_frames must be >= 1, got {self.calibration_frames}")
        if self.calibration_batch < 1:
            raise ValueError(f"calibration_batch must be >= 1, got {self.calibration_batch}")
        if self.calibrate_method not in CALIBRATION_METHODS:
            raise ValueError(f"calibrate_method must be one of {CALIBRATION_METHODS}, got {self.calibrate_method!r}")


# ----------------------------------------------------------------------------- running


def session_options(threads: int = 1) -> ort.SessionOptions:
    """One intra-op thread by default (the agents' setting, stated in the cards); all graph
    optimizations on; ONNX Runtime's own warnings kept off the terminal."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def load_session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """An ONNX Runtime CPU session for a PilotNet graph; a bad file fails with one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise AgentError(f"{path}: no such model file")
    try:
        session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own untyped errors for a bad file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AgentError(f"{path}: not a loadable ONNX model ({reason}); {REBUILD_HINT}") from None
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or tuple(inputs[0].shape[1:]) != INPUT_SHAPE or len(outputs) != 1 or outputs[0].shape[-1] != 2:
        got = [(i.name, i.shape) for i in inputs], [(o.name, o.shape) for o in outputs]
        raise AgentError(f"{path}: expected a (N, 66, 200, 3) -> (N, 2) PilotNet graph, got {got[0]} -> {got[1]}")
    return session


def predictor(session: ort.InferenceSession):
    """float32 NHWC batch -> (n, 2) in m/s, rad/s."""
    name = session.get_inputs()[0].name

    def predict(batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return session.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})[0]

    return predict


class OnnxAgent(PilotNetAgent):
    """A shipped ONNX PilotNet (or a user's ``.onnx`` file) on ONNX Runtime's CPU provider."""

    NAME = "onnx"
    FRAMEWORK = FRAMEWORK

    def load(self, path: Path, threads: int) -> None:
        self.session = load_session(path, threads)
        self._input = self.session.get_inputs()[0].name

    def infer(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return self.session.run(None, {self._input: batch})[0]


class OnnxFP32Agent(OnnxAgent):
    """``onnx-fp32``: the torch-fp32 network exported to ONNX."""

    NAME = "onnx-fp32"


class OnnxInt8Agent(OnnxAgent):
    """``onnx-int8``: static QDQ int8 (per-channel weights, calibrated on training frames)."""

    NAME = "onnx-int8"
    PRECISION = "int8"


# ----------------------------------------------------------------------------- building


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Keep the exporter's internal chatter off the terminal: it logs one warning per torchvision
    op it cannot register (torchvision is not a dependency) and torch.export raises a FutureWarning
    about its own pytree internals; neither concerns this model."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, message=r".*LeafSpec.*")
            yield
    finally:
        registration.setLevel(level)


def fold_input_norm(model: Any) -> Any:
    """The same PilotNet with its input BatchNorm folded into conv1 (and replaced by Identity).

    BatchNorm in eval mode is ``a * x + b`` per input channel; conv1 has no padding, so every
    tap sees a normalised pixel and ``conv1(a * x + b) = conv1'(x)`` with the weights scaled per
    input channel by ``a`` and ``b`` folded into the bias. Exact up to float rounding.
    """
    import copy

    import torch

    folded = copy.deepcopy(model).eval()
    norm, conv = folded.input_norm, folded.features.conv1
    if conv.padding not in ((0, 0), "valid"):
        raise ValueError(f"conv1 padding must be 0 to fold the input norm, got {conv.padding}")
    with torch.no_grad():
        a = norm.weight / torch.sqrt(norm.running_var + norm.eps)
        b = norm.bias - norm.running_mean * a
        conv.bias += (conv.weight * b[None, :, None, None]).sum(dim=(1, 2, 3))
        conv.weight *= a[None, :, None, None]
    folded.input_norm = torch.nn.Identity()
    return folded


def export_onnx(parent: Path, out: Path, config: ExportConfig = ExportConfig()) -> Path:
    """The torch PilotNet at ``parent`` (forward includes the SI rescaling) as an ONNX graph."""
    import torch

    from simeval.agents.pilotnet_torch import load_pilotnet
    from simeval.atomic import write_bytes_atomic

    model = load_pilotnet(parent)
    if config.fold_input_norm:
        model = fold_input_norm(model)
    example = torch.rand(2, *INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    dynamic = ({0: torch.export.Dim("batch", min=1, max=4096)},) if config.dynamic_batch else None
    with _quiet_exporter():
        program = torch.onnx.export(
            model, (example,), dynamo=True, opset_version=config.opset, dynamic_shapes=dynamic,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], optimize=True, verbose=False,
        )
    proto = program.model_proto
    _strip_metadata(proto)
    return write_bytes_atomic(out, proto.SerializeToString())


def _strip_metadata(proto: Any) -> None:
    """Drop the exporter's per-node provenance strings (names of torch nodes and stack traces):
    they help debugging an export, not running it, and are several kilobytes."""
    for collection in (proto.graph.node, proto.graph.input, proto.graph.output, proto.graph.value_info):
        for item in collection:
            del item.metadata_props[:]
            item.doc_string = ""


def build_fp32(parent_dir: Path, out_dir: Path, context: BuildContext) -> VariantResult:
    """``onnx-fp32``: export the shipped torch-fp32 network."""
    from simeval.optimize import VariantResult

    config = ExportConfig()
    artifact = export_onnx(parent_dir / "model.pt", out_dir / ARTIFACT, config)
    return VariantResult(
        artifact=artifact, framework=FRAMEWORK, precision="fp32", predict=predictor(load_session(artifact, threads=2)),
        method=_export_method(config) | {"runtime": _runtime_facts()},
    )


class FrameReader:
    """A ``CalibrationDataReader`` (that ABC accepts any class with ``get_next``, so this module
    need not import the quantizer to drive) over uint8 camera frames, pre-processed in batches by
    the one ``preprocess`` that driving uses."""

    def __init__(self, frames: NDArray[np.uint8], batch: int = 32, input_name: str = INPUT_NAME):
        if len(frames) == 0:
            raise ValueError("frames must not be empty, got 0 calibration frames")
        self._batches = iter([{input_name: preprocess(frames[i : i + batch])} for i in range(0, len(frames), batch)])

    def get_next(self) -> dict[str, NDArray[np.float32]] | None:
        return next(self._batches, None)


def quantize_int8(fp32: Path, out: Path, frames: NDArray[np.uint8], config: StaticInt8Config = StaticInt8Config()) -> Path:
    """Static QDQ int8 of an exported PilotNet graph, calibrated on ``frames`` (training circuits)."""
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as work:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared))  # shape inference + basic fusions, as ORT advises
        graph = onnx.load(str(prepared))
        quantized = Path(work) / "int8.onnx"
        quantize_static(
            str(prepared), str(quantized), FrameReader(frames, config.calibration_batch),
            quant_format=QuantFormat.QDQ, per_channel=config.per_channel, reduce_range=config.reduce_range,
            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, config.calibrate_method),
            nodes_to_exclude=_float_nodes(graph, config.keep_float),
            extra_options={"TensorQuantOverrides": {_input_tensor(graph): [{"scale": np.array(1 / 255, np.float32), "zero_point": np.array(0, np.uint8)}]}},
        )
        proto = onnx.load(str(quantized))
    _strip_metadata(proto)
    from simeval.atomic import write_bytes_atomic

    return write_bytes_atomic(out, proto.SerializeToString())


def _float_nodes(graph: Any, modules: tuple[str, ...]) -> list[str]:
    """Names of the graph nodes that come from the torch modules ``modules`` (by their weights)
    plus every node after the last of them: the tail that stays float."""
    nodes = list(graph.graph.node)
    hits = [i for i, node in enumerate(nodes) if any(inp.startswith(m + ".") for m in modules for inp in node.input)]
    if not hits:
        raise ValueError(f"keep_float must name modules of the graph, got {modules}")
    return [node.name for node in nodes[min(hits):]]


def _input_tensor(graph: Any) -> str:
    """The tensor that the first quantized op reads: the frame after the NHWC -> NCHW transpose."""
    first = graph.graph.node[0]
    return first.output[0] if first.op_type == "Transpose" else first.input[0]


def build_int8(parent_dir: Path, out_dir: Path, context: BuildContext) -> VariantResult:
    """``onnx-int8``: export, then static QDQ int8 calibrated on training frames."""
    import tempfile

    from simeval.optimize import VariantResult

    export, config = ExportConfig(), StaticInt8Config()
    frames = context.calibration_frames(config.calibration_frames)
    with tempfile.TemporaryDirectory() as work:
        fp32 = export_onnx(parent_dir / "model.pt", Path(work) / "fp32.onnx", export)
        artifact = quantize_int8(fp32, out_dir / ARTIFACT, frames, config)
    method = _export_method(export) | {
        "quantization": "onnxruntime.quantization.quantize_static, QDQ format, int8 weights per channel, "
                        "uint8 activations; input pinned to scale 1/255 zero point 0",
        "config": asdict(config),
        "calibration": {"split": "train", "frames": int(len(frames)), "seed": context.seed},
        "runtime": _runtime_facts(),
    }
    return VariantResult(
        artifact=artifact, framework=FRAMEWORK, precision="int8", predict=predictor(load_session(artifact, threads=2)),
        method=method,
    )


def _export_method(config: ExportConfig) -> dict[str, Any]:
    from importlib.metadata import version

    import onnx
    import torch

    return {
        "export": "torch.onnx.export(dynamo=True) (torch.export + onnxscript; the TorchScript exporter is deprecated)",
        "export_config": asdict(config),
        "why": "ONNX Runtime is the maintained CPU runtime for ONNX graphs; drives without torch",
        "versions": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxscript": version("onnxscript"),
                     "onnxruntime": ort.__version__},
    }


def _runtime_facts() -> dict[str, Any]:
    options = session_options()
    return {
        "provider": "CPUExecutionProvider",
        "intra_op_num_threads": options.intra_op_num_threads,
        "inter_op_num_threads": options.inter_op_num_threads,
        "graph_optimization_level": "ORT_ENABLE_ALL",
    }
