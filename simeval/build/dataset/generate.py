"""Making (or finishing) a data set: the plan of its files, the jobs that are missing, the manifest.

``generate`` drives the lap checks, then every chunk and test lap not yet on disk, in this
process or a pool of spawned workers, rewriting the manifest after each file; an earlier run's
files are kept when their bytes still match, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simeval.atomic import write_text_atomic
from simeval.build.dataset.collect import (
    ChunkJob,
    Direction,
    LapCheckJob,
    TestSetJob,
    direction_circuit,
    ignore_sigint,
    run_job,
)
from simeval.build.dataset.config import ARRAYS, FORMAT, LABEL_CHANNELS, MANIFEST, SPLITS, DatasetConfig
from simeval.build.dataset.store import (
    DatasetManifest,
    checked_format,
    code_version,
    driving_code_sha256,
    load_manifest,
    read_json,
    sha256_file,
    split_summary,
)
from simeval.env import Termination
from simeval.errors import ConfigError, DatasetError, UnknownNameError
from simeval.track.catalogue import available
from simeval.track.circuit import Circuit


def _catalogue_roles() -> dict[str, str]:
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
            "splits": {s: split_summary(*self.planned(s), self.chunks[s]) for s in SPLITS},
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
        data = read_json(path)
    except DatasetError:
        return None
    old = checked_format(data, path)
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
    return entry is not None and sha256_file(out / entry["file"]) == entry.get("sha256")


def _run_jobs(jobs: Sequence[Any], executor: ProcessPoolExecutor | None, done: Callable[[Any, Any], None]) -> None:
    """Run jobs in this process or the pool, calling ``done(job, result)`` in this process as each ends.

    On Ctrl-C, jobs not started are cancelled and running ones finish (their files are whole).
    """
    if executor is None:
        for job in jobs:
            done(job, job.run())
        return
    pending: dict[Future, Any] = {executor.submit(run_job, job): job for job in jobs}
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
        Direction(f"{base}-reverse" if rev else base, base, rev, "train", split, direction_circuit(base, rev).length_m)
        for split in SPLITS
        for base in config.circuits or ()
        if (base in config.val_circuits) == (split == "val")
        for rev in (False, True)
    ]
    verdicts: dict[str, str] = {}
    if old is not None:
        verdicts.update({c["name"]: Termination.LAP_COMPLETED.value for c in old["circuits"]})
        verdicts.update({s["name"]: s["reason"] for s in old["skipped_directions"]})
    todo = [LapCheckJob(c) for c in candidates if c.name not in verdicts]
    with tqdm(total=len(todo), desc="expert lap checks", unit="lap", file=sys.stderr, disable=not progress or not todo) as bar:
        def done(job: LapCheckJob, termination: str) -> None:
            verdicts[job.direction.name] = termination
            bar.update(1)

        _run_jobs(todo, executor, done)
    kept = [c for c in candidates if verdicts[c.name] == Termination.LAP_COMPLETED]
    skipped = [{"name": c.name, "reason": verdicts[c.name]} for c in candidates if verdicts[c.name] != Termination.LAP_COMPLETED]
    for split in ("train", "val"):
        if not any(d.split == split for d in kept) and (split == "train" or config.val_frames):
            raise DatasetError(f"the expert cannot drive any {split} circuit direction (lap checks: {skipped})")
    tests = [Direction(n, n, False, "test", "test", direction_circuit(n, False).length_m) for n in test_names]
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

        executor = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"), initializer=ignore_sigint)
    try:
        directions, skipped, test_names = _plan_directions(config, roles, old, executor, progress)
        plan = _Plan(config, out, directions, skipped, test_names, code_version())
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


