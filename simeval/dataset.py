"""``python -m simeval.dataset``: record the expert on the training circuits (the PilotNet data set).

    python -m simeval.dataset                     # data/pilotnet/: 82,000 frames, ~100 MB, ~1.5 min
    python -m simeval.dataset --out DIR --jobs 2  # elsewhere, with two worker processes
    python -m simeval.dataset export --format dls OUT [--image full|crop] [--splits train,val,test]

The data set and its format are described in ``simeval.build.dataset``; ``export`` writes it as
JdeRobot DeepLearningStudio's training scripts read it (``simeval.build.dataset.export``). Rerunning
the same command after an interrupt continues where it stopped.

Exit codes: 0 the data set is complete; 2 bad input (settings, another data set in the folder);
130 interrupted (the files written so far are whole).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from simeval.build.dataset import SPLITS, DatasetConfig, generate
from simeval.errors import run_command
from simeval.options import command_parser
from simeval.paths import dataset_dir


def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m simeval.dataset", __doc__)
    parser.add_argument("--out", type=Path, help=f"data set folder (default {dataset_dir()})")
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


def _export_parser() -> argparse.ArgumentParser:
    from simeval.build.dataset.export import FORMATS, IMAGES

    parser = argparse.ArgumentParser(prog="python -m simeval.dataset export",
                                     description="write the data set as another pipeline's training scripts read it")
    parser.add_argument("out", type=Path, help="folder to write (OUT/<split>/<circuit>/)")
    parser.add_argument("--format", choices=FORMATS, default="dls", help="dls: DeepLearningStudio (0.png, 1.png, ..., data.csv with v, w)")
    parser.add_argument("--image", choices=IMAGES, default="full", help="full: the 640x480 camera image (their scripts crop it); crop: rows 240:480 only")
    parser.add_argument("--splits", type=_names, default=(*SPLITS, "test"), help="comma-separated splits (default train,val,test)")
    parser.add_argument("--circuits", type=_names, default=None, help="comma-separated circuits (default every one)")
    parser.add_argument("--data", type=Path, help=f"data set folder (default {dataset_dir()})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def export_main(argv: Sequence[str]) -> int:
    from simeval.build.dataset.export import export

    args = _export_parser().parse_args(argv)

    def body() -> int:
        written = export(args.data or dataset_dir(), args.out, image=args.image, splits=args.splits,
                         circuits=args.circuits, progress=not args.no_progress)
        print(f"{args.out}: " + ", ".join(f"{split} {count} frames" for split, count in written.items()) + " written")
        return 0

    return run_command(body, f"interrupted: the circuits written so far are whole; run the same command to continue ({args.out})")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["export"]:
        return export_main(argv[1:])
    args = _parser().parse_args(argv)
    settings = {f.name: getattr(args, f.name) for f in dataclasses.fields(DatasetConfig) if f.name != "noise"}
    out = args.out or dataset_dir()

    def body() -> int:
        manifest = generate(DatasetConfig(**settings), out, jobs=args.jobs, progress=not args.no_progress)
        summary = ", ".join(f"{s} {manifest.frames(s)}" for s in SPLITS)
        tests = ", ".join(f"{n} {e['frames']}" for n, e in manifest.test_sets.items())
        print(f"{out}: {summary} frames; test sets: {tests}; manifest sha256 {manifest.sha256}")
        return 0

    return run_command(body, f"interrupted: the files written so far are whole; run the same command to continue ({out})")


if __name__ == "__main__":
    raise SystemExit(main())
