"""Closed-loop episodes: an agent drives an env, the runner times it and records the lap.

The runner owns what the env cannot know: how long the agent took (wall time of ``act`` and of
the model call), whether the agent crashed, and, in latency mode with measured latency, when the
agent's command would really have arrived.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from simeval.agents.base import Agent
from simeval.cli import opt as _opt
from simeval.env import FollowLineEnv
from simeval.errors import ConfigError
from simeval.metrics import LapRecord
from simeval.scenarios import get_scenario
from simeval.simulator import US

TIMINGS = ("lockstep", "latency")


@dataclass(frozen=True)
class RunConfig:
    """Every setting of one run; the CLI is generated from these fields and config.json saves them."""

    agent: str = field(default="expert", **_opt("agent name (see --list-agents) or package.module:Class"))
    circuit: str = field(default="simple", **_opt("circuit name (python -m simeval.circuits list)"))
    seed: int = field(default=0, **_opt("seed of the episode (random start, agent noise)"))
    renderer: str = field(default="raster", **_opt("camera renderer: raster (fast numpy) or pybullet"))
    timing: str = field(default="lockstep", **_opt("lockstep: 50 ms per step whatever the agent's speed; latency: commands act after the agent's latency"))
    latency_ms: float | None = field(default=None, **_opt("fixed latency in ms for --timing latency (bit-reproducible); default: measured"))
    latency_scale: float = field(default=1.0, **_opt("multiplier of the measured latency in --timing latency (emulates slower hardware)"))
    scenario: str = field(default="nominal", **_opt("robustness scenario (simeval.scenarios): nominal, offset-start, camera-noise, dim, bright, colour-shift, line-gaps"))
    start: str = field(default="spawn", **_opt("spawn, or random: a seeded random point of the lap"))
    max_time_s: float | None = field(default=None, **_opt("simulated time limit; default 2x the reference lap time"))
    out: Path | None = field(default=None, **_opt("results folder; default results/<circuit>__<agent>__<seed>__<time>"))
    plot: bool = field(default=True, **_opt("write trajectory.png"))

    def __post_init__(self) -> None:
        if self.timing not in TIMINGS:
            raise ConfigError(f"timing must be one of {TIMINGS}, got '{self.timing}'")
        if self.latency_ms is not None and (not math.isfinite(self.latency_ms) or self.latency_ms < 0):
            raise ConfigError(f"latency_ms must be a finite number >= 0, got {self.latency_ms}")
        if self.latency_ms is not None and self.timing != "latency":
            raise ConfigError("--latency-ms needs --timing latency")
        if not (math.isfinite(self.latency_scale) and self.latency_scale > 0):
            raise ConfigError(f"latency_scale must be > 0, got {self.latency_scale}")
        get_scenario(self.scenario)  # an unknown name fails here, before any agent loads

    def as_dict(self) -> dict:
        return {f.name: (str(getattr(self, f.name)) if isinstance(getattr(self, f.name), Path) else getattr(self, f.name)) for f in fields(self)}


def make_env(config: RunConfig) -> FollowLineEnv:
    """The env a run drives in (a fixed latency is the env's own; a measured one is set per step)."""
    latency_s = (config.latency_ms or 0.0) / 1000.0
    return FollowLineEnv(
        config.circuit,
        renderer=config.renderer,
        start=config.start,
        max_time_s=config.max_time_s,
        latency_s=latency_s,
        scenario=config.scenario,
    )


def run_episode(env: FollowLineEnv, agent: Agent, config: RunConfig) -> LapRecord:
    """Drive one episode and record it; an agent that raises ends it as 'agent_error'."""
    measured_latency = config.timing == "latency" and config.latency_ms is None
    circuit = env.circuit
    obs, info = env.reset(seed=config.seed)
    record = LapRecord(
        circuit=circuit.name, agent=config.agent, seed=config.seed,
        lap_length_m=circuit.length_m, start_s=env.sim.start_s,
    )
    agent.reset(circuit)
    started = time.perf_counter()
    termination = info["termination"]
    while termination is None:
        tick = time.perf_counter()
        try:
            command = agent.act(obs, info)
            v, w = (float(c) for c in command)
        except Exception as exc:  # noqa: BLE001 - any agent failure is a recorded outcome, not a crash
            record.termination, record.error = "agent_error", f"{type(exc).__name__}: {exc}"
            break
        wall = time.perf_counter() - tick
        if not (math.isfinite(v) and math.isfinite(w)):
            record.termination, record.error = "invalid_action", f"agent returned a non-finite command (v={v}, w={w})"
            break
        record.append_step(info, (v, w), agent.last_inference_s, wall)
        if measured_latency:
            env.latency_us = round(wall * config.latency_scale * US)
        obs, _, _, _, info = env.step(env.to_action(v, w))
        termination = info["termination"]
    record.wall_time_s = time.perf_counter() - started
    record.termination = record.termination or termination
    _finish(record, env)
    return record


def _finish(record: LapRecord, env: FollowLineEnv) -> None:
    sim = env.sim
    record.progress_m = sim.progress_m
    record.distance_m = sim.distance_m
    record.sim_time_s = sim.time_s
    record.lap_time_s = sim.lap_time_s
    record.path = np.asarray(sim.path, dtype=np.float64)
    st = sim.state
    record.final_pose = (st.x, st.y, st.yaw, sim.s, sim.lateral_offset(), sim.time_s)


def run_and_save(agent: Agent, config: RunConfig, out: Path) -> tuple[LapRecord, dict]:
    """Drive one episode as ``config`` says and write its run folder whole (metrics, trajectory,
    timing, config with the versions and hardware, and the trajectory plot unless ``plot`` is off)."""
    from simeval.metrics import compute_metrics
    from simeval.results import environment_facts, write_run

    env = make_env(config)
    try:
        record = run_episode(env, agent, config)
        metrics = compute_metrics(record, env.circuit)
        png = None
        if config.plot:
            from simeval.plots import trajectory_png

            png = trajectory_png(record, env.circuit, metrics)
        facts = {
            "run": config.as_dict(),
            "agent": agent.info.as_dict(),
            "circuit": {"name": env.circuit.name, "lap_length_m": env.circuit.length_m, **asdict(env.circuit.meta)},
            "camera": asdict(env.camera),
            "vehicle": asdict(env.vehicle),
            "sim": asdict(env.sim_config),
            "environment": environment_facts(),
        }
        write_run(out, record, metrics, facts, png)
    finally:
        env.close()
    return record, metrics
