"""``python -m simeval.sweep --agents all --circuits all --seeds 3 --out DIR``: run every combination.

Each (agent, circuit, scenario, seed) is one run of ``simeval.run`` in ``DIR/runs/``; rerunning the
same command does only the missing runs. ``DIR/summary.csv`` and ``DIR/report.md`` are rebuilt
from the run folders at the end. The sweep itself is ``simeval.eval.sweep``.

Exit codes: 0 every run ran (a lap not completed is a result, not an error); 2 bad input, or an
agent named explicitly that cannot load here; 3 a run failed (the agent raised mid-lap).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simeval.errors import SimevalError
from simeval.eval.run import RunConfig
from simeval.eval.sweep import PER_RUN, SweepConfig, sweep
from simeval.options import add_dataclass_arguments, dataclass_from_args

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simeval.sweep", description=__doc__.splitlines()[0])
    add_dataclass_arguments(parser, SweepConfig)
    add_dataclass_arguments(parser, RunConfig, exclude=PER_RUN)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = dataclass_from_args(SweepConfig, args, run=dataclass_from_args(RunConfig, args, exclude=PER_RUN))
        outcome = sweep(config, progress=not args.no_progress)
    except SimevalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = Path(config.out)
    print(
        f"{outcome['total']} runs: {outcome['ran']} ran, {outcome['kept']} kept from before, "
        f"{len(outcome['failed'])} failed, {sum(1 for _ in outcome['unavailable'])} agents unavailable "
        f"({outcome['wall_s']:.1f} s)"
    )
    for name, error in sorted(outcome["unavailable"].items()):
        print(f"skipped agent '{name}': {error}", file=sys.stderr)
    for failed in outcome["failed"]:
        print(f"error: run {failed['out']} failed: {failed['error']}", file=sys.stderr)
    print(f"summary: {out / 'summary.csv'}\nreport: {out / 'report.md'}")
    if outcome["unavailable"] and config.agents.strip() != "all":
        return EXIT_BAD_INPUT
    return EXIT_RUN_FAILED if outcome["failed"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
