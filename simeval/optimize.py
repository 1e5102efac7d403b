"""``python -m simeval.optimize NAME [NAME ...] | all``: build optimized PilotNet variants from the
shipped fp32 models, each into ``agents/<NAME>/`` with its card.

Each variant is a builder function, ``build(parent_dir, out_dir, context) -> VariantResult``,
in its backend's module; this module owns what they share: the calibration frames (TRAINING
circuits only), the card (sha256, size, offline MSE on the test circuits beside the parent's),
and the CLI. Builders that need hardware or libraries that are missing raise ``AgentError`` with
one line saying what is missing; ``all`` reports those and carries on.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.pilotnet import ModelCard, model_dir, read_card, sha256_of
from simeval.atomic import public_permissions
from simeval.errors import AgentError, SimevalError, UnknownNameError

VARIANTS: dict[str, tuple[str, str]] = {
    # name: (parent fp32 model, "module:builder")
    "torch-dynamic": ("torch-fp32", "simeval.agents.torch_quant:build_dynamic"),
    "torch-static": ("torch-fp32", "simeval.agents.torch_quant:build_static"),
    "torch-qat": ("torch-fp32", "simeval.agents.torch_quant:build_qat"),
    "onnx-fp32": ("torch-fp32", "simeval.agents.onnx_backend:build_fp32"),
    "onnx-int8": ("torch-fp32", "simeval.agents.onnx_backend:build_int8"),
    "tflite-dynamic": ("tf-fp32", "simeval.agents.litert_backend:build_dynamic"),
    "tflite-fp16": ("tf-fp32", "simeval.agents.litert_backend:build_fp16"),
    "tflite-int8": ("tf-fp32", "simeval.agents.litert_backend:build_int8"),
    "tftrt-fp32": ("tf-fp32", "simeval.agents.tensorrt_backend:build_fp32"),
    "tftrt-fp16": ("tf-fp32", "simeval.agents.tensorrt_backend:build_fp16"),
    "tftrt-int8": ("tf-fp32", "simeval.agents.tensorrt_backend:build_int8"),
}
CALIBRATION_FRAMES = 512


@dataclass
class BuildContext:
    """What every builder may use: the data set and a seeded source of calibration frames."""

    data: Path
    seed: int = 0

    def calibration_frames(self, count: int = CALIBRATION_FRAMES) -> NDArray[np.uint8]:
        """``count`` frames drawn (seeded) from the TRAINING split: never a test circuit."""
        from simeval.dataset import load_split

        frames = load_split(self.data, "train", ("frames",))["frames"]
        rng = np.random.default_rng([self.seed, count])
        return frames[np.sort(rng.choice(len(frames), size=min(count, len(frames)), replace=False))]

    def training(self) -> dict[str, NDArray]:
        """Frames and labels of the train and val splits (QAT fine-tuning)."""
        from simeval.dataset import load_split

        return {split: load_split(self.data, split, ("frames", "labels")) for split in ("train", "val")}


@dataclass
class VariantResult:
    """What a builder made: the artifact file and how to run it for the offline MSE."""

    artifact: Path
    framework: str
    precision: str
    predict: Callable[[NDArray[np.float32]], NDArray[np.floating]]
    """float32 NHWC batch -> (n, 2) in m/s, rad/s."""
    method: dict[str, Any] = field(default_factory=dict)
    """How it was built, including why this path (maintained API or not)."""


def write_card(name: str, parent: ModelCard, result: VariantResult, context: BuildContext, seconds: float) -> ModelCard:
    """The variant's card: its own sha256, size and test MSE, next to the parent's."""
    from simeval.train import test_report, versions

    test = test_report(result.predict, context.data, parent.labels)
    card = ModelCard(
        name=name,
        framework=result.framework,
        precision=result.precision,
        artifact=result.artifact.name,
        sha256=sha256_of(result.artifact),
        size_bytes=result.artifact.stat().st_size,
        parameters=parent.parameters,
        label_low=parent.label_low,
        label_high=parent.label_high,
        dataset=parent.dataset,
        training={"parent": parent.name, "parent_sha256": parent.sha256, "method": result.method, "seconds": round(seconds, 1)},
        validation=parent.validation,
        test=test | {"parent_all": parent.test["all"]},
        versions=versions(),
    )
    card.write(result.artifact.parent)
    return card


def build(name: str, context: BuildContext) -> ModelCard:
    """Build variant ``name`` from its shipped parent and write ``agents/<name>/``."""
    if name not in VARIANTS:
        raise UnknownNameError("variant", name, VARIANTS)
    parent_name, target = VARIANTS[name]
    parent_dir = model_dir(parent_name)
    parent = read_card(parent_dir)
    module_name, _, function = target.partition(":")
    builder = getattr(importlib.import_module(module_name), function)
    out = model_dir(name)
    started = time.perf_counter()
    with _replacing(out) as tmp:
        card = write_card(name, parent, builder(parent_dir, tmp, context), context, time.perf_counter() - started)
    return card


@contextmanager
def _replacing(out: Path) -> Iterator[Path]:
    """A fresh temporary folder that replaces ``out`` only when the build succeeds: a skipped or
    failed build leaves the shipped variant (or its absence) as it was."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        public_permissions(tmp, directory=True)
        old = out.with_name(f".{out.name}.old")
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    from simeval.dataset import default_dataset_dir

    parser = argparse.ArgumentParser(prog="python -m simeval.optimize", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help=f"variants to build, or 'all': {', '.join(VARIANTS)}")
    parser.add_argument("--data", type=Path, default=None, help="data set folder (default data/pilotnet)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the calibration sample")
    args = parser.parse_args(argv)
    names = list(VARIANTS) if args.names == ["all"] else args.names
    context = BuildContext(data=args.data or default_dataset_dir(), seed=args.seed)
    failures = 0
    for name in names:
        try:
            card = build(name, context)
        except AgentError as exc:
            print(f"{name}: skipped: {exc}", file=sys.stderr)
            failures += 0 if args.names == ["all"] else 1
            continue
        except SimevalError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{name}: {card.size_bytes / 1e6:.2f} MB, test MSE {card.test['all']['mse_normalized']:.5f} "
              f"(parent {card.test['parent_all']['mse_normalized']:.5f})")
    return 2 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

