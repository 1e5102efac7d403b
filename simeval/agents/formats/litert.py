"""TFLite flatbuffers on the LiteRT interpreter (format ``tflite``): ``tflite-dynamic``,
``tflite-fp16`` and ``tflite-int8``.

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
from simeval.agents.formats import Runtime
from simeval.agents.native_stderr import LITERT_NOTES, filtered
from simeval.agents.pilotnet import INPUT_SHAPE
from simeval.errors import AgentError, first_line

ARTIFACT = "model.tflite"


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
        raise AgentError(f"{where}: not a loadable LiteRT model ({first_line(exc)})") from None
    inputs, outputs = interpreter.get_input_details(), interpreter.get_output_details()
    if len(inputs) != 1 or tuple(inputs[0]["shape"][1:]) != INPUT_SHAPE or len(outputs) != 1 or outputs[0]["shape"][-1] != 2:
        got = [tuple(d["shape"]) for d in inputs], [tuple(d["shape"]) for d in outputs]
        raise AgentError(f"{where}: expected a (N, 66, 200, 3) -> (N, 2) PilotNet, got {got[0]} -> {got[1]}")
    if inputs[0]["dtype"] != np.float32 or outputs[0]["dtype"] != np.float32:
        got = np.dtype(inputs[0]["dtype"]).name, np.dtype(outputs[0]["dtype"]).name
        raise AgentError(f"{where}: expected float32 input and output (frames in [0, 1], command in m/s, rad/s), got {got[0]} -> {got[1]}")
    return interpreter


class BatchRunner:
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


class LiteRTRuntime(Runtime):
    """A float32-I/O TFLite PilotNet on the LiteRT CPU interpreter (XNNPACK)."""

    FRAMEWORK = "litert"

    def __init__(self, path: Path, *, threads: int, card: ModelCard | None, name: str) -> None:
        self.run = BatchRunner(load_interpreter(path, threads))

    def infer(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return self.run(batch)
