"""TFLite flatbuffers on the LiteRT interpreter (format ``tflite``): ``tflite-dynamic``,
``tflite-fp16``, ``tflite-int8``, or a user's ``.tflite`` file.

Driving needs only ``ai_edge_litert`` (the LiteRT interpreter, which replaces the deprecated
``tf.lite.Interpreter``): these agents never import TensorFlow, although their models were
converted from the Keras network (``simeval.build.optimize.litert_convert``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter
from numpy.typing import NDArray

from simeval.agents.card import ModelCard
from simeval.agents.contract import Artifact, RuntimeSpec
from simeval.agents.formats import Runtime, TensorInfo, tensor_infos
from simeval.agents.native_stderr import LITERT_NOTES, filtered
from simeval.errors import AgentError, first_line

ARTIFACT = "model.tflite"


def load_interpreter(path: Path, threads: int = 1) -> Interpreter:
    """A LiteRT interpreter for a flatbuffer, tensors allocated; a bad file fails with one line
    naming it. ``threads`` is the interpreter's thread count (XNNPACK's too)."""
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
        raise AgentError(f"{where}: not a loadable LiteRT model ({first_line(exc)})") from None
    return interpreter


def _infos(details: list[dict]) -> tuple[TensorInfo, ...]:
    quant = [tuple(d["quantization"]) if d["quantization"] != (0.0, 0) else None for d in details]
    shapes = [(None, *(int(s) for s in d["shape"][1:])) for d in details]
    return tensor_infos([d["name"] for d in details], shapes, [d["dtype"] for d in details], quant)


class BatchRunner:
    """Runs an interpreter on batches, re-sizing it only when the batch size changes (the agent
    stays at 1; the offline MSE runs batches of 512); returns every output."""

    def __init__(self, interpreter: Interpreter):
        self.interpreter = interpreter
        self._bind()

    def _bind(self) -> None:
        details = self.interpreter.get_input_details()[0]
        self._in, self._shape, self._batch = details["index"], list(details["shape"][1:]), int(details["shape"][0])
        self._out = [d["index"] for d in self.interpreter.get_output_details()]

    def __call__(self, batch: NDArray) -> list[NDArray]:
        if len(batch) != self._batch:
            self.interpreter.resize_tensor_input(self._in, [len(batch), *self._shape])
            self.interpreter.allocate_tensors()
            self._bind()
        self.interpreter.set_tensor(self._in, np.ascontiguousarray(batch))
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(index) for index in self._out]


class LiteRTRuntime(Runtime):
    """A TFLite model on the LiteRT CPU interpreter (XNNPACK)."""

    FRAMEWORK = "litert"

    def __init__(self, artifact: Artifact, *, spec: RuntimeSpec, card: ModelCard | None, name: str) -> None:
        interpreter = load_interpreter(Path(artifact.path), spec.threads)
        self.inputs, self.outputs = _infos(interpreter.get_input_details()), _infos(interpreter.get_output_details())
        self._runner = BatchRunner(interpreter)

    def run(self, batch: NDArray) -> list[NDArray]:
        return self._runner(batch)
