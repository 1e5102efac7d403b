"""The PilotNet data set: the expert's camera frames and commands, recorded on the training circuits.

    python -m simeval.dataset                     # data/pilotnet/: 82,000 frames, ~100 MB, ~1.5 min
    python -m simeval.dataset --out DIR --jobs 2  # elsewhere, with two worker processes

Why it is made this way:

- Only circuits whose role is 'train' are driven; the test circuits (simple, montreal, montmelo)
  appear only in the test sets, which are used for offline MSE alone.
- A network that has only seen the expert on the line never learns to come back to it. So the
  executed command is the expert's plus seeded, temporally correlated noise (an Ornstein-Uhlenbeck
  process, DART-style) while the recorded label stays the expert's own command for the frame it
  saw; episodes start at random points, a little off the line and askew; and every circuit is
  driven in both directions where the expert can drive a noise-free lap that way.
- Validation is on held-out training circuits (``DEFAULT_VAL_CIRCUITS``: one generated loop and
  three TUMFTM tracks, both directions), so the trainer measures generalisation to unseen roads.
- Each chunk is a pure function of (settings, split, chunk index): its episodes are seeded from
  ``SeedSequence([seed, split id, chunk index, episode index])``. So an interrupted run continues
  where it stopped, and any number of ``--jobs`` gives byte-identical files.

On-disk format (``FORMAT``)::

    manifest.json            what is here: format, code version, settings, circuits, per-split
                             frame counts, chunk files with sha256, label statistics, crash rate,
                             and the test sets; ``complete`` is true once every file is written
    train/chunk-00000.npz    ``chunk_frames`` frames each (the last chunk holds the remainder)
    val/chunk-00000.npz
    test/<circuit>.npz       one noise-free expert lap from the spawn of each test circuit

Every .npz holds the arrays of ``ARRAYS``, one row per frame the expert saw: ``frames`` (the
66x200 RGB observation), ``labels`` (the expert's v m/s, w rad/s for that frame), ``executed``
(the noisy command actually applied, clipped to the car's limits), ``circuit`` (index into the
manifest's ``circuits``; a reversed direction is its own entry, e.g. 'austin-reverse'), ``pose``
(x m, y m, yaw rad), ``s`` and ``d`` (arc length and lateral offset on the driven direction, m),
``t`` (simulated time since the episode started, s) and ``episode`` (chunk index * 65536 +
episode number in the chunk, unique within a split). Frames after a crash are never recorded.
Files are written whole (temp file + rename) and their zip entries carry a fixed date, so the
same settings give the same bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import io
import json
import math
import signal
import sys
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.atomic import write_bytes_atomic, write_text_atomic
from simeval.errors import ConfigError, SimevalError, UnknownNameError
from simeval.paths import REPO_ROOT

FORMAT = "simeval-pilotnet-dataset/1"
"""Bump when the files or the way episodes are driven change: a run refuses to resume another format."""
MANIFEST = "manifest.json"
SPLITS = ("train", "val")
SPLIT_IDS = {"train": 0, "val": 1}
TEST_DIR = "test"
LABEL_CHANNELS = ("v_mps", "w_radps")
EPISODE_STRIDE = 65536
"""Episode ids are chunk index * EPISODE_STRIDE + episode number, so chunks never share an id."""
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
DEFAULT_VAL_CIRCUITS = ("gen-002", "brandshatch", "hockenheim", "sochi")
"""Training circuits held out whole (both directions) as the 'val' split: one generated loop and
three TUMFTM tracks, so validation measures how well a model drives roads it has never seen."""
HOW_TO_MAKE = "run `python -m simeval.dataset` (or `make models`)"

ARRAYS: dict[str, tuple[str, tuple[int, ...]]] = {
    "frames": ("uint8", (66, 200, 3)),
    "labels": ("float32", (2,)),
    "executed": ("float32", (2,)),
    "circuit": ("int16", ()),
    "pose": ("float32", (3,)),
    "s": ("float32", ()),
    "d": ("float32", ()),
    "t": ("float32", ()),
    "episode": ("int32", ()),
}
"""Every array of a data file: dtype and the shape of one row (see the module docstring)."""


class DatasetError(SimevalError):
    """A data set that is missing, incomplete, corrupt, or made with other settings."""


# ------------------------------------------------------------------------------------- settings
def _opt(help_text: str, **kwargs: Any) -> dict[str, Any]:
    return {"metadata": {"help": help_text}, **kwargs}


@dataclass(frozen=True)
class NoiseConfig:
    """DART noise on the executed command: an Ornstein-Uhlenbeck process per channel."""

    v_sigma_mps: float = 2.0
    """Stationary standard deviation of the speed noise at full episode scale (m/s)."""
    w_sigma_radps: float = 1.0
    """Stationary standard deviation of the yaw-rate noise at full episode scale (rad/s)."""
    tau_s: float = 0.5
    """Correlation time: long enough that the car drifts off the line, not just jitters."""
    clean_fraction: float = 0.2
    """Share of episodes with no noise at all; the others draw their scale from U(0, 1)."""


@dataclass(frozen=True)
class DatasetConfig:
    """Every setting that determines the data set's bytes; the manifest saves them all."""

    seed: int = field(default=0, **_opt("seed of every episode (start point, noise)"))
    train_frames: int = field(default=72_000, **_opt("frames in the 'train' split"))
    val_frames: int = field(default=10_000, **_opt("frames in the 'val' split"))
    chunk_frames: int = field(default=4096, **_opt("frames per chunk file"))
    episode_steps: int = field(default=400, **_opt("longest episode (steps of 50 ms), so chunks mix circuits"))
    start_offset_m: float = field(default=0.4, **_opt("episodes start up to this far left or right of the line (m)"))
    start_yaw_rad: float = field(default=0.1, **_opt("and up to this far askew (rad)"))
    circuits: tuple[str, ...] | None = field(
        default=None, **_opt("training circuits to drive, comma-separated (default: every circuit whose role is 'train')")
    )
    val_circuits: tuple[str, ...] = field(
        default=DEFAULT_VAL_CIRCUITS, **_opt("of those, the held-out circuits of the 'val' split, comma-separated")
    )
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    def __post_init__(self) -> None:
        checks = {
            "seed": self.seed >= 0,
            "train_frames": self.train_frames >= 1,
            "val_frames": self.val_frames >= 0,
            "chunk_frames": 1 <= self.chunk_frames <= EPISODE_STRIDE,
            "episode_steps": self.episode_steps >= 1,
            "start_offset_m": 0 <= self.start_offset_m < 1.0,
            "start_yaw_rad": 0 <= self.start_yaw_rad < 0.5,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"dataset {key} is out of range: {getattr(self, key)!r}")
        if self.val_frames and not self.val_circuits:
            raise ConfigError("val_frames > 0 needs at least one validation circuit")

    def as_dict(self) -> dict[str, Any]:
        """The settings as JSON values (tuples become lists), as the manifest stores them."""
        return json.loads(json.dumps(dataclasses.asdict(self)))


