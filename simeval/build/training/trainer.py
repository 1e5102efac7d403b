"""Training PilotNet on the data set, and shipping it with its card.

Training minimises MSE on labels normalised to [0, 1] with the training split's min/max,
validates on the held-out TRAINING circuits after every epoch, stops early when validation stops
improving and keeps the best epoch. A checkpoint after every epoch makes an interrupted run
continue where it stopped (``fresh`` starts over). The result is written to
``agents/<torch-fp32|tf-fp32>/``: the artifact, then its card (sha256, data-set hash, parameter
count, validation and test MSE, training time, versions). The loops themselves are
``fit_torch`` and ``fit_keras``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

from simeval.agents.card import ModelCard, model_dir, sha256_of
from simeval.agents.pilotnet import LabelRange
from simeval.agents.variants import BY_NAME, card_contract
from simeval.build.dataset.store import load_manifest, load_split
from simeval.build.evaluate import offline_mse
from simeval.build.training.config import Data, TrainConfig, log
from simeval.paths import dataset_dir, training_dir


def load_data(config: TrainConfig, root: Path) -> Data:
    train = load_split(root, "train", ("frames", "labels"))
    val = load_split(root, "val", ("frames", "labels"))
    if config.max_frames:
        train = {k: v[: config.max_frames] for k, v in train.items()}
    return Data(train["frames"], train["labels"], val["frames"], val["labels"], LabelRange.of(train["labels"]))


def versions() -> dict[str, Any]:
    """Versions of simeval, Python and every framework loaded, the git commit and the CPU."""
    from simeval.eval.results import environment_facts

    return {k: v for k, v in environment_facts().items() if k != "platform"}


def train(config: TrainConfig) -> ModelCard:
    """Fit, evaluate and ship one framework's PilotNet; returns its card."""
    root = config.data or dataset_dir()
    manifest = load_manifest(root)
    out = config.out or model_dir(config.agent_name)
    work = config.work or training_dir(config.framework)
    log(f"loading {root} ...")
    data = load_data(config, root)
    log(f"{len(data.train_frames):,} training frames, {len(data.val_frames):,} validation frames; labels {data.labels}")
    if config.framework == "torch":
        from simeval.build.training import fit_torch as backend
    else:
        from simeval.build.training import fit_keras as backend
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
        test=offline_mse(trained.predict, root, data.labels),
        versions=versions(),
        contract=card_contract(BY_NAME[config.agent_name], artifact.name),
    )
    card.write(out)
    return card


