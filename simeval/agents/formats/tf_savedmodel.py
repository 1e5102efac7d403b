"""TensorFlow SavedModel folders (format ``tf-savedmodel``): a user's exported PilotNet.

A SavedModel is a TensorFlow program (its graph's ops can read and write files), so simeval loads
one only when the user trusts it. It runs through its ``serving_default`` signature; its outputs
are ordered by name (a contract may also name them).
"""

from __future__ import annotations

from pathlib import Path

from numpy.typing import NDArray

from simeval.agents.card import ModelCard
from simeval.agents.contract import Artifact, RuntimeSpec
from simeval.agents.formats import Runtime, tensor_infos
from simeval.agents.formats.keras_model import set_threads, tf  # TensorFlow starts with its notes filtered
from simeval.errors import AgentError, first_line

SIGNATURE = "serving_default"


class SavedModelRuntime(Runtime):
    """A SavedModel's serving signature, one input tensor, every output."""

    FRAMEWORK = "tensorflow"

    def __init__(self, artifact: Artifact, *, spec: RuntimeSpec, card: ModelCard | None, name: str) -> None:
        path = Path(artifact.path)
        if not (path / "saved_model.pb").is_file():
            raise AgentError(f"{path}: not a SavedModel folder (no saved_model.pb in it)")
        set_threads(spec.threads)
        try:
            self._fn = tf.saved_model.load(str(path)).signatures[SIGNATURE]
        except Exception as exc:  # noqa: BLE001 - TensorFlow raises many types for a bad folder
            raise AgentError(f"{path}: not a loadable SavedModel with a '{SIGNATURE}' signature ({first_line(exc)})") from None
        inputs = self._fn.structured_input_signature[1]
        outputs = self._fn.structured_outputs
        self._names = sorted(outputs)
        self.inputs = tensor_infos(list(inputs), [s.shape.as_list() for s in inputs.values()],
                                   [s.dtype.as_numpy_dtype for s in inputs.values()])
        self.outputs = tensor_infos(self._names, [outputs[n].shape.as_list() for n in self._names],
                                    [outputs[n].dtype.as_numpy_dtype for n in self._names])

    def run(self, batch: NDArray) -> list[NDArray]:
        result = self._fn(**{self.inputs[0].name: tf.constant(batch)})
        return [result[n].numpy() for n in self._names]
