"""``python -m simeval.sweep --agents all --circuits all --seeds 3 --out DIR``: run every combination.

Each (agent, circuit, scenario, seed) is one run of ``simeval.run``, written whole (temp folder +
rename) to ``DIR/runs/<circuit>__<agent>__<seed>/`` (``__<scenario>`` appended unless nominal). The names carry no time stamp, so rerunning the same
command finds the finished runs and does only the missing ones: a sweep killed with ``kill -9``
loses at most the runs that were in flight. ``DIR/summary.csv`` and ``DIR/report.md`` are rebuilt
from the run folders at the end of every sweep.

Backends: ``process`` (default) runs a bounded pool of single-threaded worker processes here;
``ray`` submits the same runs as Ray tasks (``--address`` as ``ray.init`` takes it, else a local
instance with ``--jobs`` CPUs).

Exit codes: 0 every run ran (a lap not completed is a result, not an error); 2 bad input, or an
agent named explicitly that cannot load here; 3 a run failed (the agent raised mid-lap).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simeval.cli import opt
from simeval.errors import ConfigError, SimevalError

EXIT_BAD_INPUT = 2
EXIT_RUN_FAILED = 3
BACKENDS = ("process", "ray")
TEST_CIRCUITS = ("simple", "montreal", "montmelo")
"""What ``--circuits all`` means: the three test circuits of the published study."""
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
"""Set to 1 in every worker, so J workers use J cores and not J x (cores) threads."""
RUNS_DIR = "runs"


@dataclass(frozen=True)
class SweepConfig:
    """Every setting of a sweep; the CLI is generated from these fields."""

    agents: str = field(default="all", **opt("comma-separated agent names, or all (every registered agent that loads here)"))
    circuits: str = field(default="all", **opt("comma-separated circuit names, or all (simple, montreal, montmelo)"))
    seeds: int = field(default=1, **opt("number of seeds per (agent, circuit, scenario): seeds 0..N-1"))
    scenarios: str = field(default="nominal", **opt("comma-separated robustness scenarios (simeval.scenarios), or all"))
    timing: str = field(default="lockstep", **opt("lockstep or latency (see python -m simeval.run --help)"))
    latency_ms: float | None = field(default=None, **opt("fixed latency in ms for --timing latency"))
    latency_scale: float = field(default=1.0, **opt("multiplier of the measured latency for --timing latency"))
    start: str = field(default="spawn", **opt("spawn, or random: a seeded random point of the lap"))
    max_time_s: float | None = field(default=None, **opt("simulated time limit per run; default 2x the reference lap time"))
    backend: str = field(default="process", **opt("process: worker processes here; ray: Ray tasks"))
    address: str | None = field(default=None, **opt("Ray address (e.g. auto or ray://host:10001); default: a local Ray instance"))
    jobs: int | None = field(default=None, **opt("parallel runs (one thread each); default: the CPU count"))
    max_tasks_per_child: int = field(
        default=1,
        **opt("runs a worker process does before it is replaced: 1 keeps a long sweep's memory at that of "
              "--jobs runs at a time; more reuses loaded models (faster, about 15%% more memory at 8)"),
    )
    out: Path = field(default=Path("sweep"), **opt("sweep folder: runs/, summary.csv, report.md"))
    plot: bool = field(default=True, **opt("write trajectory.png in every run folder"))

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {BACKENDS}, got '{self.backend}'")
        if self.seeds < 1:
            raise ConfigError(f"seeds must be >= 1, got {self.seeds}")
        if self.jobs is not None and self.jobs < 1:
            raise ConfigError(f"jobs must be >= 1, got {self.jobs}")
        if self.max_tasks_per_child < 1:
            raise ConfigError(f"max_tasks_per_child must be >= 1, got {self.max_tasks_per_child}")
        if self.address is not None and self.backend != "ray":
            raise ConfigError("--address needs --backend ray")
        self.run_config("expert", "simple", 0)  # the run settings are checked once, before any run

    def run_config(self, agent: str, circuit: str, seed: int, scenario: str = "nominal") -> Any:
        """The ``RunConfig`` of one combination, its folder included."""
        from simeval.runner import RunConfig

        return RunConfig(
            agent=agent, circuit=circuit, seed=seed, timing=self.timing, latency_ms=self.latency_ms,
            latency_scale=self.latency_scale, start=self.start, max_time_s=self.max_time_s,
            out=run_dir(self.out, circuit, agent, seed, scenario), plot=self.plot, scenario=scenario,
        )


def run_dir(out: Path, circuit: str, agent: str, seed: int, scenario: str = "nominal") -> Path:
    """``out/runs/<circuit>__<agent>__<seed>`` (``__<scenario>`` appended unless nominal):
    deterministic, so a rerun finds it."""
    safe_agent = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in agent)
    suffix = "" if scenario == "nominal" else f"__{scenario}"
    return Path(out) / RUNS_DIR / f"{circuit}__{safe_agent}__{seed}{suffix}"


def split_names(text: str, every: Iterable[str], kind: str) -> list[str]:
    """``a,b`` or ``all``; duplicates dropped, order kept."""
    names = list(every) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--{kind}s must name at least one {kind} or be 'all', got '{text}'")
    return list(dict.fromkeys(names))


def resolve_agents(text: str) -> list[str]:
    """Registered names (``all``: every one but the aliases), a model file, or ``package.module:Class``."""
    from simeval.agents.registry import AGENTS, MODEL_FILES, agent_names
    from simeval.errors import UnknownNameError

    names = split_names(text, AGENTS, "agent")
    for name in names:
        if name not in agent_names() and ":" not in name and Path(name).suffix not in MODEL_FILES:
            raise UnknownNameError("agent", name, agent_names())
    return names


def resolve_scenarios(text: str) -> list[str]:
    from simeval.scenarios import get_scenario, scenario_names

    names = split_names(text, scenario_names(), "scenario")
    for name in names:
        get_scenario(name)  # an unknown name fails now with the nearest known one
    return names


def resolve_circuits(text: str) -> list[str]:
    from simeval.circuits import circuit_path

    names = split_names(text, TEST_CIRCUITS, "circuit")
    for name in names:
        circuit_path(name)  # an unknown name fails now with the nearest known one
    return names


# ------------------------------------------------------------------------------------ workers
def single_thread_env() -> dict[str, str]:
    return dict.fromkeys(THREAD_VARS, "1")


def init_worker() -> None:
    """Pool initializer: one thread per worker (before any backend is imported)."""
    os.environ.update(single_thread_env())
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


_cached: dict[str, Any] = {}
"""The agent this worker loaded last: consecutive runs of one agent load it once."""


def _agent(name: str) -> Any:
    from simeval.agents import load_agent

    if name not in _cached:
        for old in _cached.values():
            old.close()
        _cached.clear()
        _cached[name] = load_agent(name)
    return _cached[name]


def execute(config: Any) -> dict[str, Any]:
    """Run one combination and write its folder; returns what the progress bar and the exit code need.

    Imports agents lazily (here, in the worker): the sweep process itself loads no model.
    """
    from simeval.errors import AgentError

    init_worker()
    key = {"agent": config.agent, "circuit": config.circuit, "seed": config.seed, "scenario": config.scenario, "out": str(config.out)}
    if Path(config.out).exists():
        return {**key, "status": "done"}
    try:
        agent = _agent(config.agent)
    except AgentError as exc:
        return {**key, "status": "unavailable", "error": str(exc)}
    try:
        record, metrics = _drive(agent, config)
    except Exception as exc:  # noqa: BLE001 - one broken run is reported, the others go on
        if Path(config.out).exists():  # another sweep on the same folder wrote it first
            return {**key, "status": "done"}
        return {**key, "status": "failed", "error": f"{type(exc).__name__}: {exc}", "termination": "error"}
    status = "failed" if record.termination in ("agent_error", "invalid_action") else "ran"
    return {**key, "status": status, "error": record.error, "termination": metrics["termination"]}


def _drive(agent: Any, config: Any) -> tuple[Any, dict[str, Any]]:
    from simeval.runner import run_and_save

    return run_and_save(agent, config, Path(config.out))


# ------------------------------------------------------------------------------------ backends
def run_process_pool(configs: list[Any], jobs: int, max_tasks_per_child: int) -> Iterator[dict[str, Any]]:
    """A bounded pool of spawned workers; each is replaced after ``max_tasks_per_child`` runs, so a
    sweep's memory is that of ``jobs`` workers whatever the number of runs.

    ``multiprocessing.Pool`` and not ``ProcessPoolExecutor``: on Python 3.11 the executor's
    ``max_tasks_per_child`` can hang once workers retire (CPython gh-115634).
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(processes=jobs, initializer=init_worker, maxtasksperchild=max_tasks_per_child) as pool:
        yield from pool.imap_unordered(execute, configs, chunksize=1)


