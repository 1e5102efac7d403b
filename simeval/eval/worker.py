"""What a sweep's worker does with its runs, whichever backend started it.

A worker (a process of ``simeval.eval.pool``, or a Ray actor of ``simeval.eval.ray_backend``)
keeps the agent it loaded last, so consecutive runs of one agent load it once (``perform``), and
closes it when it retires (``close_cached``). The runs that may share a worker are those of one
``worker_group``. A process worker writes each run folder itself (``execute``); a Ray actor
returns the folder's files and the sweep writes them (``save``), so that the folders land where
the sweep runs, whichever machine drove the lap.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from simeval.env import Termination
from simeval.eval.run import RunConfig, run_files

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
"""Set to 1 in every worker, so J workers use J cores and not J x (cores) threads."""

Files = dict[str, bytes]
"""A run folder's files, by name."""


def single_thread_env() -> dict[str, str]:
    return dict.fromkeys(THREAD_VARS, "1")


def init_worker() -> None:
    """Worker initializer: one thread per worker, set before any backend is imported (torch and
    TensorFlow read these variables when they load; the expert imports neither)."""
    os.environ.update(single_thread_env())


def preload(circuits: tuple[tuple[str, str | None], ...]) -> None:
    """What every worker of a process sweep builds before its first lap, done once in the template
    the workers are forked from (``simeval.eval.forkserver``): the road grid of each
    ``(circuit, scale)`` (the ``GRID_CACHE_SIZE`` first: what a worker keeps). The modules a run
    imports come with this module, which the template imports to unpickle ``execute``; no framework
    is among them (each worker imports its own after the fork)."""
    from simeval.track.loader import load_circuit
    from simeval.track.lookup import GRID_CACHE_SIZE, road_grid

    for name, scale in circuits[:GRID_CACHE_SIZE]:
        road_grid(load_circuit(name, scale))


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


def perform(config: RunConfig, more_facts: dict[str, Any] | None = None) -> tuple[dict[str, Any], Files | None]:
    """Run one combination: what the progress bar and the exit code need, and the run folder's
    files (None when the run has no folder: its agent did not load, or it raised outside the agent).

    Imports agents lazily (here, in the worker): the sweep process itself loads no model.
    """
    from simeval.errors import AgentError

    key = run_key(config)
    try:
        agent = _agent(config.agent, config.trust_model)
    except AgentError as exc:
        return {**key, "status": "unavailable", "error": str(exc)}, None
    try:
        record, metrics, files = run_files(agent, config, more_facts)
    except Exception as exc:  # noqa: BLE001 - one broken run is reported, the others go on
        return {**key, "status": "failed", "error": f"{type(exc).__name__}: {exc}", "termination": "error"}, None
    failed = record.termination in (Termination.AGENT_ERROR, Termination.INVALID_ACTION)
    return {**key, "status": "failed" if failed else "ran", "error": record.error, "termination": str(metrics.termination)}, files


def save(config: RunConfig, result: dict[str, Any], files: Files | None) -> dict[str, Any]:
    """Write the run's folder whole at ``config.out``; the run's result (status 'done' when another
    sweep on the same folder wrote it first, 'failed' when it cannot be written)."""
    from simeval.atomic import write_folder_atomic

    if files is None:
        return result
    try:
        write_folder_atomic(Path(config.out), files)
    except Exception as exc:  # noqa: BLE001 - an unwritable folder fails its run alone
        if Path(config.out).exists():
            return {**run_key(config), "status": "done"}
        return {**run_key(config), "status": "failed", "error": f"{type(exc).__name__}: {exc}", "termination": "error"}
    return result


def execute(config: RunConfig) -> dict[str, Any]:
    """A process worker's task: run one combination and write its folder (nothing when another
    sweep on the same folder has done it)."""
    init_worker()
    if Path(config.out).exists():
        return {**run_key(config), "status": "done"}
    return save(config, *perform(config))


def worker_group(config: RunConfig) -> str | None:
    """The runs that may share a worker: those of agents that import the same framework (a user's
    class: its own), and None for the experts, which import none and so may run on any worker once
    it is done with its own group. A worker drives its agent's runs, closes it, and goes on with the
    next agent of its framework, so it imports torch or TensorFlow once and never holds two agents
    (nor two frameworks) at a time."""
    from simeval.agents.registry import runtime_modules

    modules = runtime_modules(config.agent)
    return config.agent if modules is None else "+".join(modules) or None


def run_key(config: RunConfig) -> dict[str, Any]:
    return {"agent": config.agent, "circuit": config.circuit, "seed": config.seed, "scenario": config.scenario, "out": str(config.out)}


def died(config: RunConfig, reason: str) -> dict[str, Any]:
    """The result of a run whose worker died under it (no folder was written)."""
    return {**run_key(config), "status": "failed", "termination": "worker_died", "error": reason}
