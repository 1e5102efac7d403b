"""ONNX variants of the torch network: the builds of ``onnx-fp32`` and ``onnx-int8`` (driven by
``simeval.agents.formats.onnx_model``). Needs torch, onnx and onnxscript.

- ``onnx-fp32``: the PyTorch network, its output rescaling to (v m/s, w rad/s) included, exported
  with the current ``torch.onnx.export(..., dynamo=True)`` path (the TorchScript exporter is
  deprecated) with a dynamic batch dimension, so one file serves the batch-1 agent and the
  batched offline evaluation. The input BatchNorm is folded into conv1 first
  (``simeval.build.optimize.folding``).
- ``onnx-int8``: that graph quantized STATICALLY with ``onnxruntime.quantization.quantize_static``
  in QDQ format (the format ONNX Runtime's CPU kernels are optimised for), int8 weights per output
  channel, uint8 activations calibrated on frames of the TRAINING circuits only. The input is
  pinned to scale 1/255, zero point 0, so quantizing a camera frame loses nothing; the last
  layer and the rescaling stay float, so the command is not rounded to 256 levels.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from numpy.typing import NDArray

from simeval.agents.contract import Artifact, RuntimeSpec
from simeval.agents.formats.onnx_model import ARTIFACT, OnnxRuntime, session_options
from simeval.agents.formats.torch_state_dict import load_pilotnet
from simeval.agents.pilotnet import INPUT_SHAPE, preprocess
from simeval.agents.variants import OnnxExport, OnnxStaticInt8
from simeval.atomic import write_bytes_atomic
from simeval.build.evaluate import Predict
from simeval.build.optimize.context import BuildContext, Built
from simeval.build.optimize.folding import fold_input_norm_torch

INPUT_NAME = "frame"
OUTPUT_NAME = "command"


@contextlib.contextmanager
def quiet_exporter() -> Iterator[None]:
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


def export_onnx(parent: Path, out: Path, config: OnnxExport | None = None) -> Path:
    """The torch PilotNet at ``parent`` (forward includes the SI rescaling) as an ONNX graph."""
    config = config or OnnxExport()
    model = load_pilotnet(parent)
    if config.fold_input_norm:
        model = fold_input_norm_torch(model)
    example = torch.rand(2, *INPUT_SHAPE, generator=torch.Generator().manual_seed(0))
    dynamic = ({0: torch.export.Dim("batch", min=1, max=4096)},) if config.dynamic_batch else None
    with quiet_exporter():
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


def _predict(artifact: Path) -> Predict:
    """The saved graph on two threads, batched: what the card's test MSE is measured with."""
    runtime = OnnxRuntime(Artifact(path=str(artifact), format="onnx"), spec=RuntimeSpec(threads=2), card=None, name=str(artifact))
    return lambda batch: runtime.run(batch)[0]


def build_fp32(recipe: OnnxExport, parent_dir: Path, out_dir: Path, context: BuildContext) -> Built:
    """``onnx-fp32``: export the shipped torch-fp32 network."""
    artifact = export_onnx(parent_dir / "model.pt", out_dir / ARTIFACT, recipe)
    return Built(artifact=artifact, predict=_predict(artifact), method=_export_method(recipe) | {"runtime": _runtime_facts()})


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


def quantize_int8(fp32: Path, out: Path, frames: NDArray[np.uint8], config: OnnxStaticInt8 | None = None) -> Path:
    """Static QDQ int8 of an exported PilotNet graph, calibrated on ``frames`` (training circuits)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    config = config or OnnxStaticInt8()
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


def build_int8(recipe: OnnxStaticInt8, parent_dir: Path, out_dir: Path, context: BuildContext) -> Built:
    """``onnx-int8``: export, then static QDQ int8 calibrated on training frames."""
    export, config = recipe.export, recipe
    frames = context.calibration_frames(config.calibration_frames)
    with tempfile.TemporaryDirectory() as work:
        fp32 = export_onnx(parent_dir / "model.pt", Path(work) / "fp32.onnx", export)
        artifact = quantize_int8(fp32, out_dir / ARTIFACT, frames, config)
    method = _export_method(export) | {
        "quantization": "onnxruntime.quantization.quantize_static, QDQ format, int8 weights per channel, "
                        "uint8 activations; input pinned to scale 1/255 zero point 0",
        "config": {k: v for k, v in asdict(config).items() if k != "export"},
        "calibration": {"split": "train", "frames": int(len(frames)), "seed": context.seed},
        "runtime": _runtime_facts(),
    }
    return Built(artifact=artifact, predict=_predict(artifact), method=method)


def _export_method(config: OnnxExport) -> dict[str, Any]:
    from importlib.metadata import version

    import onnx

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
