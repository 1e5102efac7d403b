"""The model card: the JSON beside each shipped artifact (``agents/<name>/card.json``).

It says how the artifact was made (data set, training or build method, versions), what it
measures (size, validation and test MSE), its sha256, and its model contract (format and the
meaning of its tensors), from which the registry loads it like any model file. A missing
artifact, or one whose bytes do not match its card, fails with one line naming the file and
``make models``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simeval.agents.contract import ModelContract
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
    contract: dict[str, Any] = field(default_factory=dict)
    """The model contract (``simeval.agents.contract``): its format, and what its tensors mean."""

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


def shipped_contract(name: str) -> tuple[ModelCard, ModelContract]:
    """The card of shipped model ``name`` and its contract, the artifact path made absolute (the
    artifact's sha256 is checked when it loads)."""
    folder = model_dir(name)
    card = read_card(folder)
    if not card.contract:
        raise AgentError(f"{folder / CARD_FILE}: the card has no model contract; {REBUILD_HINT}")
    contract = ModelContract.from_dict(card.contract, where=str(folder / CARD_FILE)).resolved(folder)
    if not Path(contract.artifact.path).is_file():
        raise AgentError(f"{contract.artifact.path}: model file missing; {REBUILD_HINT}")
    return card, contract
