"""A sweep's ``ray`` backend: its runs on Ray actors, on a local instance or on a cluster.

The runs are grouped as the process backend groups them (``worker.worker_group``): an actor (one
CPU) takes a group, loads each agent once, drives all of its runs, closes it when no run of its
group is left (or after ``max_tasks_per_child`` runs), and is then killed, so the memory of a long
sweep stays that of one agent per actor. At most ``jobs`` actors live at a time on the local
instance a sweep starts, else as many as the cluster has CPUs (``--jobs`` caps them). An actor that
dies (its process killed, its node lost) fails its run in hand alone; the sweep starts another.
Closing the generator (Ctrl-C included) kills every actor.

Where results land: an actor returns each run's folder as files (``worker.perform``) and this
process writes it under the sweep's folder (``worker.save``), so a cluster needs no shared file
system, and a run folder appears whole or not at all whichever node drove the lap. config.json's
``ray`` section says which node that was.

What the nodes run: their own installation of simeval (Ray ships no code to them here, as with
any Ray cluster in production: nodes are set up alike). Before any run, a probe on every node checks
that it imports simeval, the very code this process runs (the same source files), and stops the sweep
with one line otherwise: runs driven by other code would not be comparable.

Connecting: ``HOST:PORT`` is the head's address as ``ray start --head`` printed it (the driver
must run on a node of the cluster: the head, or one that joined it), ``auto`` the cluster started
on this machine, ``ray://HOST:PORT`` the head's Ray Client server (from any machine). Ray turns
token authentication on for a cluster whose head found a token on its machine (in
``~/.ray/auth_token``, which any local ``ray.init()`` writes), but sends the token to an explicit
address only when ``RAY_AUTH_MODE=token`` (an address of another machine may be another cluster):
for an address of this machine the sweep does what Ray does for ``auto`` and uses this machine's
token, if any. An unreachable cluster is one line at once; one that refuses the driver, one line
after Ray's retries (20 s), instead of a traceback.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from simeval.errors import ConfigError, first_line
from simeval.eval.pool import first_key, next_task
from simeval.eval.run import RunConfig
from simeval.eval.worker import close_cached, died, init_worker, perform, save, single_thread_env, worker_group

_ADDRESS = re.compile(r"^(?P<client>ray://)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9._-]*):(?P<port>[0-9]{1,5})$")
REACH_TIMEOUT_S = 5.0
"""How long the head's port may take to accept a connection before the cluster is unreachable."""
PROBE_TIMEOUT_S = 120.0
"""How long a node may take to start a Ray worker and answer the probe."""
HOW_TO = "see the README's 'A sweep on a cluster of several machines'"


def check_address(address: str) -> None:
    """``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``, else a one-line ``ConfigError``."""
    if address != "auto" and _parse(address) is None:
        raise ConfigError(
            f"--address must be HOST:PORT of a Ray head (as `ray start --head --port PORT` printed it), auto, "
            f"or ray://HOST:PORT (Ray Client), got '{address}'"
        )


def _parse(address: str) -> tuple[str, int, bool] | None:
    """(host, port, Ray Client) of ``address``; None when it is not one."""
    match = _ADDRESS.match(address.strip())
    if match is None or not 0 < int(match["port"]) < 65536:
        return None
    return match["host"].strip("[]"), int(match["port"]), bool(match["client"])


# ------------------------------------------------------------------------------------ the actor
class RunActor:
    """A Ray actor that drives one group's runs: ``run`` returns a run's result and its folder's
    files (the agent it loaded stays for the next run), ``finish`` closes the agent."""

    def __init__(self) -> None:
        import ray

        init_worker()
        self.where = {"ray": {"node_id": ray.get_runtime_context().get_node_id(),
                              "node_ip": ray.util.get_node_ip_address(), "host": socket.gethostname()}}

    def run(self, config: RunConfig) -> tuple[dict[str, Any], dict[str, bytes] | None]:
        return perform(config, self.where)

    def finish(self) -> list[dict[str, str]]:
        return close_cached()


@dataclass
class _Actor:
    handle: Any
    key: str | None
    """The group of runs it takes."""
    call: Any = None
    """Its call in flight (an ``ObjectRef``): a run, or ``finish``."""
    task: RunConfig | None = None
    done: int = 0
    retiring: bool = False


