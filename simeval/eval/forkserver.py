"""A template process that forks a sweep's workers with their imports and road grids already built.

A worker started with ``python -c`` spends ~0.3 s importing numpy, scipy, gymnasium, matplotlib
and simeval, and 0.04-0.3 s per circuit building its road grid (simple to montmelo), before its
first lap; a sweep starts a worker per framework group (five for the full CPU matrix), and each
pays it again. The template pays it once: started like a worker (a session of its own, out of the
terminal's reach, with the workers' environment), it imports the workers' modules (unpickling
their functions) and runs ``preload``, then forks each new worker on request, and the worker starts
in milliseconds with all of that loaded (shared copy-on-write). This is multiprocessing's
forkserver with ``set_forkserver_preload``, except that the workers stay out of the terminal's
process group (why that matters: ``simeval.eval.pool``).

The template stays single-threaded, since forking a threaded process can deadlock the child: it
imports no framework (a worker imports torch or TensorFlow after the fork), and the environment it
is started with (the workers', e.g. one thread per numeric library) is set before anything is
imported. Linux only (``FORK_SAFE``): macOS system libraries are not fork-safe, and there the pool
starts each worker itself.

A forked worker is the template's child, not the pool's: the template reaps it and reports its exit
status, and ``Forked`` gives the pool the ``subprocess.Popen`` methods it uses (poll, wait,
terminate, kill, returncode) on top of those reports.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import recv_handle, send_handle
from pathlib import Path

FORK_SAFE = sys.platform.startswith("linux")
"""Where workers are forked from the template (elsewhere each is started with ``python -c``)."""

POLL_S = 0.05
"""How often a worker is looked for by its pid once the template that would report its end is gone (s)."""


def spawn(entry: str, fd: int, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start ``python -c`` running ``entry(fd)`` (``module:function``) in a session of its own,
    importing modules as this process does (its ``sys.path``), with ``env`` added to this
    process's environment; ``fd`` is passed on."""
    module, function = entry.split(":")
    code = f"import json, sys; sys.path[:] = json.loads(sys.argv[1]); from {module} import {function}; {function}(int(sys.argv[2]))"
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(sys.path), str(fd)], pass_fds=[fd],
                            start_new_session=True, env={**os.environ, **(env or {})})


# ----------------------------------------------------------------------------- the template's side
def template_main(fd: int) -> None:
    """The template's life (``spawn`` runs it): receive ``(target, preload)``, run ``preload``, then
    for each request fork a worker that runs ``target(its fd)``, and report each worker's pid when
    it starts and its exit status when it ends. Ends when the pool says so or is gone."""
    conn = Connection(fd)
    children: set[int] = set()
    wakeup, wakeup_writer = os.pipe()  # SIGCHLD writes here (set_wakeup_fd): an ended worker wakes the loop
    os.set_blocking(wakeup_writer, False)
    signal.set_wakeup_fd(wakeup_writer)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    try:
        target, preload = conn.recv()
        _run_preload(preload)
        while True:
            ready = wait([conn, wakeup])
            if wakeup in ready:
                os.read(wakeup, 4096)
                for pid, code in _reaped(children):
                    conn.send(("exited", pid, code))
            if conn in ready:
                if conn.recv() is None:
                    break
                worker_fd = recv_handle(conn)
                pid = _fork(target, worker_fd, conn, (wakeup, wakeup_writer))
                os.close(worker_fd)  # the worker's alone: else its death would not close its socket
                children.add(pid)
                conn.send(("started", pid))
    except (EOFError, OSError):
        pass  # the pool is gone: the workers see their own sockets close and end by themselves


def _run_preload(preload: Callable[[], None]) -> None:
    """Run ``preload``; one that fails only loses the time it would save (the workers import and
    build what they need themselves, and meet and report the same error in their runs)."""
    try:
        preload()
    except Exception:  # noqa: BLE001, S110 - see above
        pass


