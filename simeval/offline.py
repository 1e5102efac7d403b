"""``python -m simeval.offline [--agents A,B|all] [--out DIR]``: the offline table of every model.

Size, test MSE per test circuit, batch-1 latency and batch-64 throughput of every model variant
that runs here (``simeval.build.offline``); the others are listed with the reason. Writes
``offline.csv``, ``offline.md`` and ``offline.png`` into one folder, whole. The test sets come from
the data set (``make data``).

Exit codes: 0 the table was written; 2 bad input (no data set, unwritable folder).
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from simeval.errors import SimevalError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simeval.offline", description=__doc__.splitlines()[0])
    parser.add_argument("--agents", default="all", help="comma-separated agent names, or all (default)")
    parser.add_argument("--out", type=Path, default=None, help="folder to write; default results/offline__<time>")
    parser.add_argument("--data", type=Path, default=None, help="data set with the test sets (default data/pilotnet)")
    parser.add_argument("--calls", type=int, default=1000, help="timed batch-1 calls per agent (at least 1000 for the table)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from simeval.atomic import atomic_directory
    from simeval.build.dataset import load_manifest
    from simeval.build.offline import evaluate, figure_png, markdown, model_agents, table_csv
    from simeval.paths import dataset_dir, results_dir

    args = build_parser().parse_args(argv)
    names = model_agents() if args.agents == "all" else [n.strip() for n in args.agents.split(",") if n.strip()]
    out = args.out or results_dir() / f"offline__{datetime.now():%Y%m%d-%H%M%S}"
    try:
        data = args.data or dataset_dir()
        load_manifest(data)
        rows = [evaluate(name, data, args.calls) for name in tqdm(names, desc="offline", unit="agent", file=sys.stderr)]
        with atomic_directory(out) as tmp:
            (tmp / "offline.csv").write_text(table_csv(rows))
            (tmp / "offline.md").write_text(markdown(rows, args.calls))
            if any(not r.reason for r in rows):
                (tmp / "offline.png").write_bytes(figure_png(rows))
    except SimevalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown(rows, args.calls))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
