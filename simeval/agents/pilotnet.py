"""What every PilotNet variant shares, whatever its framework: the input, the labels, the card.

- ``preprocess`` is the one place where a camera frame becomes network input; training,
  driving, calibration and export all call it.
- ``LabelRange`` is the training set's min/max per output channel. Labels are normalised to
  [0, 1] with it for the loss; the saved networks end in a fixed rescaling layer built from it,
  so every artifact outputs (v m/s, w rad/s) and carries its own min/max.
- ``ModelCard`` is the JSON beside each shipped artifact: how it was built, its sha256, size and
  errors. ``load_verified`` refuses an artifact that is missing, or whose bytes do not match its
  card, with one line that names the file and ``make models``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from abc import abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from simeval.agents.base import Agent, AgentInfo
from simeval.atomic import write_text_atomic
from simeval.errors import AgentError
from simeval.paths import data_dir

INPUT_SHAPE = (66, 200, 3)
"""Height, width, channels of a frame (NHWC everywhere; the torch network transposes inside)."""
OUTPUTS = ("v_mps", "w_radps")
PARAMETERS = 1_595_528
"""Trainable parameters of the published (valid-padding) PilotNet: BatchNorm 6, convolutions
129,348 (1,824 + 21,636 + 43,248 + 27,712 + 36,928), dense 1,464,174."""
CONV_LAYERS = ((24, 5, 2), (36, 5, 2), (48, 5, 2), (64, 3, 1), (64, 3, 1))
"""(filters, kernel, stride) of the five valid-padding convolutions."""
DENSE_LAYERS = (1164, 100, 50, 10)
FLAT_FEATURES = 1152
CARD_FILE = "card.json"
REBUILD_HINT = "run `make models` to rebuild the shipped models"


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


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelCard:
    """How a shipped model was made and what it measures; ``agents/<name>/card.json``."""

    name: str
    framework: str
    precision: str
    artifact: str
    """File name of the artifact, beside the card."""
    sha256: str
    size_bytes: int
    parameters: int
    label_low: tuple[float, float]
    label_high: tuple[float, float]
    dataset: dict[str, Any] = field(default_factory=dict)
    """Manifest sha256, frame counts and seed of the data it was trained on."""
    training: dict[str, Any] = field(default_factory=dict)
    """Command, seed, epochs, batch size, learning rate, wall time, threads."""
    validation: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] = field(default_factory=dict)
    """Offline MSE per test circuit (mse_report) and over all test frames."""
    versions: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    @property
    def labels(self) -> LabelRange:
        return LabelRange(tuple(self.label_low), tuple(self.label_high))

    def write(self, folder: Path) -> Path:
        return write_text_atomic(folder / CARD_FILE, json.dumps(dataclasses.asdict(self), indent=2) + "\n")


def model_dir(name: str) -> Path:
    """Folder of a shipped model: ``agents/<name>/`` (inside the wheel when installed)."""
    return data_dir("agents") / name


def read_card(folder: Path) -> ModelCard:
    path = folder / CARD_FILE
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return ModelCard(**raw)
    except FileNotFoundError:
        raise AgentError(f"{path}: model card missing; {REBUILD_HINT}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise AgentError(f"{path}: unreadable model card ({exc}); {REBUILD_HINT}") from None


def load_verified(name: str) -> tuple[ModelCard, Path]:
    """The card and artifact path of shipped model ``name``, after checking the artifact's sha256."""
    folder = model_dir(name)
    card = read_card(folder)
    artifact = folder / card.artifact
    if not artifact.is_file():
        raise AgentError(f"{artifact}: model file missing; {REBUILD_HINT}")
    actual = sha256_of(artifact)
    if actual != card.sha256:
        raise AgentError(
            f"{artifact}: sha256 {actual[:12]}... does not match its card ({card.sha256[:12]}...): "
            f"the file is corrupt or was replaced; {REBUILD_HINT}"
        )
    return card, artifact


class PilotNetAgent(Agent):
    """A PilotNet that drives: pre-process the frame, time the model call, return (v, w).

    Built from the shipped artifact of ``NAME`` (sha256-checked against its card), or from a
    user's file ``path``. Backends set ``NAME``, ``FRAMEWORK``, ``PRECISION`` and implement
    ``load`` (read the artifact) and ``infer`` (a float32 batch (1, 66, 200, 3) -> (1, 2) in m/s
    and rad/s); ``check_runtime`` fails early where this machine lacks what the backend needs.
    """

    NAME: ClassVar[str] = ""
    FRAMEWORK: ClassVar[str] = ""
    PRECISION: ClassVar[str] = "fp32"

    def __init__(self, path: Path | None = None, threads: int = 1):
        super().__init__()
        self.check_runtime()
        shipped = path is None
        path = load_verified(self.NAME)[1] if shipped else Path(path)
        self.load(path, threads)
        self.warm_up()
        self.info = AgentInfo(
            name=self.NAME if shipped else str(path), framework=self.FRAMEWORK, precision=self.PRECISION,
            artifact=path, artifact_bytes=path.stat().st_size,
        )

    def warm_up(self, calls: int = 3) -> None:
        """Run the model on a blank frame a few times at load, so that one-off costs (TensorFlow's
        tracing, lazy kernel selection) are not charged to the first frame of a lap, where a
        measured-latency run would count them as latency."""
        blank = np.zeros((1, *INPUT_SHAPE), dtype=np.float32)
        for _ in range(calls):
            self.infer(blank)

    def check_runtime(self) -> None:  # noqa: B027 - optional hook
        """Raise ``AgentError`` (what is missing, what runs here) before any file is read."""

    @abstractmethod
    def load(self, path: Path, threads: int) -> None:
        """Read the artifact at ``path``; run inference on ``threads`` CPU threads."""

    def act(self, observation: NDArray[np.uint8], info: dict[str, Any]) -> tuple[float, float]:
        batch = preprocess(observation[None])
        start = time.perf_counter()
        out = self.infer(batch)
        self.last_inference_s = time.perf_counter() - start
        v, w = np.asarray(out, dtype=np.float64).reshape(-1)[:2]
        return float(v), float(w)

    @abstractmethod
    def infer(self, batch: NDArray[np.float32]) -> NDArray[np.floating]:
        """The model call alone: what ``inference_time_*`` measures."""

    def infer_batch(self, batch: NDArray[np.float32]) -> NDArray[np.floating]:
        """Many pre-processed frames at once, (n, 66, 200, 3) -> (n, 2); backends whose model
        takes a batch override this, the others run the frames one by one."""
        return np.concatenate([np.asarray(self.infer(batch[i : i + 1])).reshape(1, 2) for i in range(len(batch))])
