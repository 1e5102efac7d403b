"""``python -m simeval.offline [--agents A,B,model.onnx|all] [--out DIR]``: the offline table.

Size, test MSE per test circuit, batch-1 latency and batch-64 throughput of every shipped model
that runs here, or of the models named (a name, a model file with its contract beside it, or a
contract file; ``simeval.build.offline``); the others are listed with the reason. Writes
``offline.csv``, ``offline.md`` and ``offline.png`` into one folder, whole. The test laps come from
the data set where there is one, else the expert drives them (a few seconds).

Exit codes: 0 the table was written; 2 bad input (unwritable folder, a bad data set); 130
interrupted (Ctrl-C): nothing was written.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

from simeval.errors import EXIT_BAD_INPUT, run_command
from simeval.options import command_parser


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m simeval.offline", __doc__)
    parser.add_argument("--agents", default="all", help="comma-separated agent names or model files, or all (default)")
    parser.add_argument("--out", type=Path, default=None, help="folder to write; default results/offline__<time>")
    parser.add_argument("--data", type=Path, default=None,
                        help="data set whose test sets to use (default data/pilotnet where present, else the expert drives the laps)")
    parser.add_argument("--circuits", default="all", help="comma-separated test circuits to measure on, or all (default)")
    parser.add_argument("--contract", type=Path, default=None, help="model contract of a single model file in --agents")
    parser.add_argument("--trust-model", action="store_true", help="load model files of formats that carry code")
    parser.add_argument("--calls", type=int, default=1000, help="timed batch-1 calls per agent (at least 1000 for the table)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tqdm import tqdm

    from simeval.agents.registry import is_model_path
    from simeval.atomic import atomic_directory
    from simeval.build.dataset import load_manifest
    from simeval.build.offline import evaluate, figure_png, laps, markdown, model_agents, table_csv
    from simeval.paths import dataset_dir, results_dir

    args = build_parser().parse_args(argv)
    names = model_agents() if args.agents == "all" else [n.strip() for n in args.agents.split(",") if n.strip()]
    out = args.out or results_dir() / f"offline__{datetime.now():%Y%m%d-%H%M%S}"

    def body() -> int:
        if args.data is not None:
            load_manifest(args.data)  # a data set named on the command line must be one
        wanted = None if args.circuits == "all" else [c.strip() for c in args.circuits.split(",") if c.strip()]
        test = laps(args.data or dataset_dir(), wanted)
        rows = [evaluate(name, test, args.calls, contract=args.contract, trust_model=args.trust_model)
                for name in tqdm(names, desc="offline", unit="agent", file=sys.stderr)]
        with atomic_directory(out) as tmp:
            (tmp / "offline.csv").write_text(table_csv(rows))
            (tmp / "offline.md").write_text(markdown(rows, args.calls))
            if any(not r.reason for r in rows):
                (tmp / "offline.png").write_bytes(figure_png(rows))
        print(markdown(rows, args.calls))
        print(f"results: {out}")
        refused = [r for r in rows if r.reason and is_model_path(r.agent)]  # a user's file: bad input, not this machine
        for row in refused:
            print(f"error: {row.reason}", file=sys.stderr)
        return EXIT_BAD_INPUT if refused else 0

    return run_command(body)


if __name__ == "__main__":
    raise SystemExit(main())