# -------------------------------------------------------------------------------- circuit plan
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
def _circuit(base: str, reverse: bool):
    from simeval.circuit import Circuit

    circuit = Circuit.from_name(base)
    return circuit.reversed() if reverse else circuit


@functools.cache
def _env(base: str, reverse: bool):
    """One env per circuit direction and process: building one costs ~0.3 s, an episode ~0.2 s."""
    from simeval.env import FollowLineEnv

    return FollowLineEnv(_circuit(base, reverse))


def _catalogue_roles() -> dict[str, str]:
    from simeval.circuit import Circuit
    from simeval.circuits import available

    return {name: Circuit.from_name(name).meta.role for name in available()}


def _resolve_circuits(config: DatasetConfig, roles: dict[str, str]) -> DatasetConfig:
    """``config`` with its circuits named explicitly (so the manifest says exactly what was driven,
    and a circuit added to the catalogue later cannot slip into a resumed run); refuses test
    circuits, unknown names, and a validation split that takes every circuit."""
    names = config.circuits if config.circuits is not None else tuple(sorted(n for n, r in roles.items() if r == "train"))
    for name in (*names, *config.val_circuits):
        if name not in roles:
            raise UnknownNameError("circuit", name, roles)
        if roles[name] != "train":
            raise ConfigError(f"circuit '{name}' has role '{roles[name]}'; the data set drives only 'train' circuits")
    missing = [n for n in config.val_circuits if n not in names]
    if missing:
        raise ConfigError(f"validation circuits {missing} are not among the driven circuits {list(names)}")
    if all(n in config.val_circuits for n in names):
        raise ConfigError("no training circuits left after taking out the validation circuits")
    return dataclasses.replace(config, circuits=names)


