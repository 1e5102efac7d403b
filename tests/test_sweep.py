"""Sweeps: every combination runs once, a killed sweep resumes without losing or redoing runs,
the Ray backend drives the same laps, and summary.csv/report.md come from the run folders."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from simeval.errors import EXIT_BAD_INPUT
from simeval.eval.sweep import run_dir
from simeval.paths import REPO_ROOT
from simeval.sweep import main

TINY = ["--circuits", "simple", "--max-time-s", "3", "--no-plot", "--no-progress"]
SUMMARY_COLUMNS = [
    "agent", "circuit", "scenario", "seed", "timing", "latency_ms", "latency_scale", "completed", "percentage_completed",
    "completed_distance_m", "lap_time_s", "average_speed_mps", "deviation_mae_m", "deviation_max_m", "brain_frequency_rt_hz",
    "brain_frequency_sim_hz", "inference_time_mean_s", "inference_time_p50_s", "inference_time_p95_s", "suddenness",
    "termination", "real_time_factor", "simulated_time_s", "progress_m", "lap_length_m", "steps", "error",
]
"""summary.csv's header as it has always been: scripts read these columns."""


def folder_digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def run_names(out: Path) -> set[str]:
    return {p.name for p in (out / "runs").iterdir()}


def test_sweep_runs_every_combination_and_writes_summary_and_report(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    assert main(["--agents", "expert,pure-pursuit", "--seeds", "2", "--jobs", "2", "--out", str(out), *TINY]) == 0
    assert run_names(out) == {f"simple__{a}__{s}" for a in ("expert", "pure-pursuit") for s in (0, 1)}
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert {(r["agent"], r["seed"]) for r in rows} == {(a, s) for a in ("expert", "pure-pursuit") for s in ("0", "1")}
    assert {"timing", "deviation_mae_m", "average_speed_mps", "termination", "inference_time_mean_s"} <= set(rows[0])
    assert all(r["termination"] == "timeout" and r["timing"] == "lockstep" for r in rows)
    assert list(rows[0]) == SUMMARY_COLUMNS, "summary.csv keeps its columns"
    report = (out / "report.md").read_text()
    assert "| Method | Parent | Model size (MB) | Test MSE (normalised labels) | Inference time (ms) |" in report
    assert ("| Method | Laps completed, rate (%) [95% CI] | Lap progress (% of the lap) | Lap time (s) | Average speed (m/s) "
            "| Position deviation MAE (m) |") in report
    assert "| expert | 0/2: 0 % [0, 66] | " in report and "Only 2 seeds: too few to tell" in report
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")
    for png in ("trajectories_simple.png", "deviation_simple.png", "latency_vs_deviation.png"):
        assert (out / png).read_bytes().startswith(b"\x89PNG")

    before = {name: folder_digest(out / "runs" / name) for name in run_names(out)}
    mtimes = {name: (out / "runs" / name).stat().st_mtime_ns for name in before}
    assert main(["--agents", "expert,pure-pursuit", "--seeds", "2", "--jobs", "2", "--out", str(out), *TINY]) == 0
    assert {name: folder_digest(out / "runs" / name) for name in run_names(out)} == before
    assert {name: (out / "runs" / name).stat().st_mtime_ns for name in before} == mtimes


def test_killed_sweep_resumes_without_losing_or_redoing_runs(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "simeval.sweep", "--agents", "expert", "--seeds", "6", "--jobs", "1",
            "--out", str(out), "--circuits", "simple", "--max-time-s", "8", "--no-plot", "--no-progress"]
    proc = subprocess.Popen(argv, cwd=REPO_ROOT, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = out / "runs"
    deadline = time.monotonic() + 120
    try:
        while not (runs.is_dir() and any(not p.name.startswith(".") for p in runs.iterdir())):
            assert proc.poll() is None, "the sweep ended before writing a run"
            assert time.monotonic() < deadline, "no run folder after 120 s"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finished = {p.name: folder_digest(p) for p in runs.iterdir() if not p.name.startswith(".")}
    assert 1 <= len(finished) < 6, "kill should land mid-sweep"
    assert all("metrics.json" in files and "trajectory.csv" in files for files in finished.values())

    assert subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, check=False).returncode == 0
    assert run_names(out) == {f"simple__expert__{s}" for s in range(6)}, "no leftover .partial folder, no run missing"
    assert {name: folder_digest(runs / name) for name in finished} == finished, "finished runs are kept as they were"
    assert len(list(csv.DictReader((out / "summary.csv").open()))) == 6


def test_ray_backend_drives_the_same_laps_on_actors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """The Ray backend's actors: the process backend's trajectories, a killed actor fails its run
    alone, an agent is loaded once per actor, a failed close is reported."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'simeval[ray]')")
    loads = tmp_path / "loads.txt"
    monkeypatch.setenv("SIMEVAL_TEST_LOADS", str(loads))
    ray_out, process_out = tmp_path / "ray", tmp_path / "process"
    agents = "expert,tests.bad_agents:KilledMidLap,tests.bad_agents:RaisesInClose,tests.bad_agents:CountingAgent"
    assert main(["--agents", agents, "--seeds", "2", "--jobs", "2", *TINY, "--backend", "ray", "--out", str(ray_out)]) == 3
    assert "agent 'tests.bad_agents:RaisesInClose' failed in close()" in capsys.readouterr().err
    assert main(["--agents", "expert", "--seeds", "2", "--jobs", "2", *TINY, "--out", str(process_out)]) == 0
    for seed in (0, 1):
        ray_run, process_run = run_dir(ray_out, "simple", "expert", seed), run_dir(process_out, "simple", "expert", seed)
        assert (ray_run / "trajectory.csv").read_bytes() == (process_run / "trajectory.csv").read_bytes()
        assert json.loads((ray_run / "config.json").read_text())["ray"]["node_id"]
    rows = {(r["agent"].split(":")[-1], r["seed"]): r for r in csv.DictReader((ray_out / "summary.csv").open())}
    assert len(rows) == 8
    assert all(rows[("KilledMidLap", s)]["termination"] == "worker_died" for s in "01")
    assert rows[("KilledMidLap", "0")]["error"].startswith("the Ray actor failed: ")
    assert all(rows[(a, s)]["termination"] == "timeout" for a in ("expert", "RaisesInClose", "CountingAgent") for s in "01")
    pids = loads.read_text().split()
    assert len(set(pids)) == len(pids), "no actor builds an agent twice"
    assert "## Failed runs" in (ray_out / "report.md").read_text()


@pytest.mark.parametrize(
    "argv",
    [
        ["--agents", "no-such-agent"],
        ["--circuits", "no-such-circuit"],
        ["--address", "auto"],
        ["--backend", "ray", "--address", "localhost"],
        ["--seeds", "0"],
        ["--timing", "lockstep", "--latency-ms", "100"],
        ["--scenarios", "no-such-scenario"],
    ],
)
def test_bad_input_is_refused_before_any_run(tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    assert main([*argv, "--out", str(out), "--no-progress"]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err.startswith("error: ")
    assert not (out / "runs").exists()


def test_workers_are_replaced_without_stalling_the_sweep(tmp_path: Path) -> None:
    """More runs than workers x max_tasks_per_child: retired workers must be replaced (on Python 3.11
    ProcessPoolExecutor hangs here, CPython gh-115634)."""
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "simeval.sweep", "--agents", "expert", "--seeds", "5", "--jobs", "1",
            "--max-tasks-per-child", "2", "--out", str(out), *TINY]
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert run_names(out) == {f"simple__expert__{s}" for s in range(5)}


def test_scenarios_are_swept_and_reported_per_agent(tmp_path: Path) -> None:
    """... and with --video every run has its lap.mp4, a frame per step."""
    from imageio_ffmpeg import count_frames_and_secs

    out = tmp_path / "sweep"
    assert main(["--agents", "expert", "--scenarios", "nominal,line-gaps", "--seeds", "1", "--jobs", "2", "--video", "--out", str(out), *TINY]) == 0
    assert run_names(out) == {"simple__expert__0", "simple__expert__0__line-gaps"}
    assert all(count_frames_and_secs(str(out / "runs" / name / "lap.mp4")) == (60, 3.0) for name in run_names(out))
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert sorted(r["scenario"] for r in rows) == ["line-gaps", "nominal"]
    config = (out / "runs" / "simple__expert__0__line-gaps" / "config.json").read_text()
    assert '"scenario": "line-gaps"' in config
    report = (out / "report.md").read_text()
    assert report.count("| expert | 0/1: 0 % [0, 79] | ") == 2, "a driving table per scenario"
    assert "One seed: no interval and no comparison can be computed" in report
    assert "## simple, scenario line-gaps" in report and (out / "trajectories_simple__line-gaps.png").is_file()


def test_an_agent_that_cannot_load_is_listed_and_the_others_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from simeval.agents import load_agent
    from simeval.errors import AgentError

    try:
        load_agent("tftrt-fp32").close()
        pytest.skip("tftrt-fp32 loads here (TensorRT and a GPU present)")
    except AgentError:
        pass
    out = tmp_path / "sweep"
    assert main(["--agents", "expert,tftrt-fp32", "--jobs", "1", "--out", str(out), *TINY]) == EXIT_BAD_INPUT
    assert run_names(out) == {"simple__expert__0"}
    assert "skipped agent 'tftrt-fp32'" in capsys.readouterr().err
    assert "- `tftrt-fp32`: " in (out / "report.md").read_text()


def test_a_worker_loads_its_agent_once_and_drives_all_of_its_laps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads = tmp_path / "loads.txt"
    monkeypatch.setenv("SIMEVAL_TEST_LOADS", str(loads))
    agents = "tests.bad_agents:CountingAgent,tests.bad_agents:CountingAgentToo"
    assert main(["--agents", agents, "--seeds", "3", "--jobs", "2", "--out", str(tmp_path / "sweep"), *TINY]) == 0
    pids = loads.read_text().split()
    assert len(set(pids)) == len(pids), "no worker builds an agent twice"
    assert len(pids) <= 3, f"6 runs of 2 agents on 2 workers: each agent loaded once (plus at most one helper at the end), got {len(pids)}"


def test_slow_starting_frameworks_go_first_and_share_workers_by_framework(tmp_path: Path) -> None:
    from simeval.eval.sweep import SweepConfig, plan, worker_group

    config = SweepConfig(out=tmp_path / "sweep")
    runs = plan(config, ["expert", "onnx-fp32", "torch-fp32", "tf-fp32", "torch-static"], ["simple"], ["nominal"])
    assert [r.agent for r in runs] == ["tf-fp32", "torch-fp32", "torch-static", "expert", "onnx-fp32"]
    groups = {r.agent: worker_group(r) for r in runs}
    assert groups["torch-fp32"] == groups["torch-static"] != groups["tf-fp32"]
    assert groups["expert"] is None and groups["onnx-fp32"] == "onnxruntime"  # the experts run on any worker
    user = config.run_config("tests.bad_agents:SlowAgent", "simple", 0)
    assert worker_group(user) == "tests.bad_agents:SlowAgent", "a user's class imports what it likes: a group of its own"


def test_a_sweep_takes_circuit_files_beside_catalogue_names(tmp_path: Path) -> None:
    import shutil

    mine = tmp_path / "mytrack.csv"
    shutil.copy(REPO_ROOT / "circuits" / "simple.csv", mine)
    out = tmp_path / "sweep"
    assert main(["--agents", "expert", "--circuits", f"simple,{mine}", "--max-time-s", "3", "--no-plot", "--no-progress", "--out", str(out)]) == 0
    assert run_names(out) == {"simple__expert__0", "mytrack__expert__0"}
    assert folder_digest(out / "runs" / "simple__expert__0")["trajectory.csv"] == folder_digest(out / "runs" / "mytrack__expert__0")["trajectory.csv"]
    assert "mytrack.csv" in (out / "summary.csv").read_text() and (out / "report.md").is_file()

    raw = tmp_path / "spielberg_raw.csv"
    shutil.copy(REPO_ROOT / "circuits" / "sources" / "tumftm" / "Spielberg.csv", raw)
    assert main(["--agents", "expert", "--circuits", f"simple,{raw}", "--circuit-scale", "1:4.315", "--max-time-s", "3",
                 "--no-plot", "--no-progress", "--out", str(out)]) == 0, "the scale is the TUMFTM file's; simple keeps its own"
    config = json.loads((out / "runs" / "spielberg_raw__expert__0" / "config.json").read_text())
    assert config["run"]["circuit_scale"] == "1:4.315" and abs(config["circuit"]["lap_length_m"] - 997) < 5
    assert json.loads((out / "runs" / "simple__expert__0" / "config.json").read_text())["run"]["circuit_scale"] is None


def test_a_worker_done_with_its_framework_drives_the_experts_before_it_retires() -> None:
    from simeval.eval.pool import first_key, next_task

    pending = [("tensorflow", "tf-a"), (None, "expert-a"), ("torch", "torch-a"), (None, "expert-b")]
    assert first_key(pending, set()) == "tensorflow" and first_key(pending, {"tensorflow"}) is None
    assert next_task(pending, "torch") == 2  # its own framework first
    assert next_task(pending[2:], "tensorflow") == 1  # then a run that needs nothing loaded
    assert next_task([("torch", "torch-a")], "tensorflow") is None  # never another framework: it retires
