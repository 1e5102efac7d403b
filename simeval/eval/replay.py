"""A finished run brought back from its folder, without its agent: its world rebuilt from config.json.

The world is deterministic, so config.json (the circuit, every env setting the run drove with, the
camera the agent saw through, the seed) and trajectory.csv (the pose of every step) are enough to
render every frame again (``simeval.eval.video``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from simeval.env import EnvConfig, FollowLineEnv
from simeval.errors import RunFolderError
from simeval.eval.video import VideoFacts, write_lap_video
from simeval.sim.camera import CameraConfig
from simeval.sim.simulator import SimConfig
from simeval.sim.vehicle import VehicleConfig
from simeval.track.loader import load_circuit

RECORDS = {"camera": CameraConfig, "vehicle": VehicleConfig, "sim": SimConfig}
"""The records of ``EnvConfig`` that config.json saves as sections of their own."""


@dataclass(frozen=True)
class RecordedRun:
    """What a run folder says about how to rebuild its world."""

    folder: Path
    circuit: str
    circuit_scale: str | None
    lap_length_m: float
    seed: int
    env: EnvConfig

    def make_env(self) -> FollowLineEnv:
        """The run's env again: its circuit (checked to be the one it drove), settings and camera."""
        circuit = load_circuit(self.circuit, self.circuit_scale)
        if not math.isclose(circuit.length_m, self.lap_length_m, rel_tol=1e-9, abs_tol=1e-6):
            raise RunFolderError(
                f"{self.folder}: circuit '{self.circuit}' is {circuit.length_m:.3f} m long now, but the run drove "
                f"{self.lap_length_m:.3f} m: it changed since, so the lap cannot be replayed"
            )
        return FollowLineEnv(circuit, self.env)


def read_run(folder: Path) -> RecordedRun:
    """The run in ``folder`` as its config.json records it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RunFolderError(f"{folder} is not a folder; pass a run folder that simeval.run or a sweep wrote (a sweep's are in runs/)")
    path = folder / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunFolderError(f"{folder} is not a run folder (no config.json); pass one that simeval.run or a sweep wrote") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{path} cannot be read: {exc}; the run folder is damaged") from None
    try:
        run, circuit = config["run"], config["circuit"]
        settings = {**config["env"], **{key: kind(**config[key]) for key, kind in RECORDS.items()}}
        return RecordedRun(
            folder=folder, circuit=str(run["circuit"]), circuit_scale=run.get("circuit_scale"),
            lap_length_m=float(circuit["lap_length_m"]), seed=int(run["seed"]), env=EnvConfig.with_settings(None, settings),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RunFolderError(f"{path} is not a simeval run's config ({_what(exc)}); the run folder is damaged or of another version") from None


def _what(exc: Exception) -> str:
    return f"no '{exc.args[0]}'" if isinstance(exc, KeyError) and exc.args else str(exc).splitlines()[0]


def replay_video(folder: Path, out: Path) -> VideoFacts:
    """Write ``out``: the video of the run in ``folder``, rendered again from its records."""
    run = read_run(folder)
    env = run.make_env()
    try:
        return write_lap_video(out, env, run.seed, run.folder)
    finally:
        env.close()