def _lap_check(base: str, reverse: bool) -> str:
    """The termination of a noise-free expert lap from the start: the direction is driven only if
    the expert completes it (a cheap, honest test of 'the expert can drive it')."""
    circuit = _circuit(base, reverse)
    return _drive(_env(base, reverse), circuit.spawn_pose, None, None)


# ------------------------------------------------------------------------------------- driving
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


def _drive(
    env, pose: tuple[float, float, float], noise: _OrnsteinUhlenbeck | None,
    record: tuple[_Recorder, _Tag] | None, max_steps: int | None = None,
) -> str:
    """Drive the expert from ``pose`` for at most ``max_steps``; return the termination (or 'step_cap').

    Each step records the frame the expert saw and its command (the label) before the noisy
    command is applied, so a crash frame is never recorded.
    """
    expert = _expert()
    expert.reset(env.circuit)
    obs, info = env.reset(options={"pose": pose})
    limits = env.vehicle
    steps = 0
    while info["termination"] is None:
        if max_steps is not None and steps >= max_steps:
            return "step_cap"
        label = expert.act(obs, info)
        executed = limits.clip(*(np.add(label, noise.sample()) if noise is not None else label))
        if record is not None:
            recorder, tag = record
            recorder.add(
                frames=obs, labels=label, executed=executed, circuit=tag.circuit, episode=tag.episode,
                pose=(info["x"], info["y"], info["yaw"]), s=info["s"], d=info["d"], t=info["time_s"],
            )
        obs, _, _, _, info = env.step(env.to_action(*executed))
        steps += 1
    return info["termination"]


@functools.cache
def _expert():
    from simeval.agents.expert import ExpertAgent

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
        entry = _write_npz(self.out, self.file, recorder.arrays())
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
        noise = _episode_noise(rng, self.config.noise, env.sim_config.control_dt_s)
        cap = min(self.config.episode_steps, self.frames - len(recorder))
        tag = _Tag(circuit_index, self.index * EPISODE_STRIDE + episode)
        termination = _drive(env, pose, noise, (recorder, tag), cap)
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
        termination = _drive(env, env.circuit.spawn_pose, None, (recorder, _Tag(self.circuit_index, 0)))
        entry = _write_npz(self.out, self.file, recorder.arrays())
        return {"circuit": self.name, **entry, "termination": termination}


@dataclass(frozen=True)
class LapCheckJob:
    """Can the expert drive this direction? (a noise-free lap)"""

    direction: Direction

    def run(self) -> str:
        return _lap_check(self.direction.base, self.direction.reverse)


def _run_job(job: ChunkJob | TestSetJob | LapCheckJob) -> Any:
    return job.run()


def _ignore_sigint() -> None:
    """Workers leave Ctrl-C to the main process, which lets running chunks finish whole."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _npz_bytes(arrays: dict[str, NDArray]) -> bytes:
    """An .npz (readable by np.load) whose bytes depend only on the arrays: np.savez stamps the
    current time into every zip entry, which would make reruns differ."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED  # at zlib's default level
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def _label_stats(labels: NDArray[np.float32]) -> dict[str, list[float]]:
    """Per-channel (v, w) statistics; empty lists for no frames."""
    values = labels.astype(np.float64)
    if len(values) == 0:
        return {"min": [], "max": [], "mean": [], "std": []}
    return {stat: getattr(values, stat)(axis=0).tolist() for stat in ("min", "max", "mean", "std")}


def _write_npz(out: Path, file: str, arrays: dict[str, NDArray]) -> dict[str, Any]:
    """Write one data file whole; its manifest entry (sha256, counts, label statistics)."""
    data = _npz_bytes(arrays)
    write_bytes_atomic(out / file, data)
    return {
        "file": file,
        "frames": len(arrays["frames"]),
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "labels": _label_stats(arrays["labels"]),
        "abs_d_max_m": float(np.abs(arrays["d"]).max(initial=0.0)),
    }


