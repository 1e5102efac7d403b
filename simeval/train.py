"""``python -m simeval.train --framework torch|tf``: fit PilotNet on the data set, ship it with its card.

Training minimises MSE on labels normalised to [0, 1] with the training split's min/max,
validates on the held-out TRAINING circuits after every epoch, stops early when validation stops
improving and keeps the best epoch. A checkpoint after every epoch makes an interrupted run
continue where it stopped (rerun the same command; ``--fresh`` starts over). The result is
written to ``agents/<torch-fp32|tf-fp32>/``: the artifact, then its card (sha256, data-set hash,
parameter count, validation and test MSE, training time, versions).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.pilotnet import LabelRange, ModelCard, mse_report, preprocess, sha256_of
from simeval.cli import add_dataclass_arguments, dataclass_from_args
from simeval.cli import opt as _opt
from simeval.errors import ConfigError, SimevalError

FRAMEWORKS = {"torch": "torch-fp32", "tf": "tf-fp32"}
EVAL_BATCH = 512


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run (the CLI is generated from these fields)."""

    framework: str = field(default="torch", **_opt("torch or tf"))
    data: Path | None = field(default=None, **_opt("data set folder; default data/pilotnet"))
    out: Path | None = field(default=None, **_opt("where the model and card go; default agents/<torch-fp32|tf-fp32>"))
    work: Path | None = field(default=None, **_opt("checkpoints; default data/training/<framework>"))
    epochs: int = field(default=10, **_opt("most epochs"))
    patience: int = field(default=2, **_opt("epochs without a better validation MSE before stopping"))
    batch_size: int = field(default=128, **_opt("frames per step"))
    learning_rate: float = field(default=1e-3, **_opt("Adam step size"))
    seed: int = field(default=0, **_opt("seeds initialisation and shuffling"))
    threads: int = field(default=max(1, os.cpu_count() or 1), **_opt("CPU threads for training"))
    max_frames: int | None = field(default=None, **_opt("use only the first N training frames (quick runs)"))
    fresh: bool = field(default=False, **_opt("ignore an existing checkpoint"))

    def __post_init__(self) -> None:
        if self.framework not in FRAMEWORKS:
            from simeval.errors import UnknownNameError

            raise UnknownNameError("framework", self.framework, FRAMEWORKS)
        for key in ("epochs", "batch_size", "threads"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        if self.patience < 0 or not self.learning_rate > 0:
            raise ConfigError("patience must be >= 0 and learning_rate > 0")

    @property
    def agent_name(self) -> str:
        return FRAMEWORKS[self.framework]

    def fingerprint(self, dataset_sha256: str) -> str:
        """What a checkpoint must match to be resumed: every setting that changes the epochs already
        run (so a run may be continued with more ``epochs`` or another ``patience``)."""
        keys = ("framework", "batch_size", "learning_rate", "seed", "max_frames")
        raw = json.dumps({k: getattr(self, k) for k in keys} | {"data": dataset_sha256}, sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


@dataclass
class Data:
    """The frames and labels a trainer needs, loaded once."""

    train_frames: NDArray[np.uint8]
    train_labels: NDArray[np.float32]
    val_frames: NDArray[np.uint8]
    val_labels: NDArray[np.float32]
    labels: LabelRange


@dataclass
class FitResult:
    epochs_run: int
    best_epoch: int
    best_val_mse: float
    history: list[dict[str, float]]
    seconds: float


def batches(count: int, size: int, rng: np.random.Generator | None = None):
    """Index arrays covering ``range(count)`` in batches, shuffled when ``rng`` is given."""
    order = rng.permutation(count) if rng is not None else np.arange(count)
    for start in range(0, count, size):
        yield np.sort(order[start : start + size])


def predict(call, frames: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Run ``call`` (float32 NHWC batch -> (n, 2)) over all frames in evaluation batches."""
    out = [np.asarray(call(preprocess(frames[idx])), dtype=np.float32) for idx in batches(len(frames), EVAL_BATCH)]
    return np.concatenate(out) if out else np.empty((0, 2), np.float32)


def load_data(config: TrainConfig, root: Path) -> Data:
    from simeval.dataset import load_split

    train = load_split(root, "train", ("frames", "labels"))
    val = load_split(root, "val", ("frames", "labels"))
    if config.max_frames:
        train = {k: v[: config.max_frames] for k, v in train.items()}
    return Data(train["frames"], train["labels"], val["frames"], val["labels"], LabelRange.of(train["labels"]))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def test_report(call, root: Path, labels: LabelRange) -> dict[str, Any]:
    """Offline MSE of ``call`` on each test circuit and on all test frames together."""
    from simeval.dataset import load_manifest, load_test_set

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


def versions() -> dict[str, Any]:
    """Versions of simeval, Python and every framework loaded, the git commit and the CPU."""
    from simeval.results import environment_facts

    return {k: v for k, v in environment_facts().items() if k != "platform"}


def train(config: TrainConfig) -> ModelCard:
    """Fit, evaluate and ship one framework's PilotNet; returns its card."""
    from simeval.dataset import default_dataset_dir, load_manifest
    from simeval.paths import REPO_ROOT, data_dir

    root = config.data or default_dataset_dir()
    manifest = load_manifest(root)
    out = config.out or data_dir("agents") / config.agent_name
    work = config.work or REPO_ROOT / "data" / "training" / config.framework
    log(f"loading {root} ...")
    data = load_data(config, root)
    log(f"{len(data.train_frames):,} training frames, {len(data.val_frames):,} validation frames; labels {data.labels}")
    if config.framework == "torch":
        from simeval.agents import train_torch as backend
    else:
        from simeval.agents import train_tf as backend
    fingerprint = config.fingerprint(manifest.sha256)
    trained = backend.fit(config, data, work, fingerprint)
    artifact = backend.save(trained.model, out)
    card = ModelCard(
        name=config.agent_name,
        framework=config.framework,
        precision="fp32",
        artifact=artifact.name,
        sha256=sha256_of(artifact),
        size_bytes=artifact.stat().st_size,
        parameters=backend.parameters(trained.model),
        label_low=data.labels.low,
        label_high=data.labels.high,
        dataset={
            "manifest_sha256": manifest.sha256,
            "seed": manifest.seed,
            "train_frames": len(data.train_frames),
            "val_frames": len(data.val_frames),
        },
        training={
            "command": "python -m simeval.train " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("train.py") else "simeval.train.train",
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(config).items()},
            "epochs_run": trained.fit.epochs_run,
            "best_epoch": trained.fit.best_epoch,
            "history": trained.fit.history,
            "seconds": round(trained.fit.seconds, 1),
        },
        validation={"mse_normalized": trained.fit.best_val_mse, "circuits": [c["name"] for c in manifest.circuits if c.get("split") == "val"]},
        test=test_report(trained.predict, root, data.labels),
        versions=versions(),
    )
    card.write(out)
    return card


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simeval.train", description=__doc__.splitlines()[0])
    add_dataclass_arguments(parser, TrainConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = dataclass_from_args(TrainConfig, args)
        card = train(config)
    except SimevalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    all_test = card.test["all"]
    print(
        f"{card.name}: {card.parameters:,} parameters, {card.size_bytes / 1e6:.2f} MB, "
        f"validation MSE {card.validation['mse_normalized']:.5f}, test MSE {all_test['mse_normalized']:.5f} "
        f"(v {all_test['mse_v_mps2']:.3f} m2/s2, w {all_test['mse_w_radps2']:.4f} rad2/s2), "
        f"{card.training['seconds']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
