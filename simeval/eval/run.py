"""One run: its settings (``RunConfig``), its env, its episode, and its folder of results.

``run_and_save`` drives one episode with ``rollout`` and writes everything a person or a report
needs into one run folder; ``python -m simeval.run`` and each run of a sweep call it (a Ray sweep's
node calls ``run_files``, the same folder's files, and the driver writes them).
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import gymnasium as gym

from simeval.agents.base import Agent
from simeval.env import STARTS, EnvConfig, FollowLineEnv
from simeval.errors import ConfigError
from simeval.eval.metrics import LapMetrics, compute_metrics, deviation_profile
from simeval.eval.results import VIDEO_FILE
from simeval.eval.rollout import LapRecord, rollout
from simeval.eval.video import check_video_available, write_lap_video
from simeval.options import opt as _opt
from simeval.sim.camera import CameraConfig
from simeval.sim.checks import check_name
from simeval.sim.renderer import RENDERERS
from simeval.sim.scenarios import get_scenario, scenario_names
from simeval.track.loader import load_circuit

TIMINGS = ("lockstep", "latency")
RUN_STARTS = ("seeded", *STARTS)
"""A run's starts: the env's, and 'seeded' (seed 0 at the spawn, every other seed 'perturbed'), so
that the seeds of a sweep start in different places while seed 0 keeps the spawn's results."""


@dataclass(frozen=True)
class RunConfig:
    """Every setting of one run; the CLI is generated from these fields and config.json saves them."""

    agent: str = field(default="expert", **_opt("agent name (see --list-agents), a model file (with its contract beside it), a contract file, or package.module:Class"))
    circuit: str = field(default="simple", **_opt("circuit name (python -m simeval.circuits list), or a circuit file: a simeval circuit .csv, or a TUMFTM .csv with --circuit-scale"))
    circuit_scale: str | None = field(default=None, **_opt("scale of a TUMFTM file given as --circuit, e.g. 1:3.03 or 0.33 (default 1:1); catalogue circuits and simeval circuit files carry their own"))
    seed: int = field(default=0, **_opt("seed of the episode: where it starts (see --start), scenario noise"))
    renderer: str = field(default="raster", **_opt("camera renderer: raster (fast numpy) or pybullet", choices=RENDERERS))
    timing: str = field(default="lockstep", **_opt("lockstep: 50 ms per step whatever the agent's speed; latency: commands act after the agent's latency", choices=TIMINGS))
    latency_ms: float | None = field(default=None, **_opt("fixed latency in ms for --timing latency (bit-reproducible); default: measured"))
    latency_scale: float = field(default=1.0, **_opt("multiplier of the measured latency in --timing latency (emulates slower hardware)"))
    scenario: str = field(default="nominal", **_opt("robustness scenario (simeval.sim.scenarios)", choices=scenario_names()))
    start: str = field(default="seeded", **_opt(
        "seeded: seed 0 at the spawn, any other seed at a seeded point of the lap with a small seeded offset and "
        "heading error (perturbed); or fix it for every seed: spawn, random (a seeded point, on the line) or perturbed",
        choices=RUN_STARTS))
    max_time_s: float | None = field(default=None, **_opt("simulated time limit; default 2x the reference lap time"))
    contract: Path | None = field(default=None, **_opt("model contract of --agent's model file (default: the .simeval.toml beside it)"))
    trust_model: bool = field(default=False, **_opt("load a model file of a format that carries code (TorchScript, .pt2, SavedModel, TensorRT engine, Stable-Baselines3 zip)"))
    out: Path | None = field(default=None, **_opt("results folder; default results/<circuit>__<agent>__<seed>__<time>"))
    plot: bool = field(default=True, **_opt("write trajectory.png"))
    video: bool = field(default=False, **_opt(
        "write lap.mp4: per step, the camera frame the agent saw beside the map around the car with its path, "
        "and t, v, w, deviation, inference time (H.264, 20 fps; pip install 'simeval[video]')"))

    def __post_init__(self) -> None:
        if self.timing not in TIMINGS:
            raise ConfigError(f"timing must be one of {TIMINGS}, got '{self.timing}'")
        if self.latency_ms is not None and (not math.isfinite(self.latency_ms) or self.latency_ms < 0):
            raise ConfigError(f"latency_ms must be a finite number >= 0, got {self.latency_ms}")
        if self.latency_ms is not None and self.timing != "latency":
            raise ConfigError("--latency-ms needs --timing latency")
        if not (math.isfinite(self.latency_scale) and self.latency_scale > 0):
            raise ConfigError(f"latency_scale must be > 0, got {self.latency_scale}")
        if self.max_time_s is not None and not (math.isfinite(self.max_time_s) and self.max_time_s > 0):
            raise ConfigError(f"max_time_s must be a number of seconds > 0, got {self.max_time_s}; leave it out for the circuit's default")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        check_name("start", self.start, RUN_STARTS)
        get_scenario(self.scenario)  # an unknown name fails here, before any agent loads
        if self.video:
            check_video_available()  # so does a missing video package
        self.env_config()  # so do the env's settings (renderer, start)

    def as_dict(self) -> dict:
        return {f.name: (str(getattr(self, f.name)) if isinstance(getattr(self, f.name), Path) else getattr(self, f.name)) for f in fields(self)}


    def env_config(self) -> EnvConfig:
        """The env settings of this run (a fixed latency is the env's own; a measured one is set per step)."""
        return EnvConfig(
            renderer=self.renderer, start=self.env_start, scenario=self.scenario, max_time_s=self.max_time_s,
            latency_s=(self.latency_ms or 0.0) / 1000.0,
        )

    @property
    def env_start(self) -> str:
        """The env's start for this run's seed ('seeded' resolved)."""
        if self.start != "seeded":
            return self.start
        return "spawn" if self.seed == 0 else "perturbed"

    @property
    def measured_latency(self) -> bool:
        """Latency mode with the agent's own (measured, scaled) step time as the latency."""
        return self.timing == "latency" and self.latency_ms is None