# ---------------------------------------------------------------------------------- manifest
def _pooled_stats(entries: Sequence[dict[str, Any]]) -> dict[str, list[float]]:
    """Label min/max/mean/std over chunks, from each chunk's own statistics (in chunk order)."""
    entries = [e for e in entries if e["frames"]]
    if not entries:
        return _label_stats(np.empty((0, 2), np.float32))
    n = np.array([e["frames"] for e in entries], dtype=np.float64)[:, None]
    mean = np.array([e["labels"]["mean"] for e in entries])
    std = np.array([e["labels"]["std"] for e in entries])
    total_mean = (n * mean).sum(axis=0) / n.sum()
    total_var = (n * (std**2 + mean**2)).sum(axis=0) / n.sum() - total_mean**2
    return {
        "min": np.min([e["labels"]["min"] for e in entries], axis=0).tolist(),
        "max": np.max([e["labels"]["max"] for e in entries], axis=0).tolist(),
        "mean": total_mean.tolist(),
        "std": np.sqrt(np.maximum(total_var, 0.0)).tolist(),
    }


def _split_summary(planned_frames: int, planned_chunks: int, chunks: dict[int, dict[str, Any]]) -> dict[str, Any]:
    entries = [chunks[i] for i in sorted(chunks)]
    terminations: Counter[str] = Counter()
    for entry in entries:
        terminations.update(entry["terminations"])
    episodes = sum(e["episodes"] for e in entries)
    return {
        "frames": sum(e["frames"] for e in entries),
        "frames_planned": planned_frames,
        "chunks_planned": planned_chunks,
        "episodes": episodes,
        "crash_rate": terminations["off_track"] / episodes if episodes else 0.0,
        "terminations": dict(sorted(terminations.items())),
        "labels": _pooled_stats(entries),
        "abs_d_max_m": max((e["abs_d_max_m"] for e in entries), default=0.0),
        "chunks": entries,
    }


DRIVING_CODE = ("circuit", "lookup", "vehicle", "simulator", "camera", "raster", "env", "agents/expert", "dataset")
"""Modules whose code decides a frame's pixels and its label: a change to any of them (or to a
circuit file) makes old chunks disagree with new ones, so a resume across it is refused."""


def driving_code_sha256() -> str:
    """One hash of the driving code and the circuit files."""
    from simeval.paths import PACKAGE_DIR, data_dir

    digest = hashlib.sha256()
    files = [PACKAGE_DIR / f"{name}.py" for name in DRIVING_CODE] + sorted(data_dir("circuits").glob("*.csv"))
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _code_version() -> dict[str, Any]:
    from simeval.results import environment_facts

    facts = environment_facts()
    return {key: facts[key] for key in ("simeval", "git_commit", "python", "numpy")} | {"driving_code": driving_code_sha256()}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no data set here; {HOW_TO_MAKE}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable manifest ({exc}); {HOW_TO_MAKE}") from None


def _checked_format(data: Any, path: Path) -> dict[str, Any]:
    found = data.get("format") if isinstance(data, dict) else None
    if found != FORMAT:
        raise DatasetError(f"{path}: format {found!r}, expected {FORMAT!r}; {HOW_TO_MAKE}")
    return data


def _sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


# ------------------------------------------------------------------------------- generation
@dataclass
class _Plan:
    """The data set being made: its circuit list and the manifest it keeps rewriting."""

    config: DatasetConfig
    out: Path
    directions: list[Direction]
    skipped: list[dict[str, str]]
    test_names: list[str]
    code: dict[str, Any]
    chunks: dict[str, dict[int, dict[str, Any]]] = field(default_factory=lambda: {s: {} for s in SPLITS})
    test_sets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def planned(self, split: str) -> tuple[int, int]:
        """(frames, chunks) of a split."""
        frames = self.config.train_frames if split == "train" else self.config.val_frames
        return frames, math.ceil(frames / self.config.chunk_frames)

    def circuit_table(self) -> list[dict[str, Any]]:
        return [d.as_dict(i) for i, d in enumerate(self.directions)]

    def chunk_jobs(self) -> list[ChunkJob]:
        jobs = []
        for split in SPLITS:
            frames, count = self.planned(split)
            dirs = tuple((i, d) for i, d in enumerate(self.directions) if d.split == split)
            for index in range(count):
                size = min(self.config.chunk_frames, frames - index * self.config.chunk_frames)
                jobs.append(ChunkJob(self.config, split, index, size, dirs, self.out))
        return jobs

    def test_jobs(self) -> list[TestSetJob]:
        index = {d.name: i for i, d in enumerate(self.directions)}
        return [TestSetJob(name, index[name], self.out) for name in self.test_names]

    def complete(self) -> bool:
        chunks_done = all(len(self.chunks[s]) == self.planned(s)[1] for s in SPLITS)
        return chunks_done and len(self.test_sets) == len(self.test_names)

    def manifest(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "complete": self.complete(),
            "code": self.code,
            "seed": self.config.seed,
            "settings": self.config.as_dict(),
            "arrays": {name: {"dtype": dtype, "row_shape": list(shape)} for name, (dtype, shape) in ARRAYS.items()},
            "label_channels": list(LABEL_CHANNELS),
            "circuits": self.circuit_table(),
            "skipped_directions": self.skipped,
            "splits": {s: _split_summary(*self.planned(s), self.chunks[s]) for s in SPLITS},
            "test_sets": {name: self.test_sets[name] for name in self.test_names if name in self.test_sets},
        }

    def write_manifest(self) -> None:
        write_text_atomic(self.out / MANIFEST, json.dumps(self.manifest(), indent=1) + "\n")