# ------------------------------------------------------------------------------------ the backend
def run_ray(configs: list[RunConfig], jobs: int | None, address: str | None,
            max_tasks_per_child: int | None) -> Iterator[dict[str, Any]]:
    """Every run on Ray actors; each result as it comes (the process backend's dicts), then agents
    whose ``close`` failed as results of status 'close_failed'. ``jobs``: actors at a time (default
    the CPU count here, or the cluster's CPUs with ``address``)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--backend ray needs Ray: pip install 'simeval[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        _connect(ray, address, jobs or os.cpu_count() or 1)
    try:
        if address is not None:
            _check_nodes(ray, address)
        if started_here and address is None:
            slots = jobs or os.cpu_count() or 1
        else:
            slots = _cluster_cpus(ray, address)
            slots = min(slots, jobs) if jobs else slots
        yield from _drive_actors(ray, configs, slots, max_tasks_per_child)
    finally:
        if started_here:
            ray.shutdown()


def _connect(ray: Any, address: str | None, jobs: int) -> None:
    """``ray.init``: a local instance of ``jobs`` CPUs whose workers import this simeval, or the
    cluster at ``address``; a cluster that cannot be reached or refuses is one ``ConfigError``."""
    env = single_thread_env()
    if address is None:
        from simeval.paths import PACKAGE_DIR

        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_DIR.parent), os.environ.get("PYTHONPATH")) if p)
        ray.init(address="local", num_cpus=jobs, include_dashboard=False, runtime_env={"env_vars": env}, log_to_driver=False)
        return
    parsed = _parse(address)
    kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env}}
    if parsed is None or not parsed[2]:  # auto, or HOST:PORT (Ray Client takes no log_to_driver)
        kwargs["log_to_driver"] = False
    if parsed is not None:
        host, port, client = parsed
        _check_reachable(address, host, port)
        if not client and _is_this_machine(host):
            _use_this_machines_token()
    try:
        ray.init(address=address, **kwargs)
    except Exception as exc:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError, its own errors
        ray.shutdown()
        raise ConfigError(_refusal(address, exc)) from None


def _check_reachable(address: str, host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=REACH_TIMEOUT_S):
            pass
    except OSError as exc:
        why = "no such host" if isinstance(exc, socket.gaierror) else (exc.strerror or type(exc).__name__).lower()
        raise ConfigError(
            f"cannot reach the Ray cluster at {address} ({why}): start its head there with "
            f"`ray start --head --port {port}`, or pass the address it printed; {HOW_TO}"
        ) from None


def _is_this_machine(host: str) -> bool:
    """Whether ``host`` is an address of this machine (loopback, or one of its interfaces: a
    socket binds only to a local address)."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    for family, _, _, _, sockaddr in infos:
        if ipaddress.ip_address(sockaddr[0].split("%")[0]).is_loopback:
            return True
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.bind((sockaddr[0], 0))
            return True
        except OSError:
            continue
    return False


def _use_this_machines_token() -> None:
    """Connect to a cluster of this machine as Ray connects to ``auto``: with token authentication
    when a token is on this machine and ``RAY_AUTH_MODE`` does not say otherwise (the head of a
    cluster started here with ``ray start`` turned it on by the same rule)."""
    if os.environ.get("RAY_AUTH_MODE") is not None:
        return
    try:
        from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available
    except ImportError:  # a Ray without token authentication
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _refusal(address: str, exc: BaseException) -> str:
    """Why ``ray.init(address)`` failed, in one line that says what to do."""
    chain, cause = [], exc
    while cause is not None and len(chain) < 10:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    text = " ".join(f"{type(e).__name__} {e}" for e in chain)
    if "AuthenticationError" in text or "InvalidAuthToken" in text or "UNAUTHENTICATED" in text.upper():
        return (f"cannot connect to the Ray cluster at {address}: it uses token authentication and refused this "
                f"driver; run the sweep with RAY_AUTH_MODE=token and the cluster's token (in ~/.ray/auth_token, the "
                f"file RAY_AUTH_TOKEN_PATH names, or RAY_AUTH_TOKEN), as its nodes have it")
    return f"cannot connect to the Ray cluster at {address}: {first_line(exc)}; {HOW_TO}"


def _cluster_cpus(ray: Any, address: str | None) -> int:
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if cpus < 1:
        where = f"at {address}" if address else "this process is connected to"
        raise ConfigError(f"the Ray cluster {where} has no CPU to run on; start its nodes with --num-cpus N")
    return cpus


