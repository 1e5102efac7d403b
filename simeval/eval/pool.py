"""Worker processes that outlive their runs' failures: a sweep's ``process`` backend.

A bounded set of worker processes, each sent one task at a time over its own socket, so that:

- a worker that dies in a task (segfault, out of memory, ``os._exit``) fails that task alone: the
  parent sees the socket close without an answer, reports the task as failed, starts another
  worker and goes on;
- Ctrl-C stops every worker within ``STOP_GRACE_S``: workers run in a session of their own, so
  the terminal's Ctrl-C reaches the parent alone (a run never dies half-way in a native call, a
  worker never prints a traceback while it starts), and the parent, when interrupted, sends them
  SIGTERM, which unwinds the task in flight (its temporary folder is removed) and ends the process;
- tasks that share a ``key`` (a sweep's: the agent) go to the same worker, which loads what they
  share once; a worker retires when no task of its key is left (or after ``tasks_per_worker``
  tasks), so a long sweep's memory stays that of ``jobs`` workers holding one agent each;
- a new worker starts in milliseconds: it is forked from a template process that imported the
  workers' modules and ran ``preload`` (a sweep's: its circuits' road grids) once
  (``simeval.eval.forkserver``), instead of importing and building them itself.

Not ``multiprocessing.Pool`` (a dead worker's task is lost and the pool waits for it forever),
nor ``ProcessPoolExecutor`` (one dead worker breaks the pool for every pending task), nor
``multiprocessing.Process``: its workers share the terminal's process group, and keeping Ctrl-C
from them means ignoring SIGINT in the parent while one starts, which loses a Ctrl-C that the
kernel hands to another of the parent's threads (numpy's BLAS threads) meanwhile.
A parent killed with ``kill -9`` leaves its workers to finish the run in hand (written whole) and
exit: they read the end of their socket.
"""

from __future__ import annotations

import functools
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

from simeval.eval.forkserver import FORK_SAFE, Forked, Template, spawn

Task = TypeVar("Task")

STOP_GRACE_S = 1.0
"""How long stopped workers get to unwind before they are killed (s)."""


@dataclass(frozen=True)
class Finished(Generic[Task]):
    """A task whose worker answered: what ``work`` returned."""

    task: Task
    value: Any


@dataclass(frozen=True)
class Died(Generic[Task]):
    """A task whose worker process ended without answering: why, in words."""

    task: Task
    reason: str


@dataclass(frozen=True)
class Retired:
    """What a retiring worker's ``finish`` returned (for a sweep: agents whose ``close`` failed)."""

    value: Any


class Stopped(BaseException):
    """Raised in a worker by SIGTERM: unwinds the task in flight. A ``BaseException`` that is not
    ``SystemExit``: a rollout records an agent's exceptions and exits, and must not record this."""


def _raise_stopped(signum: int, frame: Any) -> None:
    raise Stopped


def serve(fd: int, functions: tuple[Callable, ...] | None = None) -> None:
    """A worker's life: receive ``(work, initializer, finish)`` (a worker started with ``python -c``;
    one forked by the template has them as ``functions``), then answer each task with
    ``work(task)``; None ends it, with ``finish()``'s value as its last message."""
    signal.signal(signal.SIGTERM, _raise_stopped)
    conn = Connection(fd)
    try:
        work, initializer, finish = functions or conn.recv()
        initializer()
        while (task := conn.recv()) is not None:
            conn.send(("done", work(task)))
        conn.send(("retired", finish()))
    except (Stopped, EOFError, BrokenPipeError):
        pass  # stopped by the parent, or the parent is gone: nothing to answer


@dataclass
class _Worker:
    process: subprocess.Popen | Forked
    conn: Connection
    key: Hashable = None
    """The key of the tasks it takes (what it has loaded)."""
    task: Any = None
    busy: bool = False
    done: int = 0
    retiring: bool = False


def describe_exit(exitcode: int | None) -> str:
    """Why a process ended, in words a user can act on."""
    if exitcode is None:
        return "the worker process vanished"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory?)" if -exitcode == signal.SIGKILL else ""
        return f"the worker process died of {name}{hint}"
    return f"the worker process exited with code {exitcode} without a result"


