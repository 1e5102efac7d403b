"""The data set's settings and its on-disk layout: what every other module of the package agrees on.

See ``simeval.build.dataset`` for why the data set is made the way it is.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from simeval.errors import ConfigError
from simeval.options import opt

FORMAT = "simeval-pilotnet-dataset/1"
"""Bump when the files or the way episodes are driven change: a run refuses to resume another format."""
MANIFEST = "manifest.json"
SPLITS = ("train", "val")
SPLIT_IDS = {"train": 0, "val": 1}
TEST_DIR = "test"
LABEL_CHANNELS = ("v_mps", "w_radps")
EPISODE_STRIDE = 65536
"""Episode ids are chunk index * EPISODE_STRIDE + episode number, so chunks never share an id."""
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
DEFAULT_VAL_CIRCUITS = ("gen-002", "brandshatch", "hockenheim", "sochi")
"""Training circuits held out whole (both directions) as the 'val' split: one generated loop and
three TUMFTM tracks, so validation measures how well a model drives roads it has never seen."""
HOW_TO_MAKE = "run `python -m simeval.dataset` (or `make models`)"

ARRAYS: dict[str, tuple[str, tuple[int, ...]]] = {
    "frames": ("uint8", (66, 200, 3)),
    "labels": ("float32", (2,)),
    "executed": ("float32", (2,)),
    "circuit": ("int16", ()),
    "pose": ("float32", (3,)),
    "s": ("float32", ()),
    "d": ("float32", ()),
    "t": ("float32", ()),
    "episode": ("int32", ()),
}
"""Every array of a data file: dtype and the shape of one row (see the module docstring)."""


@dataclass(frozen=True)
class NoiseConfig:
    """DART noise on the executed command: an Ornstein-Uhlenbeck process per channel."""

    v_sigma_mps: float = 2.0
    """Stationary standard deviation of the speed noise at full episode scale (m/s)."""
    w_sigma_radps: float = 1.0
    """Stationary standard deviation of the yaw-rate noise at full episode scale (rad/s)."""
    tau_s: float = 0.5
    """Correlation time: long enough that the car drifts off the line, not just jitters."""
    clean_fraction: float = 0.2
    """Share of episodes with no noise at all; the others draw their scale from U(0, 1)."""


@dataclass(frozen=True)
class DatasetConfig:
    """Every setting that determines the data set's bytes; the manifest saves them all."""

    seed: int = field(default=0, **opt("seed of every episode (start point, noise)"))
    train_frames: int = field(default=72_000, **opt("frames in the 'train' split"))
    val_frames: int = field(default=10_000, **opt("frames in the 'val' split"))
    chunk_frames: int = field(default=4096, **opt("frames per chunk file"))
    episode_steps: int = field(default=400, **opt("longest episode (steps of 50 ms), so chunks mix circuits"))
    start_offset_m: float = field(default=0.4, **opt("episodes start up to this far left or right of the line (m)"))
    start_yaw_rad: float = field(default=0.1, **opt("and up to this far askew (rad)"))
    circuits: tuple[str, ...] | None = field(
        default=None, **opt("training circuits to drive, comma-separated (default: every circuit whose role is 'train')")
    )
    val_circuits: tuple[str, ...] = field(
        default=DEFAULT_VAL_CIRCUITS, **opt("of those, the held-out circuits of the 'val' split, comma-separated")
    )
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    def __post_init__(self) -> None:
        checks = {
            "seed": self.seed >= 0,
            "train_frames": self.train_frames >= 1,
            "val_frames": self.val_frames >= 0,
            "chunk_frames": 1 <= self.chunk_frames <= EPISODE_STRIDE,
            "episode_steps": self.episode_steps >= 1,
            "start_offset_m": 0 <= self.start_offset_m < 1.0,
            "start_yaw_rad": 0 <= self.start_yaw_rad < 0.5,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"dataset {key} is out of range: {getattr(self, key)!r}")
        if self.val_frames and not self.val_circuits:
            raise ConfigError("val_frames > 0 needs at least one validation circuit")

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON values (tuples become lists), as the manifest stores them."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


