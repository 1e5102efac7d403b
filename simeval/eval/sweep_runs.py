"""A sweep's finished runs, read back from their folders: what a report is built from.

Everything here reads ``DIR/runs/*/`` (config.json, metrics.json, trajectory.csv, deviation.csv)
alone, so a report can be rebuilt at any time, also after a sweep was killed and resumed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.eval.metrics import DeviationProfile, LapMetrics
from simeval.eval.results import RUNS_DIR, read_deviation_csv


@dataclass(frozen=True)
class Run:
    """One finished run folder: its settings and its metrics."""

    folder: Path
    run: dict[str, Any]
    """config.json's ``run`` section: the ``RunConfig`` it ran with."""
    metrics: LapMetrics
    agent_info: dict[str, Any] = field(default_factory=dict)
    """config.json's ``agent`` section: the agent's settings, a model's file, size and sha256."""

    @property
    def agent(self) -> str:
        return str(self.run["agent"])

    @property
    def circuit(self) -> str:
        return str(self.run["circuit"])

    @property
    def scenario(self) -> str:
        return str(self.run.get("scenario") or "nominal")

    @property
    def seed(self) -> int:
        return int(self.run["seed"])

    @property
    def latency_s(self) -> float | None:
        """The latency the run drove with: the fixed one, else the measured inference time (scaled)."""
        if self.run.get("timing") == "latency" and self.run.get("latency_ms") is not None:
            return float(self.run["latency_ms"]) / 1000.0
        mean = self.metrics.inference_time_mean_s
        if mean is None:
            return None
        return float(mean) * (float(self.run.get("latency_scale") or 1.0) if self.run.get("timing") == "latency" else 1.0)

    def file(self, name: str) -> Path | None:
        """``name`` in the run folder if it is there (a plot or video is optional)."""
        path = self.folder / name
        return path if path.is_file() else None


def load_runs(out: Path) -> list[Run]:
    """Every complete run folder under ``out/runs`` (temporary ``.partial`` folders are not runs)."""
    runs = []
    for folder in sorted((Path(out) / RUNS_DIR).glob("*")):
        if folder.name.startswith(".") or not (folder / "metrics.json").is_file():
            continue
        config = json.loads((folder / "config.json").read_text())
        metrics = LapMetrics.from_dict(json.loads((folder / "metrics.json").read_text()))
        runs.append(Run(folder, config["run"], metrics, config.get("agent", {})))
    return runs


def read_trajectory(folder: Path) -> tuple[NDArray[np.float64], float]:
    """((t, x, y) per row of trajectory.csv, the arc length at the first row: where the run started)."""
    import pandas as pd

    data = pd.read_csv(folder / "trajectory.csv", usecols=["t_s", "x_m", "y_m", "s_m"], dtype="float64")
    return data[["t_s", "x_m", "y_m"]].to_numpy(), float(data["s_m"].iloc[0])


def run_deviation(run: Run) -> DeviationProfile | None:
    """The deviation along the lap that the run measured (deviation.csv); None for a run folder
    written before simeval kept it."""
    path = run.folder / "deviation.csv"
    return read_deviation_csv(path) if path.is_file() else None