def run_tasks(tasks: list[Task], work: Callable[[Task], Any], *, jobs: int, initializer: Callable[[], None],
              finish: Callable[[], Any], key: Callable[[Task], Hashable] = id, tasks_per_worker: int | None = None,
              preload: Callable[[], None] | None = None, env: Mapping[str, str] | None = None,
              ) -> Iterator[Finished[Task] | Died[Task] | Retired]:
    """Run every task on at most ``jobs`` workers and yield each outcome as it comes.

    A new worker takes the first task of a key that no worker holds (else the first task): it
    then takes only tasks of that key (``next_task``), then tasks of key None (tasks that need
    nothing loaded, which any worker may run), and retires when none is left or after
    ``tasks_per_worker``.
    Workers are forked from a template process that has imported ``work``'s modules and run
    ``preload`` (``simeval.eval.forkserver``; where forking is not safe, each starts with
    ``python -c`` and imports them itself); ``env`` is added to their environment before anything
    is imported. ``work``, ``initializer``, ``finish``, ``preload`` and the tasks must pickle
    (module-level functions). Closing the iterator early (or an exception in the consumer, Ctrl-C
    included) stops the workers.
    """
    pending: list[tuple[Hashable, Task]] = [(key(task), task) for task in tasks]
    workers: list[_Worker] = []
    functions = (work, initializer, finish)
    template = Template.start(functools.partial(serve, functions=functions), preload or _nothing, env) if FORK_SAFE and tasks else None
    try:
        while pending or workers:
            while pending and sum(not w.retiring for w in workers) < jobs:
                worker = _start(functions, template, env)
                worker.key = first_key(pending, {w.key for w in workers if not w.retiring})
                workers.append(worker)
                _assign(worker, pending)
            yield from _collect(workers, pending, tasks_per_worker)
    finally:
        _stop_all(workers)
        if template is not None:
            template.close()


def _nothing() -> None:
    """The preload of a pool given none."""


def _start(functions: tuple[Callable, ...], template: Template | None, env: Mapping[str, str] | None) -> _Worker:
    """A new worker, out of the terminal's reach: forked by ``template``, or, without one (or when
    it is gone), started with ``python -c`` in a session of its own."""
    if template is not None and not template.gone:
        ours, theirs = socket.socketpair()
        try:
            return _Worker(template.fork(theirs.fileno()), Connection(ours.detach()))
        except OSError:
            # The template died, maybe after it forked this worker: that one must not share a
            # socket with the worker started instead, and ends when it reads this end's close.
            ours.close()
        finally:
            theirs.close()
    return _spawn(functions, env)


def _spawn(functions: tuple[Callable, ...], env: Mapping[str, str] | None) -> _Worker:
    """A worker started with ``python -c``, sent its functions."""
    ours, theirs = socket.socketpair()
    try:
        process = spawn(f"{__name__}:serve", theirs.fileno(), env)
    finally:
        theirs.close()
    conn = Connection(ours.detach())
    try:
        conn.send(functions)
    except OSError:
        pass  # it died at once: its socket's end tells
    return _Worker(process, conn)


def first_key(pending: list[tuple[Hashable, Any]], held: set[Hashable]) -> Hashable:
    """The key a new worker takes: the first that no live worker holds, else the first left."""
    return next((k for k, _ in pending if k not in held), pending[0][0])


def next_task(pending: list[tuple[Hashable, Any]], key: Hashable) -> int | None:
    """Index of the next task for a worker holding ``key``: one of its key, else one of key None
    (it needs nothing loaded: a worker done with its own key drives it instead of a new worker
    starting, importing and building its circuits for it), else None (the worker retires)."""
    mine = next((i for i, (k, _) in enumerate(pending) if k == key), None)
    return mine if mine is not None else next((i for i, (k, _) in enumerate(pending) if k is None), None)


def _assign(worker: _Worker, pending: list[tuple[Hashable, Any]]) -> None:
    """Send the worker the next task of its key (``next_task``), or retire it when none is left."""
    index = next_task(pending, worker.key)
    if index is None:
        _retire(worker)
        return
    worker.task, worker.busy = pending.pop(index)[1], True
    try:
        worker.conn.send(worker.task)
    except OSError:
        pass  # already dead: its socket's end tells


def _retire(worker: _Worker) -> None:
    worker.retiring = True
    try:
        worker.conn.send(None)
    except OSError:
        pass  # already dead: its socket's end tells


def _collect(workers: list[_Worker], pending: list[tuple[Hashable, Any]],
             tasks_per_worker: int | None) -> Iterator[Finished | Died | Retired]:
    """Wait for any worker to answer or end; yield what happened, give the worker its next task,
    and drop the workers that ended."""
    ready = set(wait([w.conn for w in workers]))
    for worker in [w for w in workers if w.conn in ready]:
        message = _receive(worker)
        if message is None:  # the process ended (its socket closed)
            worker.process.wait()
            worker.conn.close()
            workers.remove(worker)
            if worker.busy:
                yield Died(worker.task, describe_exit(worker.process.returncode))
        elif message[0] == "done":
            yield Finished(worker.task, message[1])
            worker.task, worker.busy, worker.done = None, False, worker.done + 1
            if tasks_per_worker is not None and worker.done >= tasks_per_worker:
                _retire(worker)
            else:
                _assign(worker, pending)
        else:
            yield Retired(message[1])


def _receive(worker: _Worker) -> tuple[str, Any] | None:
    try:
        return worker.conn.recv()
    except (EOFError, OSError):
        return None


def _stop_all(workers: list[_Worker]) -> None:
    """SIGTERM every live worker, give them ``STOP_GRACE_S`` to unwind, then kill what is left."""
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for worker in workers:
        try:
            worker.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()
        worker.conn.close()
