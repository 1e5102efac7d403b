"""Sweeps: every (agent, circuit, scenario, seed) combination of a study, resumable, on workers.

Each (agent, circuit, scenario, seed) is one run of ``simeval.run``, written whole (temp folder +
rename) to ``DIR/runs/<circuit>__<agent>__<seed>/`` (``__<scenario>`` appended unless nominal). The names carry no time stamp, so rerunning the same
command finds the finished runs and does only the missing ones: a sweep killed with ``kill -9``
loses at most the runs that were in flight. ``DIR/summary.csv`` and ``DIR/report.md`` are rebuilt
from the run folders at the end of every sweep.

Backends: ``process`` (default) runs a bounded pool of single-threaded worker processes here;
``ray`` submits the same runs as Ray tasks (``--address`` as ``ray.init`` takes it, else a local
instance with ``--jobs`` CPUs).

"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simeval.env import Termination
from simeval.errors import ConfigError
from simeval.eval.results import safe_name
from simeval.eval.run import RunConfig, run_and_save
from simeval.options import opt

BACKENDS = ("process", "ray")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
"""Set to 1 in every worker, so J workers use J cores and not J x (cores) threads."""
RUNS_DIR = "runs"


PER_RUN = ("agent", "circuit", "seed", "scenario", "out", "contract")
"""The ``RunConfig`` fields a sweep sets for each run itself; the others are shared by every run."""


@dataclass(frozen=True)
class SweepConfig:
    """Every setting of a sweep; the CLI is generated from these fields and ``run``'s shared ones."""

    run: RunConfig = field(default_factory=RunConfig)
    """The settings every run shares (timing, latency, start, time limit, renderer, plot, trust);
    the fields of ``PER_RUN`` are the sweep's to set (a model file's contract is the one beside it)."""
    agents: str = field(default="all", **opt("comma-separated agent names, or all (every registered agent that loads here)"))
    circuits: str = field(default="all", **opt("comma-separated circuit names, or all (the test circuits)"))
    seeds: int = field(default=1, **opt("number of seeds per (agent, circuit, scenario): seeds 0..N-1"))
    scenarios: str = field(default="nominal", **opt("comma-separated robustness scenarios (simeval.sim.scenarios), or all"))
    backend: str = field(default="process", **opt("process: worker processes here; ray: Ray tasks"))
    address: str | None = field(default=None, **opt("Ray address (e.g. auto or ray://host:10001); default: a local Ray instance"))
    jobs: int | None = field(default=None, **opt("parallel runs (one thread each); default: the CPU count"))
    max_tasks_per_child: int = field(
        default=1,
        **opt("runs a worker process does before it is replaced: 1 keeps a long sweep's memory at that of "
              "--jobs runs at a time; more reuses loaded models (faster, about 15%% more memory at 8)"),
    )
    out: Path = field(default=Path("sweep"), **opt("sweep folder: runs/, summary.csv, report.md"))

    def __post_init__(self) -> None:
        if not isinstance(self.run, RunConfig):
            raise ConfigError(f"run must be a RunConfig, got {type(self.run).__name__}")
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

    def run_config(self, agent: str, circuit: str, seed: int, scenario: str = "nominal") -> RunConfig:
        """The ``RunConfig`` of one combination, its folder included."""
        return dataclasses.replace(
            self.run, agent=agent, circuit=circuit, seed=seed, scenario=scenario,
            out=run_dir(self.out, circuit, agent, seed, scenario),
        )


def run_dir(out: Path, circuit: str, agent: str, seed: int, scenario: str = "nominal") -> Path:
    """``out/runs/<circuit>__<agent>__<seed>`` (``__<scenario>`` appended unless nominal):
    deterministic, so a rerun finds it."""
    suffix = "" if scenario == "nominal" else f"__{scenario}"
    return Path(out) / RUNS_DIR / f"{circuit}__{safe_name(agent)}__{seed}{suffix}"


def split_names(text: str, every: Iterable[str], kind: str) -> list[str]:
    """``a,b`` or ``all``; duplicates dropped, order kept."""
    names = list(every) if text.strip() == "all" else [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--{kind}s must name at least one {kind} or be 'all', got '{text}'")
    return list(dict.fromkeys(names))


def resolve_agents(text: str) -> list[str]:
    """Registered names (``all``: every one but the aliases), a model file, or ``package.module:Class``."""
    from simeval.agents.registry import agent_names, is_model_path, registered
    from simeval.errors import UnknownNameError

    names = split_names(text, registered(), "agent")
    for name in names:
        if name not in agent_names() and ":" not in name and not is_model_path(name):
            raise UnknownNameError("agent", name, agent_names())
    return names


def resolve_scenarios(text: str) -> list[str]:
    from simeval.sim.scenarios import get_scenario, scenario_names

    names = split_names(text, scenario_names(), "scenario")
    for name in names:
        get_scenario(name)  # an unknown name fails now with the nearest known one
    return names


def resolve_circuits(text: str) -> list[str]:
    from simeval.track.catalogue import circuit_path, evaluation_circuits

    names = split_names(text, evaluation_circuits(), "circuit")
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


def _agent(name: str, trust_model: bool) -> Any:
    from simeval.agents import load_agent

    if name not in _cached:
        for old in _cached.values():
            old.close()
        _cached.clear()
        _cached[name] = load_agent(name, trust_model=trust_model)
    return _cached[name]


def execute(config: RunConfig) -> dict[str, Any]:
    """Run one combination and write its folder; returns what the progress bar and the exit code need.

    Imports agents lazily (here, in the worker): the sweep process itself loads no model.
    """
    from simeval.errors import AgentError

    init_worker()
    key = {"agent": config.agent, "circuit": config.circuit, "seed": config.seed, "scenario": config.scenario, "out": str(config.out)}
    if Path(config.out).exists():
        return {**key, "status": "done"}
    try:
        agent = _agent(config.agent, config.trust_model)
    except AgentError as exc:
        return {**key, "status": "unavailable", "error": str(exc)}
    try:
        record, metrics = run_and_save(agent, config, Path(config.out))
    except Exception as exc:  # noqa: BLE001 - one broken run is reported, the others go on
        if Path(config.out).exists():  # another sweep on the same folder wrote it first
            return {**key, "status": "done"}
        return {**key, "status": "failed", "error": f"{type(exc).__name__}: {exc}", "termination": "error"}
    failed = record.termination in (Termination.AGENT_ERROR, Termination.INVALID_ACTION)
    return {**key, "status": "failed" if failed else "ran", "error": record.error, "termination": str(metrics.termination)}


# ------------------------------------------------------------------------------------ backends
def run_process_pool(configs: list[RunConfig], jobs: int, max_tasks_per_child: int) -> Iterator[dict[str, Any]]:
    """A bounded pool of spawned workers; each is replaced after ``max_tasks_per_child`` runs, so a
    sweep's memory is that of ``jobs`` workers whatever the number of runs.

    ``multiprocessing.Pool`` and not ``ProcessPoolExecutor``: on Python 3.11 the executor's
    ``max_tasks_per_child`` can hang once workers retire (CPython gh-115634).
    """
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(processes=jobs, initializer=init_worker, maxtasksperchild=max_tasks_per_child) as pool:
        yield from pool.imap_unordered(execute, configs, chunksize=1)


def run_ray(configs: list[RunConfig], jobs: int, address: str | None, max_tasks_per_child: int) -> Iterator[dict[str, Any]]:
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


def plan(config: SweepConfig, agents: list[str], circuits: list[str], scenarios: list[str]) -> list[RunConfig]:
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

    from simeval.eval.report import write_report

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
