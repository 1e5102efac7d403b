"""A sweep's workers are forked from a template that did their imports and road grids once
(``simeval.eval.forkserver``); the pool goes on if the template dies, and starts workers itself
where forking is not safe. Real processes, real circuits: the tasks report what their process saw."""

from __future__ import annotations

import functools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simeval.eval import pool
from simeval.eval.forkserver import Template
from simeval.eval.pool import Finished, run_tasks
from simeval.eval.worker import preload, single_thread_env

SIMPLE = (("simple", None),)


def facts(task: int) -> dict:
    """What a worker's process looks like from inside."""
    from simeval.track import lookup

    parent = Path(f"/proc/{os.getppid()}/status").read_text()
    return {
        "pid": os.getpid(), "parent": os.getppid(), "grids": len(lookup._grids),
        "parent_threads": int(next(line.split()[1] for line in parent.splitlines() if line.startswith("Threads:"))),
        "frameworks": sorted({"torch", "tensorflow"} & set(sys.modules)), "omp": os.environ.get("OMP_NUM_THREADS"),
    }


def kill_the_template_once(task: int) -> int:
    """The first task kills the template it was forked from (the others just answer)."""
    if task == 0:
        os.kill(os.getppid(), signal.SIGKILL)
    return os.getppid()


def nothing() -> None:
    pass


def outcomes(tasks: list[int], work, **options) -> list:
    """Every task on two workers, one task per worker (each task is a key of its own)."""
    return list(run_tasks(tasks, work, jobs=2, initializer=nothing, finish=nothing, tasks_per_worker=1, **options))


@pytest.mark.skipif(not pool.FORK_SAFE, reason="workers are forked on Linux only")
def test_workers_are_forked_from_one_single_threaded_template_with_their_grids_built() -> None:
    results = [o.value for o in outcomes(list(range(4)), facts, env=single_thread_env(),
                                         preload=functools.partial(preload, SIMPLE)) if isinstance(o, Finished)]
    assert len(results) == 4 and len({r["pid"] for r in results}) == 4, "a worker per task"
    assert len({r["parent"] for r in results}) == 1 and results[0]["parent"] != os.getpid(), "all forked by one template"
    assert all(r["grids"] == 1 for r in results), "the road grid of the sweep's circuit was built before the fork"
    assert all(r["parent_threads"] == 1 for r in results), "the template forks from a single thread"
    assert all(r["frameworks"] == [] and r["omp"] == "1" for r in results), "no framework before the fork; workers' env set"


def test_without_fork_each_worker_is_started_by_the_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool, "FORK_SAFE", False)
    results = [o.value for o in outcomes(list(range(3)), facts, env=single_thread_env()) if isinstance(o, Finished)]
    assert len(results) == 3 and {r["parent"] for r in results} == {os.getpid()}
    assert all(r["grids"] == 0 and r["omp"] == "1" for r in results)


@pytest.mark.skipif(not pool.FORK_SAFE, reason="workers are forked on Linux only")
def test_the_pool_goes_on_when_the_template_dies() -> None:
    finished = [o for o in outcomes(list(range(5)), kill_the_template_once) if isinstance(o, Finished)]
    assert sorted(o.task for o in finished) == list(range(5)), "every task answered"
    parents = [o.value for o in finished]
    assert parents.count(os.getpid()) >= 3, "the workers after the template's death are started by the pool itself"



def obey(fd: int) -> None:
    """A worker that exits with code 7 when told "e", else sleeps."""
    if socket.socket(fileno=fd).recv(1) == b"e":
        sys.exit(7)
    time.sleep(60)


@pytest.mark.skipif(not pool.FORK_SAFE, reason="workers are forked on Linux only")
def test_a_forked_worker_s_end_is_told_as_subprocess_tells_it() -> None:
    """Its exit code, the signal that killed it (negative), poll that does not wait, wait with a
    time-out, as for a worker started with python -c."""
    template = Template.start(obey, nothing)
    lines = [socket.socketpair() for _ in range(2)]
    try:
        exiting, sleeping = (template.fork(theirs.fileno()) for _, theirs in lines)
        lines[0][0].send(b"e")
        lines[1][0].send(b"s")
        assert exiting.wait(10) == 7 and exiting.poll() == 7
        assert sleeping.poll() is None
        with pytest.raises(subprocess.TimeoutExpired):
            sleeping.wait(0.2)
        sleeping.kill()
        assert sleeping.wait(10) == -signal.SIGKILL
    finally:
        template.close()
        for line in lines:
            for end in line:
                end.close()
