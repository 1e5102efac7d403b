"""Bad options and broken model files: one line on stderr (what, where, what to do), exit 2,
before anything runs or is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from simeval.run import main as run_main
from simeval.sweep import main as sweep_main


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--max-time-s", "-5"], "max_time_s must be a number of seconds > 0, got -5.0"),
        (["--max-time-s", "nan"], "max_time_s must be a number of seconds > 0, got nan"),
        (["--seed", "-1"], "seed must be >= 0, got -1"),
        (["--renderer", "pybulet"], "Did you mean 'pybullet'?"),
        (["--start", "randon"], "Did you mean 'random'?"),
    ],
)
def test_bad_run_options_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needle: str) -> None:
    assert run_main(["--agent", "expert", "--out", str(tmp_path / "lap"), *argv]) == 2
    assert needle in one_error_line(capsys)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_out_below_a_file_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    (tmp_path / "notes.txt").write_text("a file, not a folder")
    out = tmp_path / "notes.txt" / "lap"
    if command == "run":
        assert run_main(["--agent", "expert", "--out", str(out)]) == 2
    else:
        assert sweep_main(["--agents", "expert", "--circuits", "simple", "--out", str(out), "--no-progress"]) == 2
    assert f"{tmp_path / 'notes.txt'} is a file, not a folder; pass --out with a folder path" in one_error_line(capsys)


def test_a_damaged_state_dict_is_not_taken_for_a_pickled_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    model = tmp_path / "model.pth"
    model.write_bytes(bytes(range(256)) * 4)
    assert run_main(["--agent", str(model), "--out", str(tmp_path / "lap")]) == 2
    line = one_error_line(capsys)
    assert "model.pth: not a torch state dict" in line and "weights_only" not in line and "make models" not in line


def test_an_empty_keras_file_says_it_is_empty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("keras")
    model = tmp_path / "model.keras"
    model.touch()
    assert run_main(["--agent", str(model), "--out", str(tmp_path / "lap")]) == 2
    assert "model.keras: the file is empty" in one_error_line(capsys)