def _previous(out: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest of an earlier run into ``out`` with the same settings; None if there is none
    (or it is unreadable: its chunks then cannot be trusted and are made again). Another format or
    other settings raise: those files are someone's data set, not ours to overwrite."""
    path = out / MANIFEST
    try:
        data = _read_json(path)
    except DatasetError:
        return None
    old = _checked_format(data, path)
    made_by, now = old.get("code", {}).get("driving_code"), driving_code_sha256()
    if made_by != now:
        raise DatasetError(
            f"{out} was made by another version of the simulator, expert or circuits (driving code "
            f"{str(made_by)[:12]}, now {now[:12]}): its frames would not match new ones; "
            "delete it (or choose another --out) and generate again"
        )
    if old.get("settings") != settings:
        diff = sorted(k for k in settings if old.get("settings", {}).get(k) != settings[k])
        raise DatasetError(
            f"{out} holds a data set made with other settings ({', '.join(diff) or 'format'}); "
            "choose another --out, or delete it to start again"
        )
    return old


def _still_valid(out: Path, entry: dict[str, Any] | None) -> bool:
    return entry is not None and _sha256_file(out / entry["file"]) == entry.get("sha256")


def _run_jobs(jobs: Sequence[Any], executor: ProcessPoolExecutor | None, done: Callable[[Any, Any], None]) -> None:
    """Run jobs in this process or the pool, calling ``done(job, result)`` in this process as each ends.

    On Ctrl-C, jobs not started are cancelled and running ones finish (their files are whole).
    """
    if executor is None:
        for job in jobs:
            done(job, job.run())
        return
    pending: dict[Future, Any] = {executor.submit(_run_job, job): job for job in jobs}
    try:
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                done(pending.pop(future), future.result())
    except BaseException:
        for future in pending:
            future.cancel()
        raise


def _plan_directions(
    config: DatasetConfig, roles: dict[str, str], old: dict[str, Any] | None,
    executor: ProcessPoolExecutor | None, progress: bool,
) -> tuple[list[Direction], list[dict[str, str]], list[str]]:
    """Every driven direction (train, then val, then the test circuits forward) and the skipped ones.

    An earlier run's lap checks are reused (same settings, same circuits, same verdicts).
    """
    from tqdm import tqdm

    test_names = sorted(n for n, r in roles.items() if r == "test")
    candidates = [
        Direction(f"{base}-reverse" if rev else base, base, rev, "train", split, _circuit(base, rev).length_m)
        for split in SPLITS
        for base in config.circuits or ()
        if (base in config.val_circuits) == (split == "val")
        for rev in (False, True)
    ]
    verdicts: dict[str, str] = {}
    if old is not None:
        verdicts.update({c["name"]: "lap_completed" for c in old["circuits"]})
        verdicts.update({s["name"]: s["reason"] for s in old["skipped_directions"]})
    todo = [LapCheckJob(c) for c in candidates if c.name not in verdicts]
    with tqdm(total=len(todo), desc="expert lap checks", unit="lap", file=sys.stderr, disable=not progress or not todo) as bar:
        def done(job: LapCheckJob, termination: str) -> None:
            verdicts[job.direction.name] = termination
            bar.update(1)

        _run_jobs(todo, executor, done)
    kept = [c for c in candidates if verdicts[c.name] == "lap_completed"]
    skipped = [{"name": c.name, "reason": verdicts[c.name]} for c in candidates if verdicts[c.name] != "lap_completed"]
    for split in ("train", "val"):
        if not any(d.split == split for d in kept) and (split == "train" or config.val_frames):
            raise DatasetError(f"the expert cannot drive any {split} circuit direction (lap checks: {skipped})")
    tests = [Direction(n, n, False, "test", "test", _circuit(n, False).length_m) for n in test_names]
    return kept + tests, skipped, test_names


def generate(config: DatasetConfig, out: Path, *, jobs: int = 1, progress: bool = True) -> DatasetManifest:
    """Make (or finish) the data set in ``out``; files already there with the right sha256 are kept."""
    from tqdm import tqdm

    if jobs < 1:
        raise ConfigError(f"jobs must be >= 1, got {jobs}")
    out = Path(out)
    roles = _catalogue_roles()
    config = _resolve_circuits(config, roles)
    old = _previous(out, config.as_dict())
    executor = None
    if jobs > 1:
        import multiprocessing

        executor = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint)
    try:
        directions, skipped, test_names = _plan_directions(config, roles, old, executor, progress)
        plan = _Plan(config, out, directions, skipped, test_names, _code_version())
        _adopt_previous(plan, old)
        plan.write_manifest()
        todo = [j for j in plan.test_jobs() if j.name not in plan.test_sets]
        todo += [j for j in plan.chunk_jobs() if j.index not in plan.chunks[j.split]]
        total = sum(plan.planned(s)[0] for s in SPLITS)
        n_files = len(plan.test_names) + sum(plan.planned(s)[1] for s in SPLITS)
        kept = sum(e["frames"] for s in SPLITS for e in plan.chunks[s].values())
        with tqdm(total=total, initial=kept, unit="frame", unit_scale=True, file=sys.stderr, disable=not progress) as bar:
            bar.set_postfix_str(f"files {n_files - len(todo)}/{n_files}")

            def done(job: ChunkJob | TestSetJob, entry: dict[str, Any]) -> None:
                if isinstance(job, ChunkJob):
                    plan.chunks[job.split][job.index] = entry
                    bar.update(entry["frames"])
                else:
                    plan.test_sets[job.name] = entry
                plan.write_manifest()
                files = sum(len(plan.chunks[s]) for s in SPLITS) + len(plan.test_sets)
                bar.set_postfix_str(f"files {files}/{n_files}")

            _run_jobs(todo, executor, done)
    finally:
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
    return load_manifest(out)


