"""What every PilotNet variant shares, whatever its framework: the input and the labels.

- ``preprocess`` is the one place where a camera frame becomes network input; training,
  driving, calibration and export all call it.
- ``LabelRange`` is the training set's min/max per output channel. Labels are normalised to
  [0, 1] with it for the loss; the saved networks end in a fixed rescaling layer built from it,
  so every artifact outputs (v m/s, w rad/s) and carries its own min/max.
- The architecture constants describe the published valid-padding network, which both
  frameworks build.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

INPUT_SHAPE = (66, 200, 3)
"""Height, width, channels of a frame (NHWC everywhere; the torch network transposes inside)."""
PARAMETERS = 1_595_528
"""Trainable parameters of the published (valid-padding) PilotNet: BatchNorm 6, convolutions
129,348 (1,824 + 21,636 + 43,248 + 27,712 + 36,928), dense 1,464,174."""
CONV_LAYERS = ((24, 5, 2), (36, 5, 2), (48, 5, 2), (64, 3, 1), (64, 3, 1))
"""(filters, kernel, stride) of the five valid-padding convolutions."""
DENSE_LAYERS = (1164, 100, 50, 10)
FLAT_FEATURES = 1152


def preprocess(frames: NDArray[np.uint8]) -> NDArray[np.float32]:
    """Camera frames (..., 66, 200, 3) uint8 -> float32 in [0, 1], NHWC.

    Scaling is all there is: the network's first layer is a BatchNorm that learns the rest.
    """
    frames = np.asarray(frames)
    if frames.shape[-3:] != INPUT_SHAPE or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (..., 66, 200, 3), got {frames.dtype} {frames.shape}")
    return frames.astype(np.float32) * np.float32(1.0 / 255.0)


@dataclass(frozen=True)
class LabelRange:
    """Per-channel min and max of the training labels (v m/s, w rad/s)."""

    low: tuple[float, float]
    high: tuple[float, float]

    @classmethod
    def of(cls, labels: NDArray[np.floating]) -> LabelRange:
        low, high = labels.min(axis=0), labels.max(axis=0)
        if np.any(high <= low):
            raise ValueError(f"labels must vary in every channel, got min {low} max {high}")
        return cls(tuple(float(v) for v in low), tuple(float(v) for v in high))

    @property
    def scale(self) -> NDArray[np.float32]:
        return np.asarray(self.high, dtype=np.float32) - np.asarray(self.low, dtype=np.float32)

    @property
    def offset(self) -> NDArray[np.float32]:
        return np.asarray(self.low, dtype=np.float32)

    def normalize(self, labels: NDArray[np.floating]) -> NDArray[np.float32]:
        return ((np.asarray(labels, dtype=np.float32) - self.offset) / self.scale).astype(np.float32)

    def denormalize(self, outputs: NDArray[np.floating]) -> NDArray[np.float32]:
        return (np.asarray(outputs, dtype=np.float32) * self.scale + self.offset).astype(np.float32)
