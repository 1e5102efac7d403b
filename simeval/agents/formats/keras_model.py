"""Keras model files (format ``keras``): ``tf-fp32``, or a user's ``.keras`` file.

Files are loaded with ``safe_mode=True`` (no lambda or pickled code runs). Per-frame inference
goes through a ``tf.function`` with a fixed signature: Keras ``model.predict`` costs tens of
milliseconds per call at batch 1. TensorFlow is imported here with its start-up notes filtered
(``simeval.agents.native_stderr``); build code imports ``tf`` and ``keras`` from this module so
they start the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simeval.agents.card import ModelCard
from simeval.agents.formats import Runtime
from simeval.agents.native_stderr import TENSORFLOW_NOTES, filtered
from simeval.agents.pilotnet import INPUT_SHAPE
from simeval.errors import AgentError, first_line

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off the terminal
with filtered(TENSORFLOW_NOTES):  # the absl and oneDNN notes ignore TF_CPP_MIN_LOG_LEVEL
    import keras
    import tensorflow as tf

ARTIFACT = "model.keras"


def load_pilotnet(path: Path) -> keras.Model:
    """Load a ``.keras`` PilotNet in safe mode; a bad file fails with one line naming it."""
    if not Path(path).is_file():
        raise AgentError(f"{path}: no such model file")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - keras raises many types for a bad file
        raise AgentError(f"{path}: not a loadable Keras model ({type(exc).__name__}: {first_line(exc)})") from None
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
    """A Keras PilotNet through fixed-signature ``tf.function``s (batch 1 to drive, any batch offline)."""

    FRAMEWORK = "tensorflow"

    def __init__(self, path: Path, *, threads: int, card: ModelCard | None, name: str) -> None:
        set_threads(threads)
        self.model = load_pilotnet(path)
        self._call = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec((1, *INPUT_SHAPE), tf.float32)],
        )
        self._call_batch = tf.function(
            lambda x: self.model(x, training=False),
            input_signature=[tf.TensorSpec((None, *INPUT_SHAPE), tf.float32)],
        )

    def infer(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._call(tf.constant(batch)).numpy()

    def infer_batch(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        return self._call_batch(tf.constant(batch)).numpy()