def _fork(target: Callable[[int], None], fd: int, conn: Connection, wakeup: tuple[int, int]) -> int:
    """Fork a worker running ``target(fd)``; the child leaves the template's line to the pool, its
    SIGCHLD wake-up and its loop behind (it never returns into that loop)."""
    sys.stdout.flush()
    sys.stderr.flush()  # else the child would write the template's buffered output again
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for own in wakeup:
            os.close(own)
        conn.close()
        target(fd)
        code = 0
    except SystemExit as exc:  # as python -c ends on it
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - said as a worker started with python -c says it
        traceback.print_exc()
    finally:
        os._exit(code)  # noqa: B012 - a forked child must not unwind into the template's code


def _reaped(children: set[int]) -> list[tuple[int, int]]:
    """(pid, returncode) of each child that has ended, removed from ``children``: negative for a
    signal, as ``subprocess`` says it."""
    ended = []
    for pid in list(children):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            children.discard(pid)
            ended.append((pid, os.waitstatus_to_exitcode(status)))
    return ended


# ----------------------------------------------------------------------------- the pool's side
@dataclass
class Template:
    """The pool's handle on a running template: forks workers (``fork``) and keeps the exit
    status of each that ended (``ended``)."""

    process: subprocess.Popen
    conn: Connection
    exits: dict[int, int] = field(default_factory=dict)
    started: list[int] = field(default_factory=list)
    gone: bool = False
    """The template ended (or died): workers it forked are then followed by their pid alone."""

    @classmethod
    def start(cls, target: Callable[[int], None], preload: Callable[[], None], env: Mapping[str, str] | None = None) -> Template:
        """A template whose workers run ``target(fd)``, after ``preload`` (both must pickle)."""
        ours, theirs = socket.socketpair()
        try:
            process = spawn(f"{__name__}:template_main", theirs.fileno(), env)
        finally:
            theirs.close()
        template = cls(process, Connection(ours.detach()))
        try:
            template.conn.send((target, preload))
        except OSError:
            template.gone = True
        return template

    def fork(self, fd: int) -> Forked:
        """A new worker running ``target(fd)``; OSError when the template is gone."""
        if self.gone:
            raise OSError("the template process has ended")
        self.conn.send("fork")
        send_handle(self.conn, fd, self.process.pid)
        while not self.started:
            self._read(None)
            if self.gone:
                raise OSError("the template process ended before it forked the worker")
        return Forked(self.started.pop(0), self)

    def ended(self, pid: int, timeout: float | None) -> bool:
        """Whether worker ``pid`` has ended, waiting up to ``timeout`` s (None: as long as it takes)
        for the template to say so; its exit status is then ``exits[pid]`` (absent when the
        template died first: nobody can tell it then)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while pid not in self.exits:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if self.gone:  # its orphans are reaped by init: follow the pid itself
                if not _alive(pid):
                    return True
                if left == 0.0:
                    return False
                time.sleep(min(POLL_S, left or POLL_S))
            elif not self._read(left):
                return False
        return True

    def _read(self, timeout: float | None) -> bool:
        """Take in the template's next message if one comes within ``timeout`` s (0: only one
        already there); whether one came (or the template's end)."""
        try:
            if not self.conn.poll(timeout):
                return False
            message = self.conn.recv()
        except (EOFError, OSError):
            self.gone = True
            return True
        if message[0] == "started":
            self.started.append(message[1])
        else:
            self.exits[message[1]] = message[2]
        return True

    def close(self) -> None:
        """End the template (its workers are the pool's to stop)."""
        try:
            self.conn.send(None)
        except OSError:
            pass  # already gone
        try:
            self.process.wait(POLL_S * 20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.conn.close()
        self.gone = True


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs: a zombie does not (an orphan waits as one for a reaper
    that, in a container whose first process reaps nothing, never comes)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@dataclass
class Forked:
    """A worker forked by the template, with the ``subprocess.Popen`` methods the pool uses."""

    pid: int
    template: Template
    returncode: int | None = None
    done: bool = False
    """It ended (its ``returncode`` stays None when the template died first and cannot tell it)."""

    def poll(self) -> int | None:
        if not self.done and self.template.ended(self.pid, 0.0):
            self.wait()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        if not self.template.ended(self.pid, timeout):
            raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
        self.done, self.returncode = True, self.template.exits.get(self.pid)
        return self.returncode

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if not (self.done or self.template.ended(self.pid, 0.0)):  # an ended worker's pid may be another process's by now
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass  # it ended meanwhile