def _adopt_previous(plan: _Plan, old: dict[str, Any] | None) -> None:
    """Keep the earlier run's files whose bytes still match its manifest; the rest are made again."""
    if old is None:
        return
    for split in SPLITS:
        for entry in old["splits"][split]["chunks"]:
            if _still_valid(plan.out, entry):
                plan.chunks[split][entry["index"]] = entry
    for name, entry in old["test_sets"].items():
        if name in plan.test_names and _still_valid(plan.out, entry):
            plan.test_sets[name] = entry


# ------------------------------------------------------------------------------------ reading
@dataclass(frozen=True)
class DatasetManifest:
    """A complete data set's manifest, as the trainer reads it."""

    root: Path
    sha256: str
    """Of manifest.json: what a model card records to name its training data."""
    seed: int
    settings: dict[str, Any]
    code: dict[str, Any]
    circuits: list[dict[str, Any]]
    splits: dict[str, dict[str, Any]]
    test_sets: dict[str, dict[str, Any]]

    def frames(self, split: str) -> int:
        return int(self._split(split)["frames"])

    def label_range(self, split: str = "train") -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Per-channel (v, w) min and max of a split's labels: the network's output normalisation."""
        labels = self._split(split)["labels"]
        return np.array(labels["min"], np.float32), np.array(labels["max"], np.float32)

    def _split(self, split: str) -> dict[str, Any]:
        if split not in self.splits:
            raise UnknownNameError("split", split, self.splits)
        return self.splits[split]


def load_manifest(root: str | Path) -> DatasetManifest:
    """The manifest of a complete data set; a missing, corrupt or unfinished one raises DatasetError."""
    path = Path(root) / MANIFEST
    data = _checked_format(_read_json(path), path)
    if not data.get("complete"):
        raise DatasetError(f"{path}: the data set is unfinished; {HOW_TO_MAKE} again to complete it")
    try:
        return DatasetManifest(
            root=Path(root), sha256=manifest_sha256(root), seed=data["seed"], settings=data["settings"],
            code=data["code"], circuits=data["circuits"], splits=data["splits"], test_sets=data["test_sets"],
        )
    except KeyError as exc:
        raise DatasetError(f"{path}: manifest lacks {exc}; {HOW_TO_MAKE}") from None


def manifest_sha256(root: str | Path) -> str:
    """sha256 of manifest.json, which names every file by its own sha256: one hash for the data set."""
    path = Path(root) / MANIFEST
    digest = _sha256_file(path)
    if digest is None:
        raise DatasetError(f"{path}: no data set here; {HOW_TO_MAKE}")
    return digest


def _load_file(root: Path, entry: dict[str, Any], names: Sequence[str]) -> dict[str, NDArray]:
    """The arrays of one data file, after checking its bytes against the manifest."""
    path = root / entry["file"]
    fix = f"{HOW_TO_MAKE} with --out {root} to remake it"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"{path}: cannot read data file ({exc.strerror or exc}); {fix}") from None
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise DatasetError(f"{path}: corrupt data file (sha256 differs from the manifest); {fix}")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in names}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise DatasetError(f"{path}: unreadable data file ({exc}); {fix}") from None
    for name, array in arrays.items():
        dtype, shape = ARRAYS[name]
        if array.dtype != np.dtype(dtype) or array.shape != (entry["frames"], *shape):
            raise DatasetError(f"{path}: '{name}' is {array.dtype} {array.shape}, expected {dtype} {(entry['frames'], *shape)}; {fix}")
    return arrays


def _check_names(names: Iterable[str]) -> list[str]:
    names = list(names)
    for name in names:
        if name not in ARRAYS:
            raise UnknownNameError("array", name, ARRAYS)
    return names


def load_split(root: str | Path, split: str, arrays: Iterable[str] = tuple(ARRAYS)) -> dict[str, NDArray]:
    """Every frame of 'train' or 'val', the chunks concatenated in order (only ``arrays`` are read)."""
    manifest = load_manifest(root)
    names = _check_names(arrays)
    entries = manifest._split(split)["chunks"]
    total = sum(e["frames"] for e in entries)
    result = {name: np.empty((total, *ARRAYS[name][1]), dtype=ARRAYS[name][0]) for name in names}
    start = 0
    for entry in entries:
        chunk = _load_file(manifest.root, entry, names)
        for name in names:
            result[name][start : start + entry["frames"]] = chunk[name]
        start += entry["frames"]
    return result


def load_test_set(root: str | Path, circuit_name: str, arrays: Iterable[str] = tuple(ARRAYS)) -> dict[str, NDArray]:
    """The noise-free expert lap of test circuit ``circuit_name`` (for offline MSE only)."""
    manifest = load_manifest(root)
    if circuit_name not in manifest.test_sets:
        raise UnknownNameError("test set", circuit_name, manifest.test_sets)
    return _load_file(manifest.root, manifest.test_sets[circuit_name], _check_names(arrays))


# ---------------------------------------------------------------------------------------- CLI
def default_dataset_dir() -> Path:
    """``data/pilotnet`` in the working tree of a checkout, else ``./data/pilotnet``."""
    base = REPO_ROOT if (REPO_ROOT / "pyproject.toml").is_file() else Path.cwd()
    return base / "data" / "pilotnet"


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simeval.dataset", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, help=f"data set folder (default {default_dataset_dir()})")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (the data set is the same for any number)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    defaults = DatasetConfig()
    for f in dataclasses.fields(DatasetConfig):
        if "help" not in f.metadata:
            continue
        default = getattr(defaults, f.name)
        kind = _names if f.name in ("circuits", "val_circuits") else type(default)
        shown = ",".join(default) if isinstance(default, tuple) else default
        parser.add_argument(
            f"--{f.name.replace('_', '-')}", type=kind, default=default, help=f"{f.metadata['help']} (default {shown})"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = {f.name: getattr(args, f.name) for f in dataclasses.fields(DatasetConfig) if f.name != "noise"}
    out = args.out or default_dataset_dir()
    try:
        manifest = generate(DatasetConfig(**settings), out, jobs=args.jobs, progress=not args.no_progress)
    except SimevalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"interrupted: the files written so far are whole; run the same command to continue ({out})", file=sys.stderr)
        return 130
    summary = ", ".join(f"{s} {manifest.frames(s)}" for s in SPLITS)
    tests = ", ".join(f"{n} {e['frames']}" for n, e in manifest.test_sets.items())
    print(f"{out}: {summary} frames; test sets: {tests}; manifest sha256 {manifest.sha256}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