def _probe() -> Callable[[], dict[str, Any]]:
    """A function that says which simeval a process imports: its version, folder and a digest of
    its Python source (each file's path and bytes: equal on two machines exactly when they run the
    same code, whatever the version says). Made here so that it travels to a node by value: a node
    without simeval, or with another one, runs it too."""

    def probe() -> dict[str, Any]:
        import hashlib
        import socket
        from pathlib import Path

        try:
            import simeval
        except ImportError as exc:
            return {"host": socket.gethostname(), "error": f"{type(exc).__name__}: {exc}"}
        package = Path(simeval.__file__).resolve().parent
        digest = hashlib.sha256()
        for path in sorted(package.rglob("*.py")):
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
        return {"host": socket.gethostname(), "simeval": simeval.__version__, "folder": str(package), "code": digest.hexdigest()}

    return probe


def _check_nodes(ray: Any, address: str) -> None:
    """Every node that can take a run imports simeval, the very code this process runs; else one
    ``ConfigError`` that names the node, before any run."""
    from ray.exceptions import RayError
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    ours = _probe()()
    probe = ray.remote(num_cpus=0, max_retries=0)(_probe())
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
    calls = [(probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(), n)
             for n in nodes]
    for call, node in calls:
        name = f"{node.get('NodeManagerAddress', '?')} ({node.get('NodeManagerHostname', '?')})"
        try:
            theirs = ray.get(call, timeout=PROBE_TIMEOUT_S)
        except RayError as exc:
            raise ConfigError(f"Ray node {name} of {address} did not run simeval's probe: {first_line(exc)}; {HOW_TO}") from None
        if "error" in theirs:
            raise ConfigError(f"Ray node {name} of {address} cannot import simeval ({theirs['error']}): install simeval "
                              f"{ours['simeval']} there, with the extras of the agents to run; {HOW_TO}")
        if theirs["code"] != ours["code"]:
            raise ConfigError(
                f"Ray node {name} of {address} runs other simeval code than this sweep (there {_version(theirs)}, here "
                f"{_version(ours)}): install the same simeval on every node; {HOW_TO}"
            )


def _version(facts: dict[str, Any]) -> str:
    return f"simeval {facts['simeval']} in {facts['folder']}, source digest {facts['code'][:12]}"


# ------------------------------------------------------------------------------------ scheduling
def _drive_actors(ray: Any, configs: list[RunConfig], slots: int, max_tasks_per_child: int | None) -> Iterator[dict[str, Any]]:
    """The scheduling of ``simeval.eval.pool.run_tasks``, with actors for processes: a new actor
    takes the first group that no live actor holds (else the first group left), then only runs of
    that group, and retires when none is left or after ``max_tasks_per_child`` runs."""
    from ray.exceptions import RayError

    remote = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(RunActor)
    pending: list[tuple[str | None, RunConfig]] = [(worker_group(c), c) for c in configs]
    actors: list[_Actor] = []
    closing: dict[str, str] = {}
    try:
        while pending or actors:
            while pending and sum(not a.retiring for a in actors) < slots:
                actor = _Actor(remote.remote(), first_key(pending, {a.key for a in actors if not a.retiring}))
                actors.append(actor)
                _assign(actor, pending, max_tasks_per_child)
            calls = {a.call: a for a in actors}
            ready, _ = ray.wait(list(calls), num_returns=1)
            actor = calls[ready[0]]
            if actor.retiring:
                try:
                    closing.update((f["agent"], f["error"]) for f in ray.get(ready[0]))
                except RayError:
                    pass  # it died while closing: its runs are recorded
                _kill(ray, actor)
                actors.remove(actor)
                continue
            task = actor.task
            try:
                result, files = ray.get(ready[0])
            except RayError as exc:
                _kill(ray, actor)
                actors.remove(actor)
                yield died(task, f"the Ray actor failed: {first_line(exc)}")
                continue
            actor.done += 1
            _assign(actor, pending, max_tasks_per_child)
            yield save(task, result, files)
    finally:
        for actor in actors:
            _kill(ray, actor)
    for agent, error in closing.items():
        yield {"agent": agent, "status": "close_failed", "error": error}


def _assign(actor: _Actor, pending: list[tuple[str, RunConfig]], max_tasks_per_child: int | None) -> None:
    """Send the actor the next run of its group, or ``finish`` when none is left or it did enough."""
    index = next_task(pending, actor.key)
    if index is None or (max_tasks_per_child is not None and actor.done >= max_tasks_per_child):
        actor.task, actor.retiring, actor.call = None, True, actor.handle.finish.remote()
        return
    actor.task = pending.pop(index)[1]
    actor.call = actor.handle.run.remote(actor.task)


def _kill(ray: Any, actor: _Actor) -> None:
    try:
        ray.kill(actor.handle, no_restart=True)
    except Exception:  # noqa: BLE001 - already gone, or Ray is shutting down
        pass
