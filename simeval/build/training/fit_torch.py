"""Training loop of the PyTorch PilotNet (called by ``simeval.build.training.trainer``)."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from simeval.agents.formats.torch_state_dict import ARTIFACT, PilotNet, parameter_count
from simeval.agents.pilotnet import preprocess
from simeval.atomic import write_bytes_atomic
from simeval.build.evaluate import batches
from simeval.build.training.config import FitResult, log

if TYPE_CHECKING:
    from simeval.build.training.config import Data, TrainConfig

CHECKPOINT = "checkpoint.pt"


@dataclass
class Trained:
    model: PilotNet
    fit: FitResult

    def predict(self, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return self.model(torch.from_numpy(batch)).numpy()


def parameters(model: PilotNet) -> int:
    return parameter_count(model)


def save_pilotnet(model: PilotNet, path: Path) -> Path:
    """Write the state dict (weights, BatchNorm statistics, label range) whole."""
    buffer = BytesIO()
    torch.save(model.state_dict(), buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def save(model: PilotNet, out: Path) -> Path:
    return save_pilotnet(model, out / ARTIFACT)


def _validation_mse(model: PilotNet, data: Data) -> float:
    model.eval()
    target = data.labels.normalize(data.val_labels)
    total = 0.0
    with torch.inference_mode():
        for idx in batches(len(data.val_frames), 512):
            out = model.normalized(torch.from_numpy(preprocess(data.val_frames[idx]))).numpy()
            total += float(np.sum((out - target[idx]) ** 2))
    return total / target.size


def _load_checkpoint(path: Path, fingerprint: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state if state.get("fingerprint") == fingerprint else None


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buffer = BytesIO()
    torch.save(state, buffer)
    write_bytes_atomic(path, buffer.getvalue())


def fit(config: TrainConfig, data: Data, work: Path, fingerprint: str) -> Trained:
    """Adam on normalised MSE, early stopping on validation MSE, a checkpoint after every epoch."""
    from tqdm import tqdm


    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    model = PilotNet(data.labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    loss_fn = nn.MSELoss()
    target = data.labels.normalize(data.train_labels)
    checkpoint_path = work / CHECKPOINT
    state = None if config.fresh else _load_checkpoint(checkpoint_path, fingerprint)
    history: list[dict[str, float]] = []
    best_state, best_val, best_epoch, seconds = None, float("inf"), 0, 0.0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        best_state, best_val, best_epoch = state["best_model"], state["best_val"], state["best_epoch"]
        history, seconds = state["history"], state["seconds"]
        log(f"resuming from {checkpoint_path} after epoch {len(history)}")
    for epoch in range(len(history) + 1, config.epochs + 1):
        if epoch - best_epoch > config.patience and best_state is not None:
            break
        started = time.perf_counter()
        model.train()
        rng = np.random.default_rng([config.seed, epoch])
        running, seen = 0.0, 0
        steps = tqdm(
            batches(len(data.train_frames), config.batch_size, rng),
            total=-(-len(data.train_frames) // config.batch_size), desc=f"epoch {epoch}/{config.epochs}",
            unit="batch", leave=False, mininterval=2.0,
        )
        for idx in steps:
            x = torch.from_numpy(preprocess(data.train_frames[idx]))
            y = torch.from_numpy(target[idx])
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model.normalized(x), y)
            loss.backward()
            optimizer.step()
            running += loss.item() * len(idx)
            seen += len(idx)
        val = _validation_mse(model, data)
        seconds += time.perf_counter() - started
        history.append({"epoch": epoch, "train_mse": running / seen, "val_mse": val})
        if val < best_val:
            best_val, best_epoch, best_state = val, epoch, copy.deepcopy(model.state_dict())
        log(f"epoch {epoch}: train MSE {running / seen:.5f}, validation MSE {val:.5f}{' (best)' if best_epoch == epoch else ''}, {seconds:.0f} s")
        _save_checkpoint(checkpoint_path, {
            "fingerprint": fingerprint, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "best_model": best_state, "best_val": best_val, "best_epoch": best_epoch,
            "history": history, "seconds": seconds,
        })
    model.load_state_dict(best_state)
    model.eval()
    return Trained(model, FitResult(len(history), best_epoch, best_val, history, seconds))
