"""The data set written the way other pipelines read it: ``python -m simeval.dataset export``.

``--format dls``: JdeRobot DeepLearningStudio's layout, which its training scripts read (one folder
per circuit; in it ``0.png``, ``1.png``, ... and ``data.csv`` with the ``v`` and ``w`` of each frame,
in index order). The images are the camera's whole 640x480 RGB image (``image="full"``, what their
scripts crop to rows 240:480 themselves), or already cropped to those rows (``image="crop"``),
rendered again at each frame's recorded pose: the world is deterministic, so the image is the one
the expert's camera saw, up to the pose's float32 rounding (a few micrometres).

Folders are ``OUT/<split>/<circuit>/``; each is written whole (temporary folder, then rename), so
an interrupted export keeps the circuits it finished and a rerun does only the others.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from simeval.atomic import atomic_directory
from simeval.build.dataset.config import SPLITS
from simeval.build.dataset.store import load_manifest, load_split, load_test_set
from simeval.errors import ConfigError
from simeval.sim.camera import CameraConfig
from simeval.sim.renderer import make_renderer
from simeval.track.circuit import Circuit

FORMATS = ("dls",)
IMAGES = ("full", "crop")
CROP_ROWS = (240, 480)
"""The rows DeepLearningStudio's scripts keep (``img[240:480]``)."""


def export(root: Path, out: Path, *, image: str = "full", splits: Sequence[str] = (*SPLITS, "test"),
           circuits: Sequence[str] | None = None, progress: bool = True) -> dict[str, int]:
    """Write the data set at ``root`` in DeepLearningStudio's layout under ``out``; returns the
    number of frames written per split (circuits already exported are kept as they are)."""
    if image not in IMAGES:
        raise ConfigError(f"image must be one of {IMAGES}, got {image!r}")
    for split in splits:
        if split not in (*SPLITS, "test"):
            raise ConfigError(f"splits must be among {(*SPLITS, 'test')}, got {split!r}")
    manifest = load_manifest(root)
    names = [c["name"] for c in manifest.circuits]
    written = {}
    for split in splits:
        groups = _groups(root, split, names, manifest.test_sets)
        chosen = [(name, data) for name, data in groups if circuits is None or name in circuits]
        written[split] = sum(_export_circuit(out / split / name, name, data, image, progress) for name, data in chosen)
    return written


def _groups(root: Path, split: str, names: list[str], test_sets: dict) -> list[tuple[str, dict]]:
    """(circuit name, its frames' poses and labels in order) for every circuit of a split."""
    if split == "test":
        return [(name, load_test_set(root, name, ("pose", "labels"))) for name in sorted(test_sets)]
    data = load_split(root, split, ("pose", "labels", "circuit"))
    return [(names[index], {key: data[key][data["circuit"] == index] for key in ("pose", "labels")})
            for index in sorted(set(data["circuit"].tolist()))]


def _export_circuit(folder: Path, name: str, data: dict, image: str, progress: bool) -> int:
    """One circuit's folder, whole; 0 if it is there already."""
    import cv2
    from tqdm import tqdm

    if folder.is_dir():
        return 0
    base = name.removesuffix("-reverse")
    circuit = Circuit.from_name(base)
    if base != name:
        circuit = circuit.reversed()
    renderer = make_renderer("raster", circuit, CameraConfig.sensor())
    poses, labels = np.asarray(data["pose"], np.float64), np.asarray(data["labels"], np.float64)
    try:
        with atomic_directory(folder) as tmp:
            rows = ["v,w"]
            for index in tqdm(range(len(poses)), desc=f"{folder.parent.name}/{name}", unit="frame", file=sys.stderr,
                              disable=not progress, leave=False):
                frame = renderer.render(*poses[index])
                if image == "crop":
                    frame = frame[CROP_ROWS[0] : CROP_ROWS[1]]
                if not cv2.imwrite(str(tmp / f"{index}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)):
                    raise OSError(f"cannot write {tmp / f'{index}.png'}")
                rows.append(f"{labels[index, 0]:.6f},{labels[index, 1]:.6f}")
            (tmp / "data.csv").write_text("\n".join(rows) + "\n")
    finally:
        renderer.close()
    return len(poses)
