"""Offline MSE: a model's commands against the expert's labels, frame for frame.

Training (validation and test MSE), the optimized variants' cards and the offline table all
measure the same way: ``predict`` runs a model over uint8 frames in batches through the one
``preprocess``; ``mse_report`` gives the MSE in physical units per channel and over labels
normalised with the training set's range (the published table's unit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.pilotnet import LabelRange, preprocess

EVAL_BATCH = 512
Predict = Callable[[NDArray[np.float32]], NDArray[np.floating]]
"""A model as a function: float32 NHWC batch -> (n, 2) in m/s, rad/s."""


def batches(count: int, size: int, rng: np.random.Generator | None = None) -> Iterator[NDArray[np.int64]]:
    """Index arrays covering ``range(count)`` in batches, shuffled when ``rng`` is given."""
    order = rng.permutation(count) if rng is not None else np.arange(count)
    for start in range(0, count, size):
        yield np.sort(order[start : start + size])


def predict(call: Predict, frames: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Run ``call`` over all frames in evaluation batches."""
    out = [np.asarray(call(preprocess(frames[idx])), dtype=np.float32) for idx in batches(len(frames), EVAL_BATCH)]
    return np.concatenate(out) if out else np.empty((0, 2), np.float32)


def mse_report(predicted: NDArray[np.floating], labels: NDArray[np.floating], labels_range: LabelRange) -> dict[str, float]:
    """MSE in physical units per channel and over normalised labels (the published table's unit)."""
    predicted = np.asarray(predicted, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    physical = np.mean((predicted - labels) ** 2, axis=0)
    normalized = np.mean((labels_range.normalize(predicted) - labels_range.normalize(labels)) ** 2)
    return {
        "mse_normalized": float(normalized),
        "mse_v_mps2": float(physical[0]),
        "mse_w_radps2": float(physical[1]),
        "frames": int(len(labels)),
    }



def offline_mse(call: Predict, root: Path, labels: LabelRange) -> dict[str, Any]:
    """Offline MSE of ``call`` on each test circuit of the data set at ``root`` and on all test frames."""
    from simeval.build.dataset.store import load_manifest, load_test_set

    manifest = load_manifest(root)
    report: dict[str, Any] = {}
    predicted_all, labels_all = [], []
    for name in sorted(manifest.test_sets):
        test = load_test_set(root, name, ("frames", "labels"))
        predicted = predict(call, test["frames"])
        report[name] = mse_report(predicted, test["labels"], labels)
        predicted_all.append(predicted)
        labels_all.append(test["labels"])
    report["all"] = mse_report(np.concatenate(predicted_all), np.concatenate(labels_all), labels)
    return report
