"""The circuit catalogue, its CLI, the shipped circuit files and the loop generator."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from simeval.circuits import main
from simeval.paths import data_dir
from simeval.track.catalogue import available, evaluation_circuits
from simeval.track.circuit import Circuit
from simeval.track.generator import generate_loop
from simeval.track.recipe import sources_dir

TRACKS_DIR = sources_dir()


@pytest.fixture(autouse=True)
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own, empty, user circuit folder (never ~/.simeval)."""
    folder = tmp_path / "user-circuits"
    monkeypatch.setenv("SIMEVAL_CIRCUITS_DIR", str(folder))
    return folder


def shipped(role: str) -> list[Circuit]:
    circuits = [Circuit.from_file(path) for path in available().values()]
    return [c for c in circuits if c.meta.role == role]


# ----------------------------------------------------------------------------------------- CLI
def test_list_shows_test_and_training_circuits(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["name", "role", "lap_m", "road_m", "source"]
    roles = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert all(roles[name] == "test" for name in evaluation_circuits())
    assert sum(role == "train" for role in roles.values()) >= 10
    montreal = next(line for line in lines if line.startswith("montreal "))
    assert "Montreal.csv" in montreal and "3.00" in montreal


def test_show_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pics" / "simple.png"
    assert main(["show", "simple", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000


def test_unknown_name_exits_2_with_a_suggestion(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "montreall"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown circuit 'montreall'")
    assert "did you mean 'montreal'" in err.lower()


def test_bad_import_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("# x,y\n1,2\n")
    assert main(["import", str(bad), "--name", "bad", "--scale", "1"]) == 2
    assert "bad.csv:1: not a TUMFTM header" in capsys.readouterr().err


def test_import_then_load_by_name(user_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = TRACKS_DIR / "tumftm" / "Spielberg.csv"
    assert main(["import", str(source), "--name", "my-ring", "--scale", "1:4", "--road-width", "3.2"]) == 0
    assert (user_dir / "my-ring.csv").is_file()
    circuit = Circuit.from_name("my-ring")
    assert circuit.meta.role == "user"
    assert circuit.meta.scale == pytest.approx(0.25)
    assert circuit.length_m == pytest.approx(4315.4 / 4, rel=0.005)
    assert circuit.w_left + circuit.w_right == pytest.approx(3.2)
    assert "my-ring" in capsys.readouterr().out

    assert main(["import", str(source), "--name", "my-ring", "--scale", "1:4"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["import", str(source), "--name", "my-ring", "--scale", "1:3", "--force"]) == 0
    assert Circuit.from_name("my-ring").length_m == pytest.approx(4315.4 / 3, rel=0.005)


def test_import_keeps_the_files_widths_into_a_chosen_folder(tmp_path: Path) -> None:
    dest = tmp_path / "elsewhere"
    source = TRACKS_DIR / "tumftm" / "Monza.csv"
    assert (
        main(["import", str(source), "--name", "monza-full", "--scale", "1", "--dest", str(dest), "--role", "train"])
        == 0
    )
    circuit = Circuit.from_file(dest / "monza-full.csv")
    assert circuit.meta.role == "train"
    assert 3.5 < float((circuit.w_left + circuit.w_right).min()) < 15.0


@pytest.mark.parametrize(("name", "match"), [("My Track", "lower-case"), ("montreal", "shipped circuit")])
def test_import_refuses_bad_or_shipped_names(
    tmp_path: Path, name: str, match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "t.csv"
    source.write_text("# x_m,y_m,w_tr_right_m,w_tr_left_m\n0,0,1,1\n50,0,1,1\n50,50,1,1\n0,50,1,1\n")
    assert main(["import", str(source), "--name", name, "--scale", "1", "--force"]) == 2
    assert match in capsys.readouterr().err


def test_build_reproduces_the_shipped_circuits_byte_for_byte(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """From the sources inside the repository alone (``circuits/sources``, the default)."""
    assert main(["build", "--dest", str(tmp_path)]) == 0
    built = {p.name for p in tmp_path.glob("*.csv")}
    assert built == {p.name for p in data_dir("circuits").glob("*.csv")}
    for name in sorted(built):
        assert (tmp_path / name).read_bytes() == (data_dir("circuits") / name).read_bytes(), name


def test_refit_solves_simple_circuit_again_close_to_the_recorded_fit(tmp_path: Path) -> None:
    import shutil

    sources = Path(shutil.copytree(TRACKS_DIR, tmp_path / "sources"))
    recorded = json.loads((sources / "simple_fit.json").read_text())["parameters"]
    assert main(["build", "--tracks", str(sources), "--refit", "--dest", str(tmp_path / "out")]) == 0
    refitted = json.loads((sources / "simple_fit.json").read_text())["parameters"]
    assert np.abs(np.subtract(refitted, recorded)).max() < 1e-4
    fresh, shipped_simple = Circuit.from_file(tmp_path / "out" / "simple.csv"), Circuit.from_name("simple")
    assert np.abs(fresh.control_points - shipped_simple.control_points).max() <= 2e-4


# ------------------------------------------------------------------------------ shipped circuits
def bbox_ok(circuit: Circuit, width: float, height: float) -> bool:
    w, h = circuit.bounding_box()
    return abs(w / width - 1) < 0.02 and abs(h / height - 1) < 0.02


def test_simple_circuit_facts() -> None:
    c = Circuit.from_name("simple")
    assert c.meta.role == "test"
    assert c.length_m == pytest.approx(428.7, rel=0.01)
    assert bbox_ok(c, 107.0, 103.6)
    assert c.w_left + c.w_right == pytest.approx(3.1)
    assert c.meta.line_width_m == pytest.approx(0.10)
    assert c.meta.reference_lap_time_s == 68
    x, y, yaw = c.spawn_pose
    assert math.hypot(x - 53.462, y + 10.734) < 0.2  # the measured spawn
    assert math.hypot(x - c.xy[0, 0], y - c.xy[0, 1]) < 0.01  # on the first point of the line
    assert yaw == pytest.approx(c.heading[0], abs=0.01)


def test_simple_circuit_passes_the_measured_segment_starts() -> None:
    spec = json.loads((TRACKS_DIR / "simple_circuit.json").read_text())
    c = Circuit.from_name("simple")
    for seg in spec["segments"]:
        _, d = c.project(np.array(seg["start_xy_m"]))
        assert abs(d) < 0.4, seg


@pytest.mark.parametrize(
    ("name", "lap_m", "line_m", "reference_s"),
    [("montreal", 1438.0, 0.10, 225.0), ("montmelo", 744.0, 0.12, 111.0)],
)
def test_tumftm_test_circuit_facts(name: str, lap_m: float, line_m: float, reference_s: float) -> None:
    c = Circuit.from_name(name)
    assert c.meta.role == "test"
    assert c.length_m == pytest.approx(lap_m, rel=0.01)
    assert c.w_left + c.w_right == pytest.approx(3.0)
    assert c.meta.line_width_m == pytest.approx(line_m)
    assert c.meta.reference_lap_time_s == reference_s
    assert c.meta.licence == "LGPL-3.0"
    assert "TUMFTM" in c.meta.source and "OpenStreetMap" in c.meta.source


def test_the_test_circuits_are_those_of_the_published_study() -> None:
    assert evaluation_circuits() == ["montmelo", "montreal", "simple"]


@pytest.mark.parametrize("name", evaluation_circuits())
def test_test_circuits_run_clockwise(name: str) -> None:
    c = Circuit.from_name(name)
    total_turn = float(np.sum(c.curvature)) * c.length_m / len(c.xy)
    assert total_turn == pytest.approx(-2 * math.pi, abs=0.01)


def test_training_circuits() -> None:
    train = shipped("train")
    assert len([c for c in train if "TUMFTM" in c.meta.source]) >= 10
    assert len([c for c in train if c.name.startswith("gen-")]) >= 5
    for c in train:
        assert 500 <= c.length_m <= 2000, c.name
        assert c.w_left + c.w_right == pytest.approx(3.0), c.name
        assert c.meta.source and c.meta.licence, c.name
    for c in shipped("test"):
        assert c.meta.source.split(";")[0] not in {t.meta.source.split(";")[0] for t in train}


# ----------------------------------------------------------------------------------- generator
def test_generator_is_deterministic_per_seed() -> None:
    a, b = generate_loop(7), generate_loop(7)
    assert a.meta == b.meta
    assert np.array_equal(a.control_points, b.control_points)


def test_generator_gives_different_loops_for_different_seeds() -> None:
    loops = [generate_loop(seed) for seed in (11, 12, 13)]
    lengths = {round(c.length_m, 3) for c in loops}
    assert len(lengths) == 3


@pytest.mark.parametrize("seed", range(20, 26))
def test_generated_loops_are_valid_training_loops(seed: int) -> None:
    c = generate_loop(seed)
    assert 500 <= c.length_m <= 2000
    assert c.min_radius_m >= 4.0
    assert c.w_left + c.w_right == pytest.approx(3.0)
    assert c.meta.role == "train" and f"seed={seed}" in c.meta.source
