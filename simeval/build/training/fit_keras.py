"""The Keras PilotNet and its training loop (called by ``simeval.build.training.trainer``).

``build_pilotnet`` is the SAME network as the PyTorch one (valid padding, 1,595,528 trainable
parameters), unlike the published TF model whose 'same' padding made it 17 M.

One ``fit`` call per epoch, so the epoch logic (validation, early stopping, checkpoint) is the
same as the PyTorch loop's. The checkpoint is the compiled normalised model (optimizer state
included) plus a small JSON of the history; the best epoch's weights are kept beside it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from simeval.agents.formats.keras_model import ARTIFACT, keras, set_threads
from simeval.agents.pilotnet import CONV_LAYERS, DENSE_LAYERS, INPUT_SHAPE, LabelRange, preprocess
from simeval.atomic import public_permissions, write_text_atomic
from simeval.build.evaluate import batches, predict
from simeval.build.training.config import FitResult, log

if TYPE_CHECKING:
    from simeval.build.training.config import Data, TrainConfig

CHECKPOINT = "checkpoint.keras"
BEST = "best.weights.h5"
STATE = "state.json"


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


@dataclass
class Trained:
    model: keras.Model
    fit: FitResult

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.model(batch, training=False).numpy()


def parameters(model: keras.Model) -> int:
    return trainable_parameters(model)


def _save_keras(model: keras.Model, path: Path) -> Path:
    """Keras picks the format by extension (``.keras`` whole model, ``.weights.h5`` weights), so
    save to a temporary file with the same ending beside ``path``, then rename."""
    whole = path.name.endswith(".keras")
    suffix = ".keras" if whole else ".weights.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        if whole:
            model.save(tmp)
        else:
            model.save_weights(tmp)
        public_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save(model: keras.Model, out: Path) -> Path:
    return _save_keras(model, out / ARTIFACT)


class FrameBatches(keras.utils.PyDataset):
    """Pre-processed batches straight from the uint8 frames (no float copy of the whole split)."""

    def __init__(self, frames: np.ndarray, targets: np.ndarray, batch_size: int, rng: np.random.Generator):
        super().__init__()
        self.frames, self.targets = frames, targets
        self.index = list(batches(len(frames), batch_size, rng))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        idx = self.index[i]
        return preprocess(self.frames[idx]), self.targets[idx]


def _validation_mse(normalized: keras.Model, data: Data) -> float:
    target = data.labels.normalize(data.val_labels)
    out = predict(lambda x: normalized(x, training=False).numpy(), data.val_frames)
    return float(np.mean((out - target) ** 2))


def fit(config: TrainConfig, data: Data, work: Path, fingerprint: str) -> Trained:
    """Adam on normalised MSE, early stopping on validation MSE, a checkpoint after every epoch."""

    keras.utils.set_random_seed(config.seed)
    set_threads(config.threads)
    model, normalized = build_pilotnet(data.labels)
    state_path, checkpoint_path, best_path = work / STATE, work / CHECKPOINT, work / BEST
    state = json.loads(state_path.read_text()) if state_path.is_file() and not config.fresh else None
    if state is not None and state.get("fingerprint") == fingerprint and checkpoint_path.is_file():
        normalized = keras.saving.load_model(checkpoint_path, compile=True, safe_mode=True)
        model = _with_rescale(normalized, data)
        log(f"resuming from {checkpoint_path} after epoch {len(state['history'])}")
    else:
        shutil.rmtree(work, ignore_errors=True)
        state = {"fingerprint": fingerprint, "history": [], "best_val": float("inf"), "best_epoch": 0, "seconds": 0.0}
        normalized.compile(optimizer=keras.optimizers.Adam(config.learning_rate), loss="mse")
    target = data.labels.normalize(data.train_labels)
    for epoch in range(len(state["history"]) + 1, config.epochs + 1):
        if epoch - state["best_epoch"] > config.patience and state["best_epoch"] > 0:
            break
        started = time.perf_counter()
        rng = np.random.default_rng([config.seed, epoch])
        run = normalized.fit(FrameBatches(data.train_frames, target, config.batch_size, rng), epochs=1, verbose=0)
        val = _validation_mse(normalized, data)
        state["seconds"] += time.perf_counter() - started
        train_mse = float(run.history["loss"][-1])
        state["history"].append({"epoch": epoch, "train_mse": train_mse, "val_mse": val})
        if val < state["best_val"]:
            state["best_val"], state["best_epoch"] = val, epoch
            _save_keras(normalized, best_path)
        best = " (best)" if state["best_epoch"] == epoch else ""
        log(f"epoch {epoch}: train MSE {train_mse:.5f}, validation MSE {val:.5f}{best}, {state['seconds']:.0f} s")
        _save_keras(normalized, checkpoint_path)
        write_text_atomic(state_path, json.dumps(state))
    normalized.load_weights(best_path)
    model = _with_rescale(normalized, data)
    return Trained(model, FitResult(len(state["history"]), state["best_epoch"], state["best_val"], state["history"], state["seconds"]))


def _with_rescale(normalized: keras.Model, data: Data) -> keras.Model:
    """The deployable model: the trained layers followed by the fixed rescaling to SI units."""
    model, fresh = build_pilotnet(data.labels)
    fresh.set_weights(normalized.get_weights())
    return model
