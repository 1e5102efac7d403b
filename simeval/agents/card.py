"""The model card: the JSON beside each shipped artifact (``agents/<name>/card.json``).

It says how the artifact was made (data set, training or build method, versions), what it
measures (size, validation and test MSE) and its sha256. ``load_verified`` refuses an artifact
that is missing, or whose bytes do not match its card, with one line that names the file and
``make models``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simeval.agents.pilotnet import LabelRange
from simeval.atomic import write_text_atomic
from simeval.errors import AgentError
from simeval.paths import data_dir

CARD_FILE = "card.json"
REBUILD_HINT = "run `make models` to rebuild the shipped models"


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
    """What was measured when the method was chosen (alternatives, timings); kept across rebuilds."""

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
