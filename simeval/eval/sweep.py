"""Sweeps: every (agent, circuit, scenario, seed) combination of a study, resumable, on workers.

Each (agent, circuit, scenario, seed) is one run of ``simeval.run``, written whole (temp folder +
rename) to ``DIR/runs/<circuit>__<agent>__<seed>/`` (``__<scenario>`` appended unless nominal). The names carry no time stamp, so rerunning the same
command finds the finished runs and does only the missing ones: a sweep killed with ``kill -9``
loses at most the runs that were in flight. ``DIR/summary.csv``, ``DIR/report.md`` and
``DIR/report.html`` are rebuilt from the run folders at the end of every sweep.

Backends: ``process`` (default) runs a bounded pool of single-threaded worker processes here;
``ray`` submits the same runs as Ray tasks (``--address`` as ``ray.init`` takes it, else a local
instance with ``--jobs`` CPUs).

"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simeval.env import Termination
from simeval.errors import ConfigError, first_line
from simeval.eval.results import RUNS_DIR, safe_name
from simeval.eval.run import RunConfig, run_and_save
from simeval.options import opt
from simeval.track.loader import circuit_label, is_tumftm_file

BACKENDS = ("process", "ray")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
"""Set to 1 in every worker, so J workers use J cores and not J x (cores) threads."""


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
    backend: str = field(default="process", **opt("process: worker processes here; ray: Ray tasks", choices=BACKENDS))
    address: str | None = field(default=None, **opt("Ray address (e.g. auto or ray://host:10001); default: a local Ray instance"))
    jobs: int | None = field(default=None, **opt("parallel runs (one thread each); default: the CPU count"))
    max_tasks_per_child: int | None = field(
        default=None,
        **opt("runs a worker does before it is replaced; default: all the runs of its framework's agents (a "
              "worker loads each agent once and drives all of its laps, one agent at a time)"),
    )
    out: Path = field(default=Path("sweep"), **opt("sweep folder: runs/, summary.csv, report.md, report.html"))

    def __post_init__(self) -> None:
        if not isinstance(self.run, RunConfig):
            raise ConfigError(f"run must be a RunConfig, got {type(self.run).__name__}")
        if self.backend not in BACKENDS:
            raise ConfigError(f"backend must be one of {BACKENDS}, got '{self.backend}'")
        if self.seeds < 1:
            raise ConfigError(f"seeds must be >= 1, got {self.seeds}")
        if self.jobs is not None and self.jobs < 1:
            raise ConfigError(f"jobs must be >= 1, got {self.jobs}")
        if self.max_tasks_per_child is not None and self.max_tasks_per_child < 1:
            raise ConfigError(f"max_tasks_per_child must be >= 1, got {self.max_tasks_per_child}")
        if self.address is not None and self.backend != "ray":
            raise ConfigError("--address needs --backend ray")

    def run_config(self, agent: str, circuit: str, seed: int, scenario: str = "nominal") -> RunConfig:
        """The ``RunConfig`` of one combination, its folder included."""
        return dataclasses.replace(
            self.run, agent=agent, circuit=circuit, seed=seed, scenario=scenario,
            out=run_dir(self.out, circuit, agent, seed, scenario),
            circuit_scale=self.run.circuit_scale if is_tumftm_file(circuit) else None,  # the others carry their own
        )


def run_dir(out: Path, circuit: str, agent: str, seed: int, scenario: str = "nominal") -> Path:
    """``out/runs/<circuit>__<agent>__<seed>`` (``__<scenario>`` appended unless nominal):
    deterministic, so a rerun finds it."""
    suffix = "" if scenario == "nominal" else f"__{scenario}"
    return Path(out) / RUNS_DIR / f"{safe_name(circuit_label(circuit))}__{safe_name(agent)}__{seed}{suffix}"


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


def resolve_circuits(text: str, scale: str | None = None) -> list[str]:
    """Catalogue names (``all``: the test circuits) or circuit files, each checked now: an unknown
    name suggests the nearest known one (a name lookup), a bad file says what is wrong (it is
    read: a file is checked nowhere else before the runs), before any run."""
    from simeval.track.catalogue import circuit_path, evaluation_circuits
    from simeval.track.loader import check_scale_applies, is_circuit_file, load_circuit

    names = split_names(text, evaluation_circuits(), "circuit")
    check_scale_applies(names, scale)
    labels: dict[str, str] = {}
    for name in names:
        if is_circuit_file(name):
            load_circuit(name, scale)
        else:
            circuit_path(name)
        if labels.setdefault(circuit_label(name), name) != name:
            raise ConfigError(f"circuits '{labels[circuit_label(name)]}' and '{name}' would share run folders; rename one file")
    return names


# ------------------------------------------------------------------------------------ workers
def single_thread_env() -> dict[str, str]:
    return dict.fromkeys(THREAD_VARS, "1")


def init_worker() -> None:
    """Worker initializer: one thread per worker, set before any backend is imported (torch and
    TensorFlow read these variables when they load; the expert imports neither)."""
    os.environ.update(single_thread_env())


_cached: dict[str, Any] = {}
"""The agent this worker loaded last: consecutive runs of one agent load it once."""


def _agent(name: str, trust_model: bool) -> Any:
    from simeval.agents import load_agent

    if name not in _cached:
        close_cached()  # failures there were the previous agent's: reported when the worker retires
        _cached[name] = load_agent(name, trust_model=trust_model)
    return _cached[name]


_close_failures: list[dict[str, str]] = []


def close_cached() -> list[dict[str, str]]:
    """Close the agent this worker holds; every ``close`` that failed so far, as {agent, error}
    (a worker's last words: its runs are recorded by then)."""
    from simeval.agents.base import close_agent

    for name, agent in _cached.items():
        error = close_agent(agent)
        if error is not None:
            _close_failures.append({"agent": name, "error": f"in close(): {error}"})
    _cached.clear()
    return list(_close_failures)


def execute(config: RunConfig) -> dict[str, Any]:
    """Run one combination and write its folder; returns what the progress bar and the exit code need.

    Imports agents lazily (here, in the worker): the sweep process itself loads no model.
    """
    from simeval.errors import AgentError

    init_worker()
    key = run_key(config)
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


def worker_group(config: RunConfig) -> str:
    """The runs that may share a worker: those of agents that import the same framework (the
    experts: none; a user's class: its own). A worker drives its agent's runs, closes it, and goes on
    with the next agent of its framework, so it imports torch or TensorFlow once and never holds
    two agents (nor two frameworks) at a time."""
    from simeval.agents.registry import runtime_modules

    modules = runtime_modules(config.agent)
    return config.agent if modules is None else "+".join(modules) or "numpy"


def run_key(config: RunConfig) -> dict[str, Any]:
    return {"agent": config.agent, "circuit": config.circuit, "seed": config.seed, "scenario": config.scenario, "out": str(config.out)}


def died(config: RunConfig, reason: str) -> dict[str, Any]:
    """The result of a run whose worker died under it (no folder was written)."""
    return {**run_key(config), "status": "failed", "termination": "worker_died", "error": reason}


# ------------------------------------------------------------------------------------ backends
def run_process_pool(configs: list[RunConfig], jobs: int, max_tasks_per_child: int | None) -> Iterator[dict[str, Any]]:
    """The runs on ``jobs`` workers (``simeval.eval.pool``), grouped by framework (``worker_group``):
    a worker loads each agent once, drives all of its runs, closes it, takes the next agent of its
    framework and exits when none is left (or after ``max_tasks_per_child`` runs), so a sweep's
    memory is that of ``jobs`` agents whatever the number of runs; a worker that dies fails its
    run alone. Agents whose ``close`` failed come last as results of status 'close_failed'."""
    from simeval.eval.pool import Died, Finished, run_tasks

    closing: dict[str, str] = {}
    for outcome in run_tasks(configs, execute, jobs=jobs, initializer=init_worker, finish=close_cached,
                             key=worker_group, tasks_per_worker=max_tasks_per_child):
        if isinstance(outcome, Finished):
            yield outcome.value
        elif isinstance(outcome, Died):
            yield died(outcome.task, outcome.reason)
        else:
            closing.update((f["agent"], f["error"]) for f in outcome.value)
    for agent, error in closing.items():
        yield {"agent": agent, "status": "close_failed", "error": error}


def run_ray(configs: list[RunConfig], jobs: int, address: str | None, max_tasks_per_child: int | None) -> Iterator[dict[str, Any]]:
    """The same runs as Ray tasks, one CPU each; a local instance with ``jobs`` CPUs unless ``address``.
    A Ray worker is replaced after ``max_tasks_per_child`` runs (``max_calls``; default never), and
    keeps the last agent it loaded for the next run of that agent; a
    task whose worker dies is a failed run."""
    try:
        import ray
        from ray.exceptions import RayError
    except ImportError:
        raise ConfigError("--backend ray needs Ray: pip install 'simeval[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        kwargs: dict[str, Any] = {"runtime_env": {"env_vars": single_thread_env()}, "log_to_driver": False}
        if address is None:
            kwargs.update(num_cpus=jobs, include_dashboard=False)
        ray.init(address=address, **kwargs)
    try:
        remote = ray.remote(num_cpus=1, max_retries=0, max_calls=max_tasks_per_child or 0)(execute)
        pending = {remote.remote(c): c for c in configs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            config = pending.pop(ready[0])
            try:
                yield ray.get(ready[0])
            except RayError as exc:
                yield died(config, f"the Ray worker failed: {first_line(exc)}")
    finally:
        if started_here:
            ray.shutdown()


# ------------------------------------------------------------------------------------ the sweep
START_UP_ORDER = ("tensorflow", "torch")
"""Frameworks by how long a worker takes to import them and load a model (TensorFlow ~9 s, torch
~1.5 s, the others well under a second): their runs go first, so that start-up overlaps the other
workers' laps instead of ending the sweep on one busy core."""


def start_up_rank(agent: str) -> int:
    """Where ``agent``'s runs go in the plan: heaviest framework first (``START_UP_ORDER``)."""
    from simeval.agents.registry import runtime_modules

    modules = runtime_modules(agent) or ()
    return next((i for i, name in enumerate(START_UP_ORDER) if name in modules), len(START_UP_ORDER))


def plan(config: SweepConfig, agents: list[str], circuits: list[str], scenarios: list[str]) -> list[RunConfig]:
    """Every combination not done yet, agent-major so a worker reuses the agent it loaded, the
    agents of slow-starting frameworks first (the order of runs changes no result)."""
    todo = []
    for agent in sorted(agents, key=start_up_rank):
        for circuit in circuits:
            for scenario in scenarios:
                for seed in range(config.seeds):
                    run = config.run_config(agent, circuit, seed, scenario)
                    if not Path(run.out).exists():
                        todo.append(run)
    return todo


def sweep(config: SweepConfig, *, progress: bool = True) -> dict[str, Any]:
    """Run what is missing, then rebuild summary.csv and report.md from every run folder.

    Ctrl-C stops the runs in flight (their folders are never half-written) and still writes the
    summary and report of the finished runs; the outcome says ``interrupted``, and rerunning the
    same sweep does the rest.
    """
    from simeval.atomic import clean_stale, ensure_writable
    from simeval.eval.failures import record_failure, remove_resolved
    from simeval.eval.report import write_report

    agents, circuits = resolve_agents(config.agents), resolve_circuits(config.circuits, config.run.circuit_scale)
    scenarios = resolve_scenarios(config.scenarios)
    out = Path(config.out)
    ensure_writable(out)
    clean_stale(out / RUNS_DIR, legacy=True)  # runs/ is simeval's alone
    clean_stale(out)
    todo = plan(config, agents, circuits, scenarios)
    total = len(agents) * len(circuits) * len(scenarios) * config.seeds
    started = time.perf_counter()
    results, interrupted = _drive(config, todo, total, progress)
    planned = {str(run.out): run for run in todo}
    for result in results:
        if result["status"] == "failed" and not Path(result["out"]).exists():
            record_failure(out, planned[result["out"]], result)
    remove_resolved(out)
    unavailable = {r["agent"]: r["error"] for r in results if r["status"] == "unavailable"}
    write_report(out, agents=agents, circuits=circuits, scenarios=scenarios, unavailable=unavailable, plots=not interrupted)
    return {
        "total": total,
        "ran": sum(r["status"] == "ran" for r in results),
        "failed": [r for r in results if r["status"] in ("failed", "close_failed")],
        "kept": total - len(todo),
        "done": total - len(todo) + sum(Path(run.out).exists() for run in todo),
        "unavailable": unavailable,
        "interrupted": interrupted,
        "wall_s": time.perf_counter() - started,
    }


def _drive(config: SweepConfig, todo: list[RunConfig], total: int, progress: bool) -> tuple[list[dict[str, Any]], bool]:
    """Run ``todo`` on the configured backend with a progress bar: (each run's result, whether
    Ctrl-C cut the sweep short)."""
    from tqdm import tqdm

    results: list[dict[str, Any]] = []
    if not todo:
        return results, False
    jobs = config.jobs or os.cpu_count() or 1
    runner = (
        run_ray(todo, jobs, config.address, config.max_tasks_per_child)
        if config.backend == "ray"
        else run_process_pool(todo, min(jobs, len(todo)), config.max_tasks_per_child)
    )
    bar = tqdm(total=total, initial=total - len(todo), desc="sweep", unit="run", file=sys.stderr, disable=not progress)
    try:
        for result in runner:
            results.append(result)
            if result["status"] != "close_failed":
                bar.set_postfix_str(f"{result['circuit']}/{result['scenario']}/{result['agent']}/{result['seed']}: "
                                    f"{result.get('termination') or result['status']}")
                bar.update(1)
    except KeyboardInterrupt:
        return results, True
    finally:
        runner.close()  # stops the workers still running, whatever ended the loop
        bar.close()
    return results, False
