"""The settings and records of a training run, shared by the trainer and both training loops."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simeval.agents.pilotnet import LabelRange
from simeval.agents.variants import trained_variants
from simeval.errors import ConfigError, UnknownNameError
from simeval.options import opt as _opt

FRAMEWORKS = {framework: v.name for framework, v in trained_variants().items()}
"""'torch' -> 'torch-fp32', 'tf' -> 'tf-fp32': the variants of ``simeval.agents.variants`` trained here."""


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


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
