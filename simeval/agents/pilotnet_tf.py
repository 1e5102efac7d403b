"""PilotNet in TensorFlow/Keras: the SAME network as the PyTorch one (valid padding, 1,595,528
trainable parameters), unlike the published TF model whose 'same' padding made it 17 M.

Artifacts are ``.keras`` files loaded with ``safe_mode=True`` (no lambda or pickled code runs).
Per-frame inference goes through a ``tf.function`` with a fixed signature: Keras
``model.predict`` costs tens of milliseconds per call at batch 1.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simeval.agents.pilotnet import (
    CONV_LAYERS,
    DENSE_LAYERS,
    INPUT_SHAPE,
    REBUILD_HINT,
    LabelRange,
    PilotNetAgent,
)
from simeval.errors import AgentError
from simeval.native_stderr import TENSORFLOW_NOTES, filtered

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter off the terminal
try:
    with filtered(TENSORFLOW_NOTES):  # the absl and oneDNN notes ignore TF_CPP_MIN_LOG_LEVEL
        import keras
        import tensorflow as tf
except ImportError as exc:  # pragma: no cover - exercised only without tensorflow
    raise AgentError(f"the tf agents need TensorFlow ({exc}); install it with `pip install 'simeval[tf]'`") from None

ARTIFACT = "model.keras"


def build_pilotnet(labels: LabelRange | None = None) -> tuple[keras.Model, keras.Model]:
    """(model, normalized): the deployable network ending in (v m/s, w rad/s), and the same layers
    ending before the fixed rescaling, which is what training fits."""
    labels = labels or LabelRange((0.0, 0.0), (1.0, 1.0))
    layers = keras.layers
    frame = keras.Input(INPUT_SHAPE, name="frame")
    x = layers.BatchNormalization(name="input_norm")(frame)
    for i, (filters, kernel, stride) in enumerate(CONV_LAYERS, start=1):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="valid", activation="relu", name=f"conv{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i, units in enumerate(DENSE_LAYERS, start=1):
        x = layers.Dense(units, activation="relu", name=f"fc{i}")(x)
    normalized = layers.Dense(2, name="out")(x)
    command = layers.Rescaling(scale=labels.scale.tolist(), offset=labels.offset.tolist(), name="rescale")(normalized)
    return keras.Model(frame, command, name="pilotnet"), keras.Model(frame, normalized, name="pilotnet_normalized")


def trainable_parameters(model: keras.Model) -> int:
    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


def label_range(model: keras.Model) -> LabelRange:
    """The min/max that travel inside a saved model, in its rescaling layer."""
    config = model.get_layer("rescale").get_config()
    low = np.asarray(config["offset"], dtype=np.float64)
    high = low + np.asarray(config["scale"], dtype=np.float64)
    return LabelRange(tuple(float(v) for v in low), tuple(float(v) for v in high))


def load_pilotnet(path: Path) -> keras.Model:
    """Load a ``.keras`` PilotNet in safe mode; a bad file fails with one line naming it."""
    if not Path(path).is_file():
        raise AgentError(f"{path}: no such model file")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - keras raises many types for a bad file
        raise AgentError(f"{path}: not a loadable Keras model ({type(exc).__name__}: {exc}); {REBUILD_HINT}") from None
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


class TFPilotNetAgent(PilotNetAgent):
    """``tf-fp32``: the shipped Keras model, or a user's ``.keras`` file."""

    NAME = "tf-fp32"
    FRAMEWORK = "tensorflow"

    def load(self, path: Path, threads: int) -> None:
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
