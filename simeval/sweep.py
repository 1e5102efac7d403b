"""``python -m simeval.sweep --agents all --circuits all --seeds 3 --out DIR``: run every combination.

Each (agent, circuit, scenario, seed) is one run of ``simeval.run`` in ``DIR/runs/``; rerunning the
same command does only the missing runs. ``DIR/summary.csv``, ``DIR/report.md`` and
``DIR/report.html`` (the same report as one page for a browser) are rebuilt from the run folders
at the end. The sweep itself is ``simeval.eval.sweep``.

Exit codes: 0 every run ran (a lap not completed is a result, not an error); 2 bad input, or an
agent named explicitly that cannot load here; 3 a run failed (its agent raised or exited at any
point of its life, returned NaN, or its worker process died): the other runs still ran, and
summary.csv and report.md list the failure; 130 interrupted (Ctrl-C): the finished runs are kept
and reported, rerunning the same command does the rest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simeval.errors import EXIT_BAD_INPUT, EXIT_INTERRUPTED, run_command
from simeval.eval.run import RunConfig
from simeval.eval.sweep import PER_RUN, SweepConfig, sweep
from simeval.options import add_dataclass_arguments, command_parser, dataclass_from_args

EXIT_RUN_FAILED = 3


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m simeval.sweep", __doc__)
    add_dataclass_arguments(parser, SweepConfig)
    add_dataclass_arguments(parser, RunConfig, exclude=PER_RUN)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Ctrl-C here is a second one, while the report was being written (the first stops the runs)
    return run_command(lambda: _sweep(args), "interrupted: the finished runs are kept; rerun the same command to finish the sweep")


def _sweep(args: argparse.Namespace) -> int:
    config = dataclass_from_args(SweepConfig, args, run=dataclass_from_args(RunConfig, args, exclude=PER_RUN))
    return report_outcome(config, sweep(config, progress=not args.no_progress))


def report_outcome(config: SweepConfig, outcome: dict) -> int:
    """Print what the sweep did, a line per skipped agent and one line for the failures; the exit code."""
    out = Path(config.out)
    failed = outcome["failed"]
    print(
        f"{outcome['total']} runs: {outcome['ran']} ran, {outcome['kept']} kept from before, "
        f"{sum(r['status'] == 'failed' for r in failed)} failed, {len(outcome['unavailable'])} agents unavailable "
        f"({outcome['wall_s']:.1f} s)"
    )
    print(f"summary: {out / 'summary.csv'}\nreport: {out / 'report.md'}, {out / 'report.html'}")
    for name, error in sorted(outcome["unavailable"].items()):
        print(f"skipped agent '{name}': {error}", file=sys.stderr)
    if outcome["interrupted"]:
        print(f"interrupted: {outcome['done']} of {outcome['total']} runs are done and reported in "
              f"{out}; rerun the same command to do the rest", file=sys.stderr)
        return EXIT_INTERRUPTED
    if failed:
        print(f"error: {failures_line(failed)}; summary.csv and report.md say why", file=sys.stderr)
    if outcome["unavailable"] and config.agents.strip() != "all":
        return EXIT_BAD_INPUT
    return EXIT_RUN_FAILED if failed else 0


def failures_line(failed: list[dict]) -> str:
    """``N runs failed (first: RUN: ERROR)``, and the agents whose ``close`` failed."""
    runs = [r for r in failed if r["status"] == "failed"]
    closes = [r for r in failed if r["status"] == "close_failed"]
    parts = []
    if runs:
        first = runs[0]
        parts.append(f"{len(runs)} run{'s' if len(runs) > 1 else ''} failed (first: {Path(first['out']).name}: {first['error']})")
    if closes:
        parts.append("agent " + ", ".join(f"'{r['agent']}' failed {r['error']}" for r in closes))
    return "; ".join(parts)


if __name__ == "__main__":
    raise SystemExit(main())
