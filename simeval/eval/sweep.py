"""Sweeps: every (agent, circuit, scenario, seed) combination of a study, resumable, on workers.

Each (agent, circuit, scenario, seed) is one run of ``simeval.run``, written whole (temp folder +
rename) to ``DIR/runs/<circuit>__<agent>__<seed>/`` (``__<scenario>`` appended unless nominal). The names carry no time stamp, so rerunning the same
command finds the finished runs and does only the missing ones: a sweep killed with ``kill -9``
loses at most the runs that were in flight. ``DIR/summary.csv``, ``DIR/report.md`` and
``DIR/report.html`` are rebuilt from the run folders at the end of every sweep.

Backends: ``process`` (default) runs a bounded pool of single-threaded worker processes here;
``ray`` drives the same runs on Ray actors (``simeval.eval.ray_backend``): a local instance with
``--jobs`` CPUs, or the cluster at ``--address``, whose nodes return each run's folder to this
process, which writes it. Both group runs alike (``worker.worker_group``).

"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simeval.errors import ConfigError
from simeval.eval.ray_backend import check_address, run_ray
from simeval.eval.results import RUNS_DIR, safe_name
from simeval.eval.run import RunConfig
from simeval.eval.worker import close_cached, died, execute, init_worker, preload, single_thread_env, worker_group
from simeval.options import opt
from simeval.track.loader import circuit_label, is_tumftm_file

BACKENDS = ("process", "ray")


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
    backend: str = field(default="process", **opt("process: worker processes here; ray: Ray actors (a local instance, or the cluster at --address)", choices=BACKENDS))
    address: str | None = field(
        default=None,
        **opt("the Ray cluster to run on: HOST:PORT of its head (as ray start --head printed it), auto (the cluster "
              "started on this machine), or ray://HOST:PORT (Ray Client); default: a local Ray instance"),
    )
    jobs: int | None = field(
        default=None,
        **opt("parallel runs (one thread each); default: the CPU count here, or with --address every CPU of the cluster"),
    )
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
        if self.address is not None:
            check_address(self.address)

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


# ------------------------------------------------------------------------------------ backends
def run_process_pool(configs: list[RunConfig], jobs: int, max_tasks_per_child: int | None) -> Iterator[dict[str, Any]]:
    """The runs on ``jobs`` workers (``simeval.eval.pool``), grouped by framework (``worker_group``):
    a worker loads each agent once, drives all of its runs, closes it, takes the next agent of its
    framework and exits when none is left (or after ``max_tasks_per_child`` runs), so a sweep's
    memory is that of ``jobs`` agents whatever the number of runs; a worker that dies fails its
    run alone. Agents whose ``close`` failed come last as results of status 'close_failed'."""
    from simeval.eval.pool import Died, Finished, run_tasks

    circuits = tuple(dict.fromkeys((c.circuit, c.circuit_scale) for c in configs))
    closing: dict[str, str] = {}
    for outcome in run_tasks(configs, execute, jobs=jobs, initializer=init_worker, finish=close_cached,
                             key=worker_group, tasks_per_worker=max_tasks_per_child, env=single_thread_env(),
                             preload=functools.partial(preload, circuits)):
        if isinstance(outcome, Finished):
            yield outcome.value
        elif isinstance(outcome, Died):
            yield died(outcome.task, outcome.reason)
        else:
            closing.update((f["agent"], f["error"]) for f in outcome.value)
    for agent, error in closing.items():
        yield {"agent": agent, "status": "close_failed", "error": error}


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


def unready_agents(agents: list[str]) -> dict[str, str]:
    """The registered agents that cannot drive here and what each lacks (a package, a GPU, a
    build), known without loading them: their runs are reported as such, with no worker started to
    find it out."""
    from simeval.agents.registry import agent_status, registered

    known = set(registered())
    return {agent: why for agent in agents if agent in known and (why := agent_status(agent)) is not None}


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
    pending_agents = [agent for agent in agents if any(run.agent == agent for run in todo)]
    unready = unready_agents(pending_agents) if config.backend == "process" else {}  # a cluster's nodes may differ
    runnable = [run for run in todo if run.agent not in unready]
    results, interrupted = _drive(config, runnable, total - (len(todo) - len(runnable)), progress)
    planned = {str(run.out): run for run in todo}
    for result in results:
        if result["status"] == "failed" and not Path(result["out"]).exists():
            record_failure(out, planned[result["out"]], result)
    remove_resolved(out)
    unavailable = {**unready, **{r["agent"]: r["error"] for r in results if r["status"] == "unavailable"}}
    write_report(out, agents=agents, circuits=circuits, scenarios=scenarios, unavailable=unavailable, plots=not interrupted,
                 jobs=config.jobs or os.cpu_count() or 1)
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
    Ctrl-C cut the sweep short). Once only the last runs are left to finish, the report's imports
    are done beside them (``report.warm_up``)."""
    from tqdm import tqdm

    from simeval.eval.report import warm_up

    class Bar(tqdm):
        monitor_interval = 0  # no monitor thread: the report forks its figure processes from a single thread

    results: list[dict[str, Any]] = []
    if not todo:
        return results, False
    jobs = config.jobs or os.cpu_count() or 1
    warming: threading.Thread | None = None
    runner = (
        run_ray(todo, config.jobs, config.address, config.max_tasks_per_child)
        if config.backend == "ray"
        else run_process_pool(todo, min(jobs, len(todo)), config.max_tasks_per_child)
    )
    bar = Bar(total=total, initial=total - len(todo), desc="sweep", unit="run", file=sys.stderr, disable=not progress)
    try:
        for result in runner:
            results.append(result)
            if result["status"] != "close_failed":
                bar.set_postfix_str(f"{result['circuit']}/{result['scenario']}/{result['agent']}/{result['seed']}: "
                                    f"{result.get('termination') or result['status']}")
                bar.update(1)
            if warming is None and len(todo) - len(results) <= jobs:
                warming = threading.Thread(target=warm_up, name="simeval-report-warm-up", daemon=True)
                warming.start()
    except KeyboardInterrupt:
        return results, True
    finally:
        runner.close()  # stops the workers still running, whatever ended the loop
        bar.close()
    if warming is not None:
        warming.join()
    return results, False
