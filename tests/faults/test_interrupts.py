"""Ctrl-C and kill -9 at any stage: one line, exit 130, finished runs kept and reported, nothing
half-written, and a rerun resumes; what a dead process left half-written is cleared, a live one's
never."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simeval.atomic import HOST_TAG, atomic_directory, clean_stale, is_stale
from simeval.errors import EXIT_INTERRUPTED
from simeval.paths import REPO_ROOT

SWEEP = [sys.executable, "-m", "simeval.sweep", "--agents", "expert", "--circuits", "simple", "--seeds", "4",
         "--jobs", "2", "--max-time-s", "20", "--no-plot", "--no-progress"]


def wait_for(condition, proc: subprocess.Popen, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert proc.poll() is None, f"the process ended before {what}"
        assert time.monotonic() < deadline, f"no {what} after {timeout_s} s"
        time.sleep(0.02)


def interrupt(proc: subprocess.Popen, group: bool = False) -> float:
    """Ctrl-C: SIGINT to the process, or to its process group as a terminal sends it; returns the
    seconds until it exited."""
    sent = time.monotonic()
    if group:
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    proc.wait(timeout=30)
    return time.monotonic() - sent


def finished_runs(runs: Path) -> set[str]:
    return {p.name for p in runs.iterdir() if not p.name.startswith(".")} if runs.is_dir() else set()


@pytest.mark.parametrize("target", ["process", "group"])
def test_ctrl_c_stops_a_sweep_keeps_and_reports_finished_runs_and_the_rerun_resumes(tmp_path: Path, target: str) -> None:
    """Ctrl-C sent to the sweep alone (``kill -INT``), or as a terminal sends it, to its whole
    process group; right when a run has finished, as workers retire and start."""
    out = tmp_path / "sweep"
    argv = [*SWEEP, "--out", str(out)]
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        wait_for(lambda: finished_runs(out / "runs"), proc, "finished run")
        seconds = interrupt(proc, group=target == "group")
    finally:
        proc.kill()
    stderr = proc.stderr.read()
    print(f"sweep stopped {seconds:.2f} s after Ctrl-C")
    assert proc.returncode == EXIT_INTERRUPTED
    assert stderr.strip().count("\n") == 0 and stderr.startswith("interrupted: "), stderr
    assert "Traceback" not in stderr
    assert seconds < 10, "workers must stop at once (the target is 2 s; this bound allows a loaded machine)"
    kept = finished_runs(out / "runs")
    assert 1 <= len(kept) < 4
    assert not [p for p in (out / "runs").iterdir() if p.name.startswith(".")], "nothing half-written is left"
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert {f"simple__expert__{r['seed']}" for r in rows} == kept
    assert (out / "report.md").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    rerun = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(kept)} kept from before" in rerun.stdout
    assert finished_runs(out / "runs") == {f"simple__expert__{s}" for s in range(4)}


def test_ctrl_c_stops_a_run_without_writing_anything(tmp_path: Path) -> None:
    out = tmp_path / "lap"
    argv = [sys.executable, "-m", "simeval.run", "--agent", "tests.bad_agents:SlowAgent", "--circuit", "montreal",
            "--out", str(out), "--no-plot"]
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3.0)  # imports done, driving
        assert proc.poll() is None, "the lap ended before Ctrl-C"
        seconds = interrupt(proc)
    finally:
        proc.kill()
    stderr = proc.stderr.read()
    print(f"run stopped {seconds:.2f} s after Ctrl-C")
    assert proc.returncode == 130 and stderr.startswith("interrupted: ") and stderr.strip().count("\n") == 0, stderr
    assert not out.exists() and not list(tmp_path.iterdir()), "no result, no temporary folder"


def dead_pid() -> int:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(proc.stdout)


def test_stale_partials_of_dead_processes_are_cleared_and_live_ones_kept(tmp_path: Path) -> None:
    runs = tmp_path / "sweep" / "runs"
    with atomic_directory(runs / "simple__expert__0") as live:
        assert not is_stale(live), "this process is alive: its folder is being written"
        dead = runs / live.name.replace(f"-{os.getpid()}.", f"-{dead_pid()}.")
        dead.mkdir()
        (dead / "metrics.json").write_text("{")
        legacy = runs / ".simple__expert__1.k2j3h4g5.partial"  # written before owners were recorded
        legacy.mkdir()
        other_host = runs / live.name.replace(live.name.split(".")[-3][:8], "00000000", 1)
        other_host.mkdir()  # another machine's run on a shared folder: never ours to judge
        unrelated = runs.parent / ".someone-else.partial"  # not simeval's naming: never touched
        unrelated.mkdir()
        assert clean_stale(runs.parent) == [] and clean_stale(runs) == [dead]
        assert clean_stale(runs, legacy=True) == [legacy] and unrelated.is_dir()
        assert live.is_dir() and other_host.is_dir()


def test_a_run_clears_what_a_killed_run_left_beside_its_folder(tmp_path: Path) -> None:
    stale = tmp_path / f".simple__expert__0.{HOST_TAG}-{dead_pid()}.abcdefgh.partial"  # a dead process of this machine
    stale.mkdir()
    argv = [sys.executable, "-m", "simeval.run", "--agent", "expert", "--circuit", "simple", "--max-time-s", "1",
            "--out", str(tmp_path / "lap"), "--no-plot"]
    assert subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, check=False).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lap"]


def test_every_command_ends_bad_input_and_ctrl_c_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """``run_command``: what every command's main() runs its body in (run and sweep are interrupted
    for real above; replay, circuits, models, dataset, train and offline end the same way)."""
    from simeval.errors import EXIT_BAD_INPUT, ConfigError, run_command

    def bad() -> int:
        raise ConfigError("seeds must be >= 1, got 0")

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert run_command(bad) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == "error: seeds must be >= 1, got 0\n"
    assert run_command(interrupted, "interrupted: the finished runs are kept") == EXIT_INTERRUPTED
    assert capsys.readouterr().err == "interrupted: the finished runs are kept\n"
    assert run_command(lambda: 3) == 3