def make_env(config: RunConfig, camera: CameraConfig | None = None) -> FollowLineEnv:
    """The env a run drives in, rendering ``camera``'s image (an agent's ``camera``; default the frame)."""
    env_config = config.env_config()
    if camera is not None:
        env_config = dataclasses.replace(env_config, camera=camera)
    return FollowLineEnv(load_circuit(config.circuit, config.circuit_scale), env_config)


def run_episode(env: gym.Env, agent: Agent, config: RunConfig) -> LapRecord:
    """Drive one episode as ``config`` says (seed, measured latency) and record it."""
    latency = (lambda wall: wall * config.latency_scale) if config.measured_latency else None
    return rollout(env, agent, seed=config.seed, label=config.agent, latency=latency)


def run_and_save(agent: Agent, config: RunConfig, out: Path) -> tuple[LapRecord, LapMetrics]:
    """Drive one episode as ``config`` says and write its run folder whole (metrics, trajectory,
    deviation, timing, config with the versions and hardware, the trajectory plot unless ``plot`` is
    off, and with ``video`` lap.mp4, made from the folder's own records as ``simeval.replay`` makes
    it, after the lap: the lap and its files are the same with and without it)."""
    from simeval.atomic import write_folder_atomic

    record, metrics, files = run_files(agent, config)
    write_folder_atomic(out, files)
    return record, metrics


def run_files(agent: Agent, config: RunConfig, more_facts: dict[str, Any] | None = None) -> tuple[LapRecord, LapMetrics, dict[str, bytes]]:
    """Drive one episode as ``config`` says: its record, its metrics and its run folder's files
    (name -> bytes), not written; ``more_facts`` are more sections of config.json (where a Ray
    sweep's run ran)."""
    from simeval.eval.results import environment_facts, run_folder_files

    env = make_env(config, agent.camera)
    try:
        record = run_episode(env, agent, config)
        profile = deviation_profile(record, env.circuit)
        metrics = compute_metrics(record, env.circuit, profile)
        png = None
        if config.plot:
            from simeval.eval.plots import trajectory_png

            png = trajectory_png(record, env.circuit, metrics)
        facts = {
            "run": config.as_dict(),
            "agent": agent.info.as_dict(),
            "circuit": {"name": env.circuit.name, "lap_length_m": env.circuit.length_m, **asdict(env.circuit.meta)},
            "env": {k: v for k, v in asdict(env.config).items() if k not in ("camera", "vehicle", "sim")},
            "start": asdict(env.start_pose),
            "camera": asdict(env.camera),
            "vehicle": asdict(env.vehicle),
            "sim": asdict(env.config.sim),
            "environment": environment_facts(),
            **(more_facts or {}),
        }
        files = run_folder_files(record, metrics, profile, facts, png)
        if config.video and record.t:
            files[VIDEO_FILE] = lap_video(files, env, config.seed)
    finally:
        env.close()
    return record, metrics, files


def lap_video(files: dict[str, bytes], env: FollowLineEnv, seed: int) -> bytes:
    """lap.mp4 of a run folder's ``files``, made from them as ``simeval.replay`` makes it from the
    folder (written to a scratch folder first: the video is drawn from the records, not the lap)."""
    with tempfile.TemporaryDirectory(prefix="simeval-video-") as scratch:
        folder = Path(scratch)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        write_lap_video(folder / VIDEO_FILE, env, seed, folder)
        return (folder / VIDEO_FILE).read_bytes()
