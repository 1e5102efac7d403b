"""`python -m simeval.run`: results on disk, determinism, and every kind of bad input."""

from __future__ import annotations

import csv
import json

import pytest

from simeval.errors import EXIT_BAD_INPUT
from simeval.paths import REPO_ROOT
from simeval.run import EXIT_AGENT_FAILED, main

DESIGN_METRICS = {
    "completed", "percentage_completed", "completed_distance_m", "lap_time_s", "average_speed_mps",
    "deviation_mae_m", "deviation_max_m", "brain_frequency_rt_hz", "brain_frequency_sim_hz",
    "inference_time_mean_s", "inference_time_p50_s", "inference_time_p95_s", "suddenness",
    "termination", "real_time_factor",
}


def test_expert_lap_writes_every_result_file(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--agent", "expert", "--circuit", "simple", "--seed", "7", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "deviation.csv", "metrics.json", "timing.csv", "trajectory.csv", "trajectory.png",
    ]
    metrics = json.loads((out / "metrics.json").read_text())
    assert DESIGN_METRICS <= metrics.keys()
    assert metrics["completed"] is True and metrics["termination"] == "lap_completed"
    assert metrics["percentage_completed"] == 100.0
    assert metrics["brain_frequency_sim_hz"] == pytest.approx(20.0, rel=0.01)
    config = json.loads((out / "config.json").read_text())
    assert config["run"]["seed"] == 7 and config["run"]["agent"] == "expert"
    assert {"git_commit", "python", "numpy", "cpu"} <= config["environment"].keys()
    assert config["agent"]["settings"]["gains"] == {
        "max_speed_mps": 24.0, "min_speed_mps": 6.5, "lateral_accel_mps2": 6.0, "derivative_gain": 0.02,
        "control_dt_s": 0.05, "search_yaw_rate_radps": 2.0,
    }
    assert config["env"]["renderer"] == "raster" and config["env"]["scenario"] == "nominal"
    deviation = list(csv.DictReader((out / "deviation.csv").open()))
    assert float(deviation[1]["along_m"]) == 0.5
    assert sum(float(r["deviation_m"]) for r in deviation) / len(deviation) == pytest.approx(metrics["deviation_mae_m"], abs=1e-6)
    rows = list(csv.DictReader((out / "trajectory.csv").open()))
    assert len(rows) == metrics["steps"] + 1
    assert (out / "trajectory.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "deviation_mae_m" in printed and str(out) in printed


def test_same_seed_gives_byte_identical_trajectory(tmp_path):
    for name in ("a", "b"):
        args = ["--agent", "expert", "--circuit", "montmelo", "--start", "random", "--seed", "11", "--no-plot"]
        assert main([*args, "--out", str(tmp_path / name)]) == 0
    first, second = ((tmp_path / n / "trajectory.csv").read_bytes() for n in ("a", "b"))
    assert first == second
    assert len(first.splitlines()) > 100


def test_fixed_latency_lap_is_reproducible(tmp_path):
    for name in ("a", "b"):
        args = ["--agent", "pure-pursuit", "--circuit", "simple", "--timing", "latency", "--latency-ms", "80", "--no-plot"]
        assert main([*args, "--out", str(tmp_path / name)]) == 0
    first, second = ((tmp_path / n / "trajectory.csv").read_bytes() for n in ("a", "b"))
    assert first == second
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    assert metrics["brain_frequency_sim_hz"] == pytest.approx(1 / 0.08, rel=0.02)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--agent", "expret"], "unknown agent 'expret'. Did you mean 'expert'?"),
        (["--circuit", "montreall"], "unknown circuit 'montreall'. Did you mean 'montreal'?"),
        (["--renderer", "opengl"], "unknown renderer 'opengl'"),
        (["--timing", "realtime"], "timing must be one of"),
        (["--latency-ms", "50"], "--latency-ms needs --timing latency"),
    ],
)
def test_bad_names_and_options_exit_2_with_one_line(tmp_path, capsys, args, expected):
    assert main([*args, "--out", str(tmp_path / "run")]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and expected in err and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_unwritable_output_folder_fails_before_driving(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    assert main(["--agent", "expert", "--out", str(blocker / "run")]) == EXIT_BAD_INPUT
    assert "cannot write results" in capsys.readouterr().err


def test_existing_output_folder_is_not_overwritten(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    assert main(["--agent", "expert", "--out", str(tmp_path / "run")]) == EXIT_BAD_INPUT
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("agent", "termination", "message"),
    [
        ("tests.bad_agents:NanAfterFiveAgent", "invalid_action", "non-finite command"),
        ("tests.bad_agents:CrashAfterFiveAgent", "agent_error", "RuntimeError: inference backend lost its session"),
    ],
)
def test_agent_failing_mid_lap_exits_3_and_keeps_the_partial_lap(tmp_path, capsys, agent, termination, message):
    out = tmp_path / "run"
    assert main(["--agent", agent, "--circuit", "simple", "--out", str(out)]) == EXIT_AGENT_FAILED
    err = capsys.readouterr().err
    assert message in err and str(out) in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["termination"] == termination and metrics["completed"] is False
    assert metrics["steps"] == 5


def test_list_agents_says_which_are_ready_and_what_the_others_lack(capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as in an environment without ONNX Runtime
    assert main(["--list-agents"]) == 0
    rows = {line.split()[0]: line.split(None, 1)[1] for line in capsys.readouterr().out.splitlines()}
    assert rows["expert"] == rows["pure-pursuit"] == rows["torch-fp32"] == "ready"
    assert rows["onnx-int8"] == "onnxruntime not installed (pip install 'simeval[onnx]')"
    from simeval.agents.formats.tensorrt_engine import probe

    if not probe().ready:
        assert all(rows[n] != "ready" for n in ("tftrt-fp32", "tftrt-fp16", "tftrt-int8")), "no TensorRT or GPU here"
    assert rows["pilotnet"] == "= torch-fp32"


def test_user_class_that_is_not_an_agent_is_refused(capsys):
    assert main(["--agent", "json:JSONDecoder"]) == EXIT_BAD_INPUT
    assert "is not a simeval.agents.base.Agent subclass" in capsys.readouterr().err


def test_expert_run_imports_neither_torch_nor_tensorflow_nor_sb3(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys; from simeval.run import main;"
        f"rc = main(['--agent', 'expert', '--circuit', 'simple', '--out', {str(tmp_path / 'run')!r}]);"
        "heavy = sorted(m for m in ('torch', 'tensorflow', 'keras', 'stable_baselines3') if m in sys.modules);"
        "print(rc, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 []"


def test_a_circuit_file_drives_as_its_catalogue_twin_and_a_tumftm_file_at_a_scale(tmp_path, capsys):
    """`--circuit path.csv`: a simeval circuit file drives the lap its catalogue copy drives, byte
    for byte; a TUMFTM file drives at `--circuit-scale`; neither is imported into the catalogue."""
    import shutil

    from simeval.track.catalogue import available
    from simeval.track.recipe import sources_dir

    before = set(available())
    mine = tmp_path / "mytrack.csv"
    shutil.copy(REPO_ROOT / "circuits" / "simple.csv", mine)
    assert main(["--agent", "expert", "--circuit", str(mine), "--no-plot", "--max-time-s", "20", "--out", str(tmp_path / "file")]) == 0
    assert main(["--agent", "expert", "--circuit", "simple", "--no-plot", "--max-time-s", "20", "--out", str(tmp_path / "name")]) == 0
    assert (tmp_path / "file" / "trajectory.csv").read_bytes() == (tmp_path / "name" / "trajectory.csv").read_bytes()

    raw = tmp_path / "spielberg_raw.csv"
    shutil.copy(sources_dir() / "tumftm" / "Spielberg.csv", raw)
    out = tmp_path / "tumftm"
    assert main(["--agent", "expert", "--circuit", str(raw), "--circuit-scale", "1:4.315", "--no-plot", "--max-time-s", "5", "--out", str(out)]) == 0
    facts = json.loads((out / "config.json").read_text())
    assert facts["circuit"]["name"] == "spielberg_raw" and abs(facts["circuit"]["lap_length_m"] - 997) < 5
    assert facts["run"]["circuit_scale"] == "1:4.315"
    assert set(available()) == before, "nothing was imported"
    capsys.readouterr()

    assert main(["--agent", "expert", "--circuit", "simple", "--circuit-scale", "1:2", "--out", str(tmp_path / "x")]) == EXIT_BAD_INPUT
    assert "--circuit-scale 1:2 applies to TUMFTM circuit files, and none of simple is one" in capsys.readouterr().err
    assert main(["--agent", "expert", "--circuit", str(mine), "--circuit-scale", "1:2", "--out", str(tmp_path / "z")]) == EXIT_BAD_INPUT
    assert "a simeval circuit file carries its own scale" in capsys.readouterr().err
    assert main(["--agent", "expert", "--circuit", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "y")]) == EXIT_BAD_INPUT
    assert "nope.csv: no such circuit file" in capsys.readouterr().err


def test_a_default_run_folder_is_named_after_a_circuit_file_without_its_path():
    from simeval.eval.results import run_id

    assert run_id("some/where/mytrack.csv", "expert", 0).startswith("mytrack__expert__0__")
