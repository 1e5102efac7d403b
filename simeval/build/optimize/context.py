"""What an optimized variant's build handler gets (``BuildContext``) and gives back (``Built``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.build.evaluate import Predict


@dataclass
class BuildContext:
    """What every handler may use: the data set and a seeded source of calibration frames."""

    data: Path
    seed: int = 0

    def calibration_frames(self, count: int) -> NDArray[np.uint8]:
        """``count`` frames drawn (seeded) from the TRAINING split: never a test circuit."""
        from simeval.build.dataset.store import load_split

        frames = load_split(self.data, "train", ("frames",))["frames"]
        rng = np.random.default_rng([self.seed, count])
        return frames[np.sort(rng.choice(len(frames), size=min(count, len(frames)), replace=False))]

    def training(self) -> dict[str, dict[str, NDArray]]:
        """Frames and labels of the train and val splits (QAT fine-tuning)."""
        from simeval.build.dataset.store import load_split

        return {split: load_split(self.data, split, ("frames", "labels")) for split in ("train", "val")}


@dataclass
class Built:
    """What a handler made: the artifact file and how to run it for the offline MSE."""

    artifact: Path
    predict: Predict
    """float32 NHWC batch -> (n, 2) in m/s, rad/s, exactly as the agent will run it."""
    method: dict[str, Any] = field(default_factory=dict)
    """How it was built (the card's ``training.method``)."""
