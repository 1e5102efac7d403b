"""Driving the expert for the data set: episodes, DART noise, and the jobs that fill the files.

Every episode is a ``rollout`` of the expert with seeded Ornstein-Uhlenbeck noise added to the
executed command (the recorded label stays the expert's own command for the frame it saw); each
job (a chunk of a split, a test lap, a lap check) is a pure function of its settings, so a worker
process can run it and any number of workers give the same bytes.
"""

from __future__ import annotations

import functools
import math
import signal
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.expert import ExpertAgent
from simeval.build.dataset.config import ARRAYS, EPISODE_STRIDE, SPLIT_IDS, TEST_DIR, DatasetConfig, NoiseConfig
from simeval.build.dataset.store import write_npz
from simeval.env import FollowLineEnv, Termination
from simeval.errors import DatasetError
from simeval.eval.rollout import Command, Step, rollout
from simeval.track.circuit import Circuit


@dataclass(frozen=True)
class Direction:
    """One circuit driven one way: an entry of the manifest's circuit list."""

    name: str
    """'austin' or 'austin-reverse'."""
    base: str
    reverse: bool
    role: str
    split: str
    lap_length_m: float

    def as_dict(self, index: int) -> dict[str, Any]:
        return {
            "index": index, "name": self.name, "base": self.base, "role": self.role, "split": self.split,
            "direction": "reverse" if self.reverse else "forward", "lap_length_m": round(self.lap_length_m, 3),
        }


@functools.cache
def direction_circuit(base: str, reverse: bool) -> Circuit:
    circuit = Circuit.from_name(base)
    return circuit.reversed() if reverse else circuit


@functools.cache
def _env(base: str, reverse: bool) -> FollowLineEnv:
    """One env per circuit direction and process: building one costs ~0.3 s, an episode ~0.2 s."""
    return FollowLineEnv(direction_circuit(base, reverse))


def _lap_check(base: str, reverse: bool) -> str:
    """The termination of a noise-free expert lap from the start: the direction is driven only if
    the expert completes it (a cheap, honest test of 'the expert can drive it')."""
    circuit = direction_circuit(base, reverse)
    return drive(_env(base, reverse), circuit.spawn_pose, None, None)


class _OrnsteinUhlenbeck:
    """Mean-reverting noise with stationary standard deviation ``sigma`` and correlation time ``tau_s``."""

    def __init__(self, sigma: NDArray[np.float64], tau_s: float, dt_s: float, rng: np.random.Generator):
        self.sigma, self.rng = sigma, rng
        self.decay = math.exp(-dt_s / tau_s)
        self.x = sigma * rng.standard_normal(2)

    def sample(self) -> NDArray[np.float64]:
        drive = self.sigma * math.sqrt(1.0 - self.decay**2) * self.rng.standard_normal(2)
        self.x = self.decay * self.x + drive
        return self.x


@dataclass
class _Recorder:
    """Rows of one data file, appended step by step."""

    rows: dict[str, list[Any]] = field(default_factory=lambda: {name: [] for name in ARRAYS})

    def __len__(self) -> int:
        return len(self.rows["frames"])

    def add(self, **row: Any) -> None:
        for name, value in row.items():
            self.rows[name].append(value)

    def arrays(self) -> dict[str, NDArray]:
        return {
            name: np.asarray(self.rows[name], dtype=dtype).reshape(len(self), *shape)
            for name, (dtype, shape) in ARRAYS.items()
        }


@dataclass(frozen=True)
class _Tag:
    """What identifies the frames of one episode in its data file."""

    circuit: int
    episode: int


def drive(
    env: FollowLineEnv, pose: tuple[float, float, float], noise: _OrnsteinUhlenbeck | None,
    record: tuple[_Recorder, _Tag] | None, max_steps: int | None = None,
) -> str:
    """Drive the expert from ``pose`` for at most ``max_steps``; return the termination (or 'step_cap').

    Each step records the frame the expert saw and its command (the label) before the noisy
    command is applied (clipped to the car's limits), so a crash frame is never recorded.
    """
    limits = env.vehicle

    def execute(label: Command) -> Command:
        return limits.clip(*(np.add(label, noise.sample()) if noise is not None else label))

    def keep(step: Step) -> None:
        recorder, tag = record
        info = step.info
        recorder.add(
            frames=step.observation, labels=step.command, executed=step.executed, circuit=tag.circuit,
            episode=tag.episode, pose=(info["x"], info["y"], info["yaw"]), s=info["s"], d=info["d"], t=info["time_s"],
        )

    lap = rollout(env, _expert(), options={"pose": pose}, max_steps=max_steps, perturb=execute,
                  on_step=keep if record is not None else None)
    if lap.termination == Termination.AGENT_ERROR:
        raise DatasetError(f"the expert failed on {env.circuit.name}: {lap.error}")
    return str(lap.termination) if lap.termination is not None else "step_cap"


