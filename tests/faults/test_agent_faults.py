"""An agent failing at any point of its life: construct, reset, act, close, exit, or its whole
process dying. ``run`` records the failure, writes the results and exits 3; a sweep records it as
a row, goes on with the other runs, and exits 3 with one line that counts the failures."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from simeval.paths import REPO_ROOT

TINY = ["--circuit", "simple", "--max-time-s", "3", "--no-plot"]


def simeval(*argv: str) -> subprocess.CompletedProcess[str]:
    """A command as a user runs it (a fresh process, so exits and crashes are real)."""
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=300)


def one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize(
    ("agent", "termination", "message"),
    [
        ("RaisesInInit", "agent_error", "the agent's constructor raised RuntimeError: weights file is corrupt"),
        ("RaisesInReset", "agent_error", "in reset(): ValueError: unknown circuit geometry"),
        ("ExitsMidLap", "agent_error", "the agent called sys.exit(0)"),
    ],
)
def test_run_records_an_agent_failure_writes_results_and_exits_3(tmp_path: Path, agent: str, termination: str, message: str) -> None:
    out = tmp_path / "lap"
    result = simeval("simeval.run", "--agent", f"tests.bad_agents:{agent}", *TINY, "--out", str(out))
    assert result.returncode == 3
    line = one_line(result.stderr)
    assert line.startswith(f"error: agent 'tests.bad_agents:{agent}' failed") and message in line and str(out) in line
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["termination"], metrics["error"]) == (termination, message)
    assert {"trajectory.csv", "config.json", "deviation.csv", "timing.csv"} <= {p.name for p in out.iterdir()}


def test_run_whose_agent_fails_in_close_keeps_the_lap_and_exits_3(tmp_path: Path) -> None:
    out = tmp_path / "lap"
    result = simeval("simeval.run", "--agent", "tests.bad_agents:RaisesInClose", *TINY, "--out", str(out))
    assert result.returncode == 3
    assert "in close(): OSError: session already released" in one_line(result.stderr)
    assert json.loads((out / "metrics.json").read_text())["termination"] == "timeout", "the lap itself is a result"
    assert "steps" in result.stdout, "the metrics are printed before the error"


def test_a_class_without_info_is_bad_input(tmp_path: Path) -> None:
    result = simeval("simeval.run", "--agent", "tests.bad_agents:NoInfo", *TINY, "--out", str(tmp_path / "lap"))
    assert result.returncode == 2
    assert "NoInfo has no `info`" in one_line(result.stderr)
    assert not (tmp_path / "lap").exists()


def test_a_sweep_goes_on_past_every_kind_of_failure_and_counts_them(tmp_path: Path) -> None:
    """Constructor raises, sys.exit, segfault, the OOM killer's SIGKILL, os._exit, close raises:
    each is a row or a line, and the expert's run beside them is done."""
    bad = ["RaisesInInit", "ExitsMidLap", "DiesMidLap", "KilledMidLap", "HardExitMidLap", "RaisesInClose"]
    out = tmp_path / "sweep"
    agents = ",".join([*(f"tests.bad_agents:{name}" for name in bad), "expert"])
    argv = ["simeval.sweep", "--agents", agents, "--circuits", "simple", "--max-time-s", "3", "--no-plot",
            "--no-progress", "--jobs", "2", "--out", str(out)]
    result = simeval(*argv)
    assert result.returncode == 3
    line = one_line(result.stderr)
    assert line.startswith("error: 5 runs failed (first: ") and "agent 'tests.bad_agents:RaisesInClose' failed in close()" in line

    rows = {r["agent"].split(":")[-1]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert set(rows) == {*bad, "expert"}, "one row per run, failed ones included"
    assert rows["expert"]["termination"] == rows["RaisesInClose"]["termination"] == "timeout"
    assert (rows["RaisesInInit"]["termination"], rows["RaisesInInit"]["error"]) == (
        "agent_error", "the agent's constructor raised RuntimeError: weights file is corrupt")
    assert rows["ExitsMidLap"]["error"] == "the agent called sys.exit(0)"
    assert (rows["DiesMidLap"]["termination"], rows["DiesMidLap"]["error"]) == ("worker_died", "the worker process died of SIGSEGV")
    assert rows["KilledMidLap"]["error"] == "the worker process died of SIGKILL (out of memory?)"
    assert rows["HardExitMidLap"]["error"] == "the worker process exited with code 3 without a result"
    report = (out / "report.md").read_text()
    assert "## Failed runs" in report and "worker_died" in report and "weights file is corrupt" in report

    rerun = simeval(*argv)  # the runs that have no folder are retried (and fail again); the rest are kept
    assert rerun.returncode == 3 and "error: 3 runs failed" in one_line(rerun.stderr)
    assert "4 kept from before" in rerun.stdout
    assert len(list(csv.DictReader((out / "summary.csv").open()))) == len(bad) + 1
