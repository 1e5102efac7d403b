"""Reading and converting TUMFTM racetrack-database CSVs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from simeval.errors import CircuitError
from simeval.track.circuit_file import CircuitMeta
from simeval.track.geometry import loop_length
from simeval.track.recipe import sources_dir
from simeval.track.tumftm import convert, parse_scale, read_tumftm

TUMFTM_DIR = sources_dir() / "tumftm"
HEADER = "# x_m,y_m,w_tr_right_m,w_tr_left_m"


def loop_lines(count: int = 60, radius: float = 100.0) -> list[str]:
    """A clockwise circle, 4 m wide, as TUMFTM data rows."""
    phi = np.linspace(0.0, -2 * math.pi, count, endpoint=False)
    return [f"{radius * math.cos(p):.6f},{radius * math.sin(p):.6f},2.0,2.0" for p in phi]


def write(tmp_path: Path, lines: list[str], header: str = HEADER, name: str = "track.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n")
    return path


def test_reads_a_good_file(tmp_path: Path) -> None:
    rows = read_tumftm(write(tmp_path, loop_lines()))
    assert rows.shape == (60, 4)
    assert rows[0] == pytest.approx([100.0, 0.0, 2.0, 2.0])


def test_drops_a_repeated_closing_point(tmp_path: Path) -> None:
    lines = loop_lines()
    assert len(read_tumftm(write(tmp_path, [*lines, lines[0]]))) == 60


def test_converts_with_scale_and_road_width(tmp_path: Path) -> None:
    circuit = convert(write(tmp_path, loop_lines()), CircuitMeta("c", scale=0.5), road_width_m=3.0)
    assert circuit.length_m == pytest.approx(2 * math.pi * 100 * 0.5, rel=0.005)
    assert circuit.w_left + circuit.w_right == pytest.approx(3.0)
    assert circuit.xy[0] == pytest.approx([50.0, 0.0], abs=0.3)  # the start line stays where it was
    assert circuit.heading[0] == pytest.approx(-math.pi / 2, abs=0.02)  # clockwise, as in the file


def test_keeps_the_files_widths_times_the_scale(tmp_path: Path) -> None:
    circuit = convert(write(tmp_path, loop_lines()), CircuitMeta("c", scale=parse_scale("1:2")))
    assert circuit.w_right == pytest.approx(1.0, abs=1e-6)
    assert circuit.w_left == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(("text", "scale"), [("0.33", 0.33), ("1:3.03", 1 / 3.03), ("2:1", 2.0), (0.5, 0.5)])
def test_parse_scale(text: str | float, scale: float) -> None:
    assert parse_scale(text) == pytest.approx(scale)


@pytest.mark.parametrize("text", ["", "abc", "1:0", "0", "-1", "1:2:3", "nan"])
def test_parse_scale_refuses(text: str) -> None:
    with pytest.raises(CircuitError, match="scale"):
        parse_scale(text)


# --------------------------------------------------------------------------------------- bad files
def bad_row(index: int, replacement: str) -> list[str]:
    lines = loop_lines()
    lines[index] = replacement
    return lines


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (bad_row(4, "1.0,2.0,3.0"), r"track\.csv:6: expected 4 values"),
        (bad_row(4, "1.0,2.0,3.0,4.0,5.0"), r"track\.csv:6: expected 4 values"),
        (bad_row(9, "1.0,north,2.0,2.0"), r"track\.csv:11: column y_m is not a number"),
        (bad_row(2, "nan,0.0,2.0,2.0"), r"track\.csv:4: column x_m is nan"),
        (bad_row(2, "0.0,inf,2.0,2.0"), r"track\.csv:4: column y_m is inf"),
        (bad_row(7, "10.0,0.0,0.0,2.0"), r"track\.csv:9: column w_tr_right_m is 0\.0; track widths must be > 0"),
        (bad_row(7, "10.0,0.0,2.0,-1"), r"track\.csv:9: column w_tr_left_m is -1"),
        (loop_lines()[:3], r"track\.csv: a closed track needs at least 4 points, got 3"),
        (loop_lines()[:5] + loop_lines()[4:], r"track\.csv:7: repeats the point of line 6"),
        (bad_row(30, loop_lines()[10]), r"track\.csv:32: repeats the point of line 12"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, lines: list[str], match: str) -> None:
    with pytest.raises(CircuitError, match=match):
        read_tumftm(write(tmp_path, lines))


def test_figure_of_eight_names_file_and_rows(tmp_path: Path) -> None:
    t = np.linspace(0.0, 2 * math.pi, 40, endpoint=False) + 0.05  # no point on the crossing itself
    lines = [f"{50 * math.sin(v):.4f},{30 * math.sin(2 * v):.4f},2.0,2.0" for v in t]
    with pytest.raises(
        CircuitError,
        match=r"track\.csv \(data row 1 is line 2\): the centre line crosses itself "
        r"between data rows \d+-\d+ and \d+-\d+",
    ):
        read_tumftm(write(tmp_path, lines))


@pytest.mark.parametrize(
    "header",
    ["# x,y,w_right,w_left", "x_m,y_m,w_right_m,w_left_m", "# x_m,y_m", '# format: "simeval-circuit/1"'],
)
def test_foreign_header_lists_expected_and_found_columns(tmp_path: Path, header: str) -> None:
    with pytest.raises(CircuitError) as info:
        read_tumftm(write(tmp_path, loop_lines(), header=header))
    message = str(info.value)
    assert "track.csv:1: not a TUMFTM header" in message
    assert "expected columns x_m, y_m, w_tr_right_m, w_tr_left_m" in message
    assert "found " + header.lstrip("# ").split(",")[0] in message


def test_data_without_header(tmp_path: Path) -> None:
    with pytest.raises(CircuitError, match="track.csv:1: not a TUMFTM header"):
        read_tumftm(write(tmp_path, loop_lines()[1:], header=loop_lines()[0]))


def test_missing_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(CircuitError, match=r"nowhere\.csv: no such file"):
        read_tumftm(tmp_path / "nowhere.csv")
    (tmp_path / "empty.csv").write_text("\n")
    with pytest.raises(CircuitError, match=r"empty\.csv: the file is empty"):
        read_tumftm(tmp_path / "empty.csv")


def test_road_too_wide_for_its_bends_names_file_and_scale(tmp_path: Path) -> None:
    with pytest.raises(CircuitError, match=r"track\.csv at scale 1:50: bend .* tighter than the road"):
        convert(write(tmp_path, loop_lines()), CircuitMeta("c", scale=0.02), road_width_m=4.0)


# ------------------------------------------------------------------------------------- smoothing
def test_smoothing_removes_spline_spikes_and_keeps_the_lap() -> None:
    """Catalunya at 1:6.25: a plain spline bends at 1.64 m; the real tightest bend is about 2.4 m."""
    path = TUMFTM_DIR / "Catalunya.csv"
    circuit = convert(path, CircuitMeta("montmelo", scale=1 / 6.25), road_width_m=3.0)
    raw_lap = loop_length(read_tumftm(path)[:, :2]) / 6.25
    assert circuit.length_m == pytest.approx(raw_lap, rel=0.005)
    assert 2.1 < circuit.min_radius_m < 2.6
