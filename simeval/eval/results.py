"""A run's folder: metrics.json, trajectory.csv, deviation.csv, timing.csv, config.json, trajectory.png
(and lap.mp4 with ``--video``).

The folder is assembled in a temporary sibling and renamed into place, so it appears whole or not
at all. trajectory.csv holds only simulated quantities, so two runs with the same seed produce
byte-identical files; the wall-clock timings, which can never repeat, go to timing.csv.
"""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from simeval.eval.metrics import DeviationProfile, LapMetrics
from simeval.eval.rollout import LapRecord
from simeval.paths import REPO_ROOT, results_dir
from simeval.track.loader import circuit_label

RUNS_DIR = "runs"
TRAJECTORY_PNG = "trajectory.png"
"""A run's trajectory plot (unless ``--no-plot``)."""
VIDEO_FILE = "lap.mp4"
"""A run's video, where it was recorded (``--video``)."""
"""A sweep's run folders are ``DIR/runs/<run>/``."""
TRAJECTORY_COLUMNS = ("t_s", "x_m", "y_m", "yaw_rad", "s_m", "d_m", "v_cmd_mps", "w_cmd_radps")
TIMING_COLUMNS = ("step", "inference_s", "step_wall_s")


def safe_name(name: str) -> str:
    """``name`` usable in a folder name: a model path or ``module:Class`` loses its slashes and colons."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def run_id(circuit: str, agent: str, seed: int, when: datetime | None = None) -> str:
    """``{circuit}__{agent}__{seed}__{time}``: sortable and says what ran."""
    stamp = (when or datetime.now()).strftime("%Y%m%d-%H%M%S-%f")
    return f"{safe_name(circuit_label(circuit))}__{safe_name(agent)}__{seed}__{stamp}"


def default_run_dir(circuit: str, agent: str, seed: int) -> Path:
    return results_dir() / run_id(circuit, agent, seed)


def trajectory_csv(record: LapRecord) -> str:
    """One row per agent decision (the state it saw, the command it gave), then the final state."""
    out = io.StringIO()
    out.write(",".join(TRAJECTORY_COLUMNS) + "\n")
    for k in range(len(record.t)):
        row = (record.t[k], record.x[k], record.y[k], record.yaw[k], record.s[k], record.d[k], record.v_cmd[k], record.w_cmd[k])
        out.write(",".join(f"{v:.6f}" for v in row) + "\n")
    if record.final_pose is not None:
        x, y, yaw, s, d, t = record.final_pose
        out.write(",".join(f"{v:.6f}" for v in (t, x, y, yaw, s, d)) + ",,\n")
    return out.getvalue()


def deviation_csv(profile: DeviationProfile) -> str:
    """The deviation along the lap that deviation_mae_m and deviation_max_m summarise."""
    out = io.StringIO()
    out.write("along_m,deviation_m\n")
    for along, deviation in zip(profile.along_m, profile.deviation_m, strict=True):
        out.write(f"{along:.3f},{deviation:.6f}\n")
    return out.getvalue()


def read_deviation_csv(path: Path) -> DeviationProfile:
    """deviation.csv read back."""
    data = np.atleast_2d(np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2))
    return DeviationProfile(data[:, 0], data[:, 1])


def timing_csv(record: LapRecord) -> str:
    out = io.StringIO()
    out.write(",".join(TIMING_COLUMNS) + "\n")
    for k, (inf, wall) in enumerate(zip(record.inference_s, record.step_wall_s, strict=True)):
        out.write(f"{k},{inf:.9f},{wall:.9f}\n")
    return out.getvalue()


def environment_facts() -> dict[str, Any]:
    """Versions, commit and hardware, so a result can be traced and repeated."""
    import gymnasium

    import simeval

    facts: dict[str, Any] = {
        "simeval": simeval.__version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "gymnasium": gymnasium.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "git_commit": _git_commit(),
    }
    for module in ("torch", "torchao", "tensorflow", "keras", "pybullet", "onnx", "onnxruntime", "tf2onnx", "ai_edge_litert", "tensorrt"):
        if module in sys.modules:
            facts[module] = getattr(sys.modules[module], "__version__", "unknown")
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_folder_files(
    record: LapRecord,
    metrics: LapMetrics,
    profile: DeviationProfile,
    config: dict[str, Any],
    figure_png: bytes | None = None,
) -> dict[str, bytes]:
    """The files of a run folder, by name (``atomic.write_folder_atomic`` writes them whole; a Ray
    sweep's node returns them to the driver, which writes the folder)."""
    files = {
        "metrics.json": json.dumps(metrics.as_dict(), indent=2) + "\n",
        "trajectory.csv": trajectory_csv(record),
        "deviation.csv": deviation_csv(profile),
        "timing.csv": timing_csv(record),
        "config.json": json.dumps(config, indent=2, default=str) + "\n",
    }
    out = {name: text.encode("utf-8") for name, text in files.items()}
    if figure_png is not None:
        out[TRAJECTORY_PNG] = figure_png
    return out

