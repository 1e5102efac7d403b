"""``python -m simeval.run --agent expert --circuit montreal``: drive one lap and write its results.

Exit codes: 0 the lap ran (whether or not it was completed: that is a result, not an error);
2 bad input (unknown name, bad circuit file, unwritable folder, agent that cannot load);
3 the agent failed at any point of its life (its constructor, reset, act or close raised or called
sys.exit, or it returned NaN/inf): the results are still written; 130 interrupted (Ctrl-C):
nothing is written.
"""

from __future__ import annotations

import argparse
import sys

from simeval.agents.base import close_agent
from simeval.atomic import clean_stale, ensure_writable
from simeval.errors import ResultsError, run_command
from simeval.options import add_dataclass_arguments, command_parser, dataclass_from_args

EXIT_AGENT_FAILED = 3


def build_parser() -> argparse.ArgumentParser:
    """The CLI, generated from ``RunConfig`` so that flags and config never disagree."""
    from simeval.eval.run import RunConfig

    parser = command_parser("python -m simeval.run", __doc__)
    add_dataclass_arguments(parser, RunConfig)
    parser.add_argument("--list-agents", action="store_true",
                        help="print every registered agent, 'ready' or what it lacks here (a package, a GPU, a build), and exit")
    return parser


def format_metrics(metrics: dict[str, object]) -> str:
    """A two-column table of the metrics, numbers rounded for reading (metrics.json has them all)."""
    width = max(len(k) for k in metrics)
    lines = []
    for key, value in metrics.items():
        shown = f"{value:.4g}" if isinstance(value, float) else ("-" if value is None else str(value))
        lines.append(f"  {key:<{width}}  {shown}")
    return "\n".join(lines)


def list_agents() -> str:
    """A line per registered agent: its name, then 'ready' or what it lacks here."""
    from simeval.agents.registry import ALIASES, agent_status, registered

    names = registered()
    width = max(len(n) for n in names)
    lines = [f"{name:<{width}}  {agent_status(name) or 'ready'}" for name in names]
    lines += [f"{alias:<{width}}  = {target}" for alias, target in sorted(ALIASES.items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_agents:
        print(list_agents())
        return 0
    return run_command(lambda: _run(args), "interrupted: the lap was not finished and nothing was written")


def _run(args: argparse.Namespace) -> int:
    from simeval.agents import load_agent
    from simeval.env import Termination
    from simeval.eval.results import default_run_dir
    from simeval.eval.run import RunConfig, run_and_save
    from simeval.track.loader import check_scale_applies

    config = dataclass_from_args(RunConfig, args)
    out = config.out or default_run_dir(config.circuit, config.agent, config.seed)
    check_scale_applies([config.circuit], config.circuit_scale)
    ensure_writable(out)
    if out.exists():
        raise ResultsError(f"{out} already exists; choose another --out folder or remove it")
    clean_stale(out.parent)  # what runs killed mid-write left there (never a live run's)
    agent = load_agent(config.agent, contract=config.contract, trust_model=config.trust_model)
    try:
        record, metrics = run_and_save(agent, config, out)
    finally:
        closed = close_agent(agent)
    print(f"{config.agent} on {config.circuit} (seed {config.seed}, {config.timing}):")
    print(format_metrics({k: v for k, v in metrics.as_dict().items() if k != "error"}))  # the error gets its own line
    print(f"results: {out}")
    if config.video:
        from simeval.eval.results import VIDEO_FILE

        video = out / VIDEO_FILE
        print(f"video: {video}" if video.is_file() else "video: none (the lap has no step to show)")
    if record.termination in (Termination.AGENT_ERROR, Termination.INVALID_ACTION):
        print(
            f"error: agent '{config.agent}' failed at t={record.sim_time_s:.2f} s on {config.circuit}: {record.error}; "
            f"the partial lap is in {out}",
            file=sys.stderr,
        )
        return EXIT_AGENT_FAILED
    if closed is not None:
        print(f"error: agent '{config.agent}' failed after the lap, in close(): {closed}; the lap is in {out}", file=sys.stderr)
        return EXIT_AGENT_FAILED
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