def run_ray(configs: list[Any], jobs: int, address: str | None, max_tasks_per_child: int) -> Iterator[dict[str, Any]]:
    """The same runs as Ray tasks, one CPU each; a local instance with ``jobs`` CPUs unless ``address``.
    A Ray worker is replaced after ``max_tasks_per_child`` runs (``max_calls``), as in the pool."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray: pip install 'simeval[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"runtime_env": {"env_vars": single_thread_env()}, "log_to_driver": False}
        if address is None:
            kwargs.update(num_cpus=jobs, include_dashboard=False)
        ray.init(address=address, **kwargs)
    try:
        remote = ray.remote(num_cpus=1, max_retries=0, max_calls=max_tasks_per_child)(execute)
        pending = [remote.remote(c) for c in configs]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            yield ray.get(ready[0])
    finally:
        if started_here:
            ray.shutdown()


# ------------------------------------------------------------------------------------ the sweep
def clean_partials(runs: Path) -> list[Path]:
    """Remove the temporary folders of runs that were in flight when a sweep was killed."""
    removed = sorted(runs.glob(".*.partial")) if runs.is_dir() else []
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def plan(config: SweepConfig, agents: list[str], circuits: list[str], scenarios: list[str]) -> list[Any]:
    """Every combination not done yet, agent-major so a worker reuses the agent it loaded."""
    todo = []
    for agent in agents:
        for circuit in circuits:
            for scenario in scenarios:
                for seed in range(config.seeds):
                    run = config.run_config(agent, circuit, seed, scenario)
                    if not Path(run.out).exists():
                        todo.append(run)
    return todo


def sweep(config: SweepConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run what is missing, then rebuild summary.csv and report.md from every run folder."""
    from tqdm import tqdm

    from simeval.report import write_report

    agents, circuits = resolve_agents(config.agents), resolve_circuits(config.circuits)
    scenarios = resolve_scenarios(config.scenarios)
    clean_partials(Path(config.out) / RUNS_DIR)
    todo = plan(config, agents, circuits, scenarios)
    total = len(agents) * len(circuits) * len(scenarios) * config.seeds
    results: list[dict[str, Any]] = []
    started = time.perf_counter()
    if todo:
        jobs = config.jobs or os.cpu_count() or 1
        runner = (
            run_ray(todo, jobs, config.address, config.max_tasks_per_child)
            if config.backend == "ray"
            else run_process_pool(todo, min(jobs, len(todo)), config.max_tasks_per_child)
        )
        bar = tqdm(total=total, initial=total - len(todo), desc="sweep", unit="run", file=sys.stderr, disable=not progress)
        for result in runner:
            results.append(result)
            bar.set_postfix_str(f"{result['circuit']}/{result['scenario']}/{result['agent']}/{result['seed']}: {result.get('termination') or result['status']}")
            bar.update(1)
        bar.close()
    unavailable = {r["agent"]: r["error"] for r in results if r["status"] == "unavailable"}
    write_report(Path(config.out), agents=agents, circuits=circuits, scenarios=scenarios, unavailable=unavailable)
    return {
        "total": total,
        "ran": sum(r["status"] == "ran" for r in results),
        "failed": [r for r in results if r["status"] == "failed"],
        "kept": total - len(todo),
        "unavailable": unavailable,
        "wall_s": time.perf_counter() - started,
    }


def build_parser() -> argparse.ArgumentParser:
    from simeval.cli import add_dataclass_arguments

    parser = argparse.ArgumentParser(prog="python -m simeval.sweep", description=__doc__.splitlines()[0])
    add_dataclass_arguments(parser, SweepConfig)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = SweepConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(SweepConfig)})
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