@functools.cache
def _expert() -> ExpertAgent:
    return ExpertAgent()


def _episode_start(circuit, rng: np.random.Generator, config: DatasetConfig) -> tuple[float, float, float]:
    """A random point of the lap, up to ``start_offset_m`` off the line and ``start_yaw_rad`` askew."""
    s0 = rng.uniform(0.0, circuit.length_m)
    d0 = rng.uniform(-config.start_offset_m, config.start_offset_m)
    x, y = circuit.position(s0, d0)
    yaw = float(circuit.heading_at(s0)) + rng.uniform(-config.start_yaw_rad, config.start_yaw_rad)
    return float(x), float(y), yaw


def _episode_noise(rng: np.random.Generator, noise: NoiseConfig, dt_s: float) -> _OrnsteinUhlenbeck:
    """This episode's noise: scale 0 for a clean share of episodes, else drawn from U(0, 1)."""
    scale = 0.0 if rng.uniform() < noise.clean_fraction else rng.uniform()
    sigma = scale * np.array([noise.v_sigma_mps, noise.w_sigma_radps])
    return _OrnsteinUhlenbeck(sigma, noise.tau_s, dt_s, rng)


# ---------------------------------------------------------------------------------- file jobs
@dataclass(frozen=True)
class ChunkJob:
    """One chunk of a split: everything a worker process needs to make its file."""

    config: DatasetConfig
    split: str
    index: int
    frames: int
    directions: tuple[tuple[int, Direction], ...]
    """(manifest index, direction) of the split's circuits."""
    out: Path

    @property
    def file(self) -> str:
        return f"{self.split}/chunk-{self.index:05d}.npz"

    def run(self) -> dict[str, Any]:
        """Drive episodes until the chunk is full, write it, and return its manifest entry."""
        recorder, terminations = _Recorder(), Counter()
        episode = 0
        while len(recorder) < self.frames:
            if episode >= EPISODE_STRIDE:
                raise DatasetError(f"{self.file}: {episode} episodes gave only {len(recorder)} frames; the starts crash at once")
            terminations[self._episode(episode, recorder)] += 1
            episode += 1
        entry = write_npz(self.out, self.file, recorder.arrays())
        return {"index": self.index, **entry, "episodes": episode, "terminations": dict(sorted(terminations.items()))}

    def _direction(self, episode: int) -> tuple[int, Direction]:
        """Round-robin over a seeded order of the split's directions, continued from chunk to
        chunk, so every direction gets a fair share of episodes (a crash shifts it by one)."""
        order = np.random.default_rng([self.config.seed, SPLIT_IDS[self.split]]).permutation(len(self.directions))
        slots = math.ceil(self.config.chunk_frames / self.config.episode_steps)
        return self.directions[order[(self.index * slots + episode) % len(order)]]

    def _episode(self, episode: int, recorder: _Recorder) -> str:
        """One seeded episode (start pose, noise) recorded into ``recorder``; its termination."""
        rng = np.random.default_rng([self.config.seed, SPLIT_IDS[self.split], self.index, episode])
        circuit_index, direction = self._direction(episode)
        env = _env(direction.base, direction.reverse)
        pose = _episode_start(env.circuit, rng, self.config)
        noise = _episode_noise(rng, self.config.noise, env.config.sim.control_dt_s)
        cap = min(self.config.episode_steps, self.frames - len(recorder))
        tag = _Tag(circuit_index, self.index * EPISODE_STRIDE + episode)
        termination = drive(env, pose, noise, (recorder, tag), cap)
        return "chunk_full" if termination == "step_cap" and cap < self.config.episode_steps else termination


@dataclass(frozen=True)
class TestSetJob:
    """One noise-free expert lap from the spawn of a test circuit."""

    name: str
    circuit_index: int
    out: Path

    @property
    def file(self) -> str:
        return f"{TEST_DIR}/{self.name}.npz"

    def run(self) -> dict[str, Any]:
        recorder = _Recorder()
        env = _env(self.name, False)
        termination = drive(env, env.circuit.spawn_pose, None, (recorder, _Tag(self.circuit_index, 0)))
        entry = write_npz(self.out, self.file, recorder.arrays())
        return {"circuit": self.name, **entry, "termination": termination}


@dataclass(frozen=True)
class LapCheckJob:
    """Can the expert drive this direction? (a noise-free lap)"""

    direction: Direction

    def run(self) -> str:
        return _lap_check(self.direction.base, self.direction.reverse)


def run_job(job: ChunkJob | TestSetJob | LapCheckJob) -> Any:
    return job.run()


def ignore_sigint() -> None:
    """Workers leave Ctrl-C to the main process, which lets running chunks finish whole."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


