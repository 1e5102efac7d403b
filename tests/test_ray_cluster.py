"""A sweep on a running Ray cluster: two nodes on loopback, joined as on several machines.

The head is started as a user starts one (``ray start --head --node-ip-address 127.0.0.1 --port
PORT``) on a machine that holds a Ray token, so Ray turns token authentication on for it (the case
that failed with "Failed to connect to Ray cluster" after 20 s); a second node joins it, each with
its own CPU and temporary folder, and each imports simeval from its own path (as an installation on
another machine would), not from the driver's working directory. Only this cluster's processes are
stopped at the end (never ``ray stop``: other tests may run a local Ray instance at the same time).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from simeval.errors import EXIT_BAD_INPUT
from simeval.paths import REPO_ROOT
from simeval.sweep import main

pytest.importorskip("ray", reason="Ray is not installed (pip install 'simeval[ray]')")

RAY = [sys.executable, "-m", "ray.scripts.scripts"]
START_TIMEOUT_S = 120
STOP_GRACE_S = 1.0


@dataclass(frozen=True)
class Cluster:
    address: str
    env: dict[str, str]
    """The environment of a driver on this machine: the token's file, simeval on the path, no
    RAY_AUTH_MODE (as a user's shell has none)."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def node_ports() -> list[str]:
    """Ports of a node's agents, free ones: two nodes on one machine must not share them."""
    return [arg for option in ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port", "--runtime-env-agent-port",
                               "--metrics-export-port") for arg in (option, str(free_port()))]


def processes(group: int, marker: str) -> list[int]:
    """Live processes of the process group ``group``, or whose command line names ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            state, pgid = fields[0], int(fields[2])
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            continue
        if state != "Z" and (pgid == group or marker in cmdline):
            found.append(int(entry.name))
    return found


def stop(groups: list[int], marker: str) -> None:
    """SIGTERM this cluster's processes, SIGKILL what is left after ``STOP_GRACE_S``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in {pid for group in groups for pid in processes(group, marker)}:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and any(processes(group, marker) for group in groups):
            time.sleep(0.2)


@contextmanager
def two_node_cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="simeval-ray-"))  # short: Ray's socket paths live under it
    token = root / "auth_token"
    token.write_text(secrets.token_hex(32))
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env = {**base, "RAY_AUTH_TOKEN_PATH": str(token), "PYTHONPATH": str(REPO_ROOT)}
    port, groups = free_port(), []

    def start(args: list[str], extra: dict[str, str]) -> None:
        proc = subprocess.Popen([*RAY, "start", "--num-cpus", "1", "--disable-usage-stats", "--include-log-monitor", "false",
                                 *node_ports(), *args],
                                env={**env, **extra}, cwd=root, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        groups.append(proc.pid)  # its session: every daemon it starts
        output, _ = proc.communicate(timeout=START_TIMEOUT_S)
        assert proc.returncode == 0, output[-3000:]

    try:
        start(["--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--temp-dir", str(root / "head"),
               "--include-dashboard", "false", "--dashboard-port", str(free_port()),
               "--ray-client-server-port", str(free_port())], {})
        start(["--address", f"127.0.0.1:{port}", "--temp-dir", str(root / "node")], {"RAY_AUTH_MODE": "token"})
        yield Cluster(f"127.0.0.1:{port}", env)
    finally:
        stop(groups, str(root))
        shutil.rmtree(root, ignore_errors=True)


def sweep_argv(out: Path, *more: str) -> list[str]:
    return ["--agents", "expert", "--circuits", "simple", "--seeds", "2", "--max-time-s", "3", "--no-plot",
            "--no-progress", "--out", str(out), *more]


def test_a_sweep_on_a_two_node_cluster_drives_the_process_backends_laps(tmp_path: Path) -> None:
    """``--address 127.0.0.1:PORT`` connects (with this machine's token), both nodes drive runs, the
    driver writes every run folder, the laps are the process backend's; a driver that withholds the
    token gets one line."""
    ray_out, process_out = tmp_path / "ray", tmp_path / "process"
    with two_node_cluster() as cluster:
        done = subprocess.run([sys.executable, "-m", "simeval.sweep", *sweep_argv(ray_out, "--backend", "ray", "--address", cluster.address)],
                              env=cluster.env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-3000:]

        refused = subprocess.run(
            [sys.executable, "-m", "simeval.sweep", *sweep_argv(tmp_path / "refused", "--backend", "ray", "--address", cluster.address)],
            env={**cluster.env, "RAY_AUTH_MODE": "disabled", "RAY_gcs_server_port_wait_time_s": "1"},
            cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
        )
    assert refused.returncode == EXIT_BAD_INPUT
    assert refused.stderr.strip().splitlines()[-1].startswith(f"error: cannot connect to the Ray cluster at {cluster.address}: "
                                                               "it uses token authentication"), refused.stderr[-2000:]
    assert "Traceback" not in refused.stderr

    runs = sorted((ray_out / "runs").iterdir())
    assert [r.name for r in runs] == ["simple__expert__0", "simple__expert__1"], "the driver wrote every run folder, whole"
    nodes = {json.loads((r / "config.json").read_text())["ray"]["node_id"] for r in runs}
    assert len(nodes) == 2, "both nodes ran runs"

    assert main(sweep_argv(process_out, "--jobs", "2")) == 0
    for run in runs:
        assert (run / "trajectory.csv").read_bytes() == (process_out / "runs" / run.name / "trajectory.csv").read_bytes()


def test_an_unreachable_cluster_is_one_line_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(sweep_argv(tmp_path / "sweep", "--backend", "ray", "--address", f"127.0.0.1:{free_port()}")) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach the Ray cluster at 127.0.0.1:") and err.count("\n") == 1, err
