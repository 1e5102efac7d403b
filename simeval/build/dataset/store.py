"""The data set on disk: writing its .npz files, its manifest, and reading them back.

Each .npz holds the arrays of ``ARRAYS``; its bytes depend only on the arrays (zip entries carry
a fixed date), and every file is named in ``manifest.json`` with its sha256, which the readers
check before they trust a byte.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.atomic import write_bytes_atomic
from simeval.build.dataset.config import ARRAYS, FORMAT, HOW_TO_MAKE, MANIFEST, ZIP_DATE
from simeval.env import Termination
from simeval.errors import DatasetError, UnknownNameError
from simeval.eval.results import environment_facts
from simeval.paths import data_dir


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


def write_npz(out: Path, file: str, arrays: dict[str, NDArray]) -> dict[str, Any]:
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


def split_summary(planned_frames: int, planned_chunks: int, chunks: dict[int, dict[str, Any]]) -> dict[str, Any]:
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
        "crash_rate": terminations[Termination.OFF_TRACK.value] / episodes if episodes else 0.0,
        "terminations": dict(sorted(terminations.items())),
        "labels": _pooled_stats(entries),
        "abs_d_max_m": max((e["abs_d_max_m"] for e in entries), default=0.0),
        "chunks": entries,
    }


DRIVING_CODE = (
    "simeval.track.circuit", "simeval.track.circuit_file", "simeval.track.lookup", "simeval.sim.vehicle",
    "simeval.sim.simulator", "simeval.sim.camera", "simeval.sim.raster", "simeval.env", "simeval.agents.expert",
    "simeval.eval.rollout", "simeval.build.dataset.collect",
)
"""Modules whose code decides a frame's pixels and its label: a change to any of them (or to a
circuit file) makes old chunks disagree with new ones, so a resume across it is refused."""


def driving_code_sha256() -> str:
    """One hash of the driving code and the circuit files."""
    digest = hashlib.sha256()
    files = [Path(importlib.util.find_spec(name).origin) for name in DRIVING_CODE]
    files += sorted(data_dir("circuits").glob("*.csv"))
    for path in files:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def code_version() -> dict[str, Any]:
    facts = environment_facts()
    return {key: facts[key] for key in ("simeval", "git_commit", "python", "numpy")} | {"driving_code": driving_code_sha256()}


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: no data set here; {HOW_TO_MAKE}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: unreadable manifest ({exc}); {HOW_TO_MAKE}") from None


def checked_format(data: Any, path: Path) -> dict[str, Any]:
    found = data.get("format") if isinstance(data, dict) else None
    if found != FORMAT:
        raise DatasetError(f"{path}: format {found!r}, expected {FORMAT!r}; {HOW_TO_MAKE}")
    return data


def sha256_file(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


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
    data = checked_format(read_json(path), path)
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
    digest = sha256_file(path)
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


