"""Keras model files (format ``keras``): ``tf-fp32``, or a user's ``.keras`` or ``.h5`` file.

Files are loaded with ``safe_mode=True`` (no lambda or pickled code runs). Per-frame inference
goes through a ``tf.function`` with a fixed signature: Keras ``model.predict`` costs tens of
milliseconds per call at batch 1. TensorFlow is imported here with its start-up notes filtered
(``simeval.agents.native_stderr``); build code imports ``tf`` and ``keras`` from this module so
they start the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

from numpy.typing import NDArray

from simeval.agents.card import ModelCard
from simeval.agents.contract import Artifact, RuntimeSpec
from simeval.agents.formats import Runtime, tensor_infos
from simeval.agents.native_stderr import TENSORFLOW_NOTES, filtered
from simeval.agents.pilotnet import INPUT_SHAPE
from simeval.errors import AgentError, first_line

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off the terminal
with filtered(TENSORFLOW_NOTES):  # the absl and oneDNN notes ignore TF_CPP_MIN_LOG_LEVEL
    import keras
    import tensorflow as tf

ARTIFACT = "model.keras"


def load_keras(path: Path) -> keras.Model:
    """Load a ``.keras`` or ``.h5`` model in safe mode (a Lambda layer's code is refused); a bad
    file fails with one line naming it."""
    path = Path(path)
    if not path.is_file():
        raise AgentError(f"{path}: no such model file")
    if path.stat().st_size == 0:
        raise AgentError(f"{path}: the file is empty")
    try:
        with filtered(TENSORFLOW_NOTES):
            return keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - keras raises many types for a bad file
        raise AgentError(f"{path}: not a loadable Keras model ({type(exc).__name__}: {first_line(exc)})") from None


def load_pilotnet(path: Path) -> keras.Model:
    """Load simeval's Keras PilotNet ((66, 200, 3) -> (2,) in m/s, rad/s): what the builds start from."""
    model = load_keras(path)
    if tuple(model.input_shape[1:]) != INPUT_SHAPE or tuple(model.output_shape[1:]) != (2,):
        raise AgentError(f"{path}: expected a (66, 200, 3) -> (2,) PilotNet, got {model.input_shape} -> {model.output_shape}")
    return model


def set_threads(threads: int) -> None:
    """Pin TensorFlow's thread pools (only possible before its runtime starts; later calls keep it)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass


class KerasRuntime(Runtime):
    """A Keras model through fixed-signature ``tf.function``s (batch 1 to drive, any batch offline)."""

    FRAMEWORK = "tensorflow"

    def __init__(self, artifact: Artifact, *, spec: RuntimeSpec, card: ModelCard | None, name: str) -> None:
        set_threads(spec.threads)
        self.model = load_keras(Path(artifact.path))
        if len(self.model.inputs) != 1:
            raise AgentError(f"{artifact.path}: expected a model with one input, found {len(self.model.inputs)}")
        shape = tuple(self.model.inputs[0].shape[1:])
        self.inputs = tensor_infos([self.model.inputs[0].name], [(None, *shape)], ["float32"])
        self.outputs = tensor_infos([o.name for o in self.model.outputs], [tuple(o.shape) for o in self.model.outputs],
                                    ["float32"] * len(self.model.outputs))
        self._call = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec((1, *shape), tf.float32)],
        )
        self._call_batch = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec((None, *shape), tf.float32)],
        )

    def run(self, batch: NDArray) -> list[NDArray]:
        call = self._call if len(batch) == 1 else self._call_batch
        return _outputs(call(tf.constant(batch)))


def _outputs(result: object) -> list[NDArray]:
    """A Keras call's outputs as arrays, in the model's output order."""
    if isinstance(result, (list, tuple)):
        return [r.numpy() for r in result]
    if isinstance(result, dict):
        return [result[k].numpy() for k in sorted(result)]
    return [result.numpy()]
