"""Bad circuit input: every bad file, header, scale or size is one ``CircuitError`` line (what,
where, what to do), never a traceback, a stall, a ``MemoryError`` or a silent acceptance.

Real files in ``tmp_path`` go through the real loaders (``Circuit.from_file``, the TUMFTM
``convert``) and, for a few, through ``python -m simeval.circuits`` in a subprocess (exit 2, one
stderr line). Both loaders are also fuzzed with hypothesis; the crashes it found are kept as
``@example`` cases.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from simeval.circuits import main
from simeval.errors import CircuitError
from simeval.paths import REPO_ROOT
from simeval.track.catalogue import shipped
from simeval.track.circuit import Circuit
from simeval.track.circuit_file import CircuitMeta, read_circuit_file
from simeval.track.crossing import check_no_self_crossing
from simeval.track.limits import MAX_POINTS
from simeval.track.recipe import sources_dir
from simeval.track.tumftm import convert

FUZZ = settings(max_examples=500, deadline=None, database=None, suppress_health_check=list(HealthCheck))
TIME_BOUND_S = 5.0
"""Most wall time one fuzzed file may take to load or be refused (a robustness bound, not a benchmark)."""
HANG_BOUND_S = 5.0
"""Most wall time of a refusal (well under a second): tells it from the hangs and huge allocations
it replaces, with room for a loaded machine; bench/circuits.py prints the figures."""
COLUMNS = "x_m,y_m,w_right_m,w_left_m"
TUMFTM_HEADER = "# x_m,y_m,w_tr_right_m,w_tr_left_m"
SPIELBERG = sources_dir() / "tumftm" / "Spielberg.csv"


@pytest.fixture(autouse=True)
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own user circuit folder (never ~/.simeval)."""
    folder = tmp_path / "user-circuits"
    folder.mkdir()
    monkeypatch.setenv("SIMEVAL_CIRCUITS_DIR", str(folder))
    return folder


def ring(radius: float = 30.0, count: int = 120, width: float = 1.5) -> list[str]:
    """Rows of a counter-clockwise circle of half width ``width``."""
    phi = np.linspace(0.0, 2 * math.pi, count, endpoint=False)
    return [f"{radius * math.cos(p):.4f},{radius * math.sin(p):.4f},{width},{width}" for p in phi]


def circuit_text(name: str = "bad", extra: str = "", rows: list[str] | None = None) -> str:
    """A circuit file: format and name lines, ``extra`` header lines, the columns, the rows."""
    rows = ring() if rows is None else rows
    return f'# format: "simeval-circuit/1"\n# name: "{name}"\n{extra}{COLUMNS}\n' + "\n".join(rows) + "\n"


def cli(*args: str, env_dir: Path) -> subprocess.CompletedProcess[str]:
    """``python -m simeval.circuits ARGS`` as a user runs it (stderr is not a terminal: no progress bar)."""
    env = {**os.environ, "SIMEVAL_CIRCUITS_DIR": str(env_dir)}
    return subprocess.run(
        [sys.executable, "-m", "simeval.circuits", *args], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=60
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------ 1. the circuit file's header
@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ("# spawn: 5\n", r":3: header spawn must be null or \[x_m, y_m, yaw_rad\].*got 5; fix that line"),
        ('# spawn: "abc"\n', r":3: header spawn must be .*got \"abc\""),
        ("# spawn: [1, 2]\n", r":3: header spawn must be .*got \[1, 2\]"),
        ("# spawn: [NaN, 0, 0]\n", r":3: header spawn must be .*got \[NaN, 0, 0\]"),
        ('# reference_lap_time_s: "abc"\n', r":3: header reference_lap_time_s must be null or a finite number"),
        ("# reference_lap_time_s: NaN\n", r"reference_lap_time_s must be .*got NaN"),
        ("# reference_lap_time_s: Infinity\n", r"reference_lap_time_s must be .*got Infinity"),
        ("# reference_lap_time_s: -5\n", r"reference_lap_time_s must be .*> 0, got -5"),
        ("# reference_lap_time_s: 0\n", r"reference_lap_time_s must be .*> 0, got 0"),
        ("# scale: true\n", r"header scale must be a number from 0\.0001 to 10000, got true"),
        ("# scale: 1e9\n", r"header scale must be a number from 0\.0001 to 10000, got 1000000000\.0"),
        ("# role: 5\n", r"header role must be one of test, train, user, got 5"),
        ("# source: 3\n", r"header source must be a string, got 3"),
        ("# licence: null\n", r"header licence must be a string, got null"),
        ("# notes: [1]\n", r"header notes must be a string, got \[1\]"),
        ('# line_width_m: "x"\n', r"header line_width_m must be a finite number > 0"),
        ("# wall_height_m: 1e999\n", r"header wall_height_m must be a finite number > 0, got Infinity"),
        ("# scale: 1\n# scale: 2\n", r":4: header 'scale' again \(first on line 3\); keep one"),
        ("# scael: 1\n", r":3: unknown header key 'scael' \(did you mean 'scale'\?\)"),
        ("# spawn: [1, 2, \n", r":3: header 'spawn' must be a JSON value"),
        ("# spawn: [500, 0, 0]\n", r"spawn \(500, 0\) is 470 m from the centre line, off the road"),
    ],
)
def test_bad_header_value_is_one_line_naming_file_and_line(tmp_path: Path, extra: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(circuit_text(extra=extra))
    with pytest.raises(CircuitError, match=match) as info:
        Circuit.from_file(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("name_line", "match"),
    [
        ("# name: 123\n", r":2: header name must be 1 to 64 lower-case letters.*got 123"),
        ("# name: null\n", r"header name must be .*got null"),
        ('# name: ""\n', r"header name must be .*got \"\""),
        ('# name: "../../etc"\n', r"header name must be .*got \"\.\./\.\./etc\""),
        ("", r"header has no 'name'; add a line '# name: \"bad\"'"),
    ],
)
def test_bad_or_missing_name(tmp_path: Path, name_line: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f'# format: "simeval-circuit/1"\n{name_line}{COLUMNS}\n' + "\n".join(ring()) + "\n")
    with pytest.raises(CircuitError, match=match):
        Circuit.from_file(path)


@pytest.mark.parametrize(
    ("format_line", "match"),
    [
        ("# format: simeval-circuit/1\n", r"bad\.csv:1: not a simeval-circuit/1 file \(format is 'simeval-circuit/1'\)"),
        ('# format: "simeval-circuit/2"\n', r"format is '\"simeval-circuit/2\"'\); the line must read"),
        ("", r"bad\.csv: not a simeval-circuit/1 file \(no '# format: \"simeval-circuit/1\"' line\)"),
    ],
)
def test_bad_format_line(tmp_path: Path, format_line: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f'{format_line}# name: "bad"\n{COLUMNS}\n' + "\n".join(ring()) + "\n")
    with pytest.raises(CircuitError, match=match):
        Circuit.from_file(path)


# -------------------------------------------------------------------- 1. the circuit file's bytes
def test_a_byte_order_mark_is_fine(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_text(circuit_text("bom"), encoding="utf-8-sig")
    assert Circuit.from_file(path).name == "bom"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b'# format: "simeval-circuit/1"\n# name: "caf\xe9"\n', r"bad\.csv:2: not UTF-8 text \(byte 0xe9\); save the file as UTF-8"),
        (b"", r"bad\.csv: no column header 'x_m,y_m,w_right_m,w_left_m' found"),
        (circuit_text(rows=[]).encode(), r"bad\.csv: a closed circuit needs at least 4 points, got 0; add its rows"),
        (circuit_text(rows=[*ring(), "1,2,3"]).encode(), r"bad\.csv:124: expected 4 values .* got 3 in '1,2,3'; fix that row"),
        (circuit_text(rows=[*ring(), "1,2,3,4,5"]).encode(), r"bad\.csv:124: expected 4 values"),
        (circuit_text(rows=["1,north,1.5,1.5", *ring()]).encode(), r"bad\.csv:4: column y_m is not a number: 'north'"),
        (circuit_text(rows=["nan,0,1.5,1.5", *ring()]).encode(), r"bad\.csv:4: column x_m is nan; every value must be a finite"),
        (circuit_text(rows=["inf,0,1.5,1.5", *ring()]).encode(), r"bad\.csv:4: column x_m is inf"),
        (circuit_text(rows=[*ring()[:5], "9,9,-1.5,1.5"]).encode(), r"bad\.csv:9: column w_right_m is -1\.5; track widths must be > 0"),
    ],
)
def test_bad_file_content_names_file_and_row(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(CircuitError, match=match):
        Circuit.from_file(path)


def test_a_folder_is_not_a_circuit_file(tmp_path: Path) -> None:
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(CircuitError, match=r"dir\.csv: not a regular file"):
        Circuit.from_file(tmp_path / "dir.csv")


def test_cli_show_of_a_broken_file_is_one_line_and_exit_2(user_dir: Path) -> None:
    (user_dir / "broken.csv").write_text(circuit_text("broken", extra="# reference_lap_time_s: NaN\n"))
    assert_one_error_line(cli("show", "broken", env_dir=user_dir), "broken.csv:3:", "reference_lap_time_s")


# ------------------------------------------------------------------------ 2. one broken user file
def test_list_shows_a_broken_file_as_its_error_and_exits_0(user_dir: Path) -> None:
    (user_dir / "broken.csv").write_text(circuit_text("broken", extra="# spawn: 5\n"))
    (user_dir / "fine.csv").write_text(circuit_text("fine"))
    result = cli("list", env_dir=user_dir)
    assert result.returncode == 0 and result.stderr == ""
    rows = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert "montreal" in rows and rows["fine"].split()[1] == "user"
    assert rows["broken"].split()[1] == "?"
    assert "unreadable: " in rows["broken"] and "broken.csv:3: header spawn must be" in rows["broken"]


def test_a_broken_user_file_does_not_stop_other_circuits_loading(user_dir: Path) -> None:
    (user_dir / "broken.csv").write_bytes(b"\xff\xfe garbage")
    (user_dir / "fine.csv").write_text(circuit_text("fine"))
    assert Circuit.from_name("fine").name == "fine"
    assert Circuit.from_name("simple").name == "simple"
    assert main(["list"]) == 0


# ------------------------------------------------------------------------- 4. bounds on geometry
def tumftm_ring(path: Path, radius: float, count: int = 60, width: float = 2.0) -> Path:
    phi = np.linspace(0.0, -2 * math.pi, count, endpoint=False)
    lines = [f"{radius * math.cos(p):.6f},{radius * math.sin(p):.6f},{width},{width}" for p in phi]
    path.write_text("\n".join([TUMFTM_HEADER, *lines]) + "\n")
    return path


@pytest.mark.parametrize(
    ("radius", "scale", "road", "match"),
    [
        (1e12, 1.0, None, r"lap is 6\.28e\+12 m, longer than the limit of 10,000 m; .* --scale 1:6\.28e\+09 for a lap"),
        (1e6, 1.0, None, r"lap is 6\.28e\+06 m, longer than the limit of 10,000 m"),
        (100.0, 1e-3, 3.0, r"lap is 0\.628 m, shorter than the limit of 10 m; .*--scale 1\.592:1 for a lap"),
        (100.0, 1.0, 0.6, r"road width 0\.6 m: it must be at least 1 m \(the 0\.5 m car plus 0\.25 m each side\)"),
        (100.0, 1.0, 80.0, r"road width 80 m: the limit is 50 m"),
        (100.0, 0.2, None, r"at scale 1:5: data row 1: the right wall is 0\.4 m from the centre line, narrower than"),
    ],
)
def test_geometry_out_of_bounds_is_refused_at_once(
    tmp_path: Path, radius: float, scale: float, road: float | None, match: str
) -> None:
    path = tumftm_ring(tmp_path / "track.csv", radius)
    start = time.perf_counter()
    with pytest.raises(CircuitError, match=match):
        convert(path, CircuitMeta("t", scale=scale), road_width_m=road)
    assert time.perf_counter() - start < HANG_BOUND_S


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (ring(radius=1e9), r"bad\.csv: the lap is 6\.28\d*e\+09 m, longer than the limit of 10,000 m"),
        (ring(radius=1.0), r"bad\.csv: the lap is 6\.28\d* m, shorter than the limit of 10 m; is the file in metres\?"),
        (ring(width=0.2), r"bad\.csv: data row 1: the right wall is 0\.2 m .* narrower than the limit of 0\.5 m"),
        (ring(width=40), r"bad\.csv: data row 1: the right wall is 40 m .* wider than the limit of 25 m"),
    ],
)
def test_circuit_file_out_of_bounds_is_refused(tmp_path: Path, rows: list[str], match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(circuit_text(rows=rows))
    with pytest.raises(CircuitError, match=match):
        Circuit.from_file(path)


@pytest.mark.parametrize(
    ("scale", "needles"),
    [
        ("1e4", ["the lap is 4.315e+07 m, longer than the limit of 10,000 m", "--scale 1:4.315"]),
        ("1e10", ["scale '1e10' is outside the limits 0.0001 to 10000"]),
        ("1e-5", ["scale '1e-5' is outside the limits 0.0001 to 10000"]),
    ],
)
def test_cli_import_with_a_wild_scale_is_one_line_and_exit_2(user_dir: Path, scale: str, needles: list[str]) -> None:
    start = time.perf_counter()
    result = cli("import", str(SPIELBERG), "--name", "typo", "--scale", scale, env_dir=user_dir)
    assert_one_error_line(result, *needles)
    assert time.perf_counter() - start < 20  # start-up included; the refusal itself is instant
    assert not (user_dir / "typo.csv").exists()


def test_a_million_point_file_is_refused_at_once(tmp_path: Path) -> None:
    """Refused before it is parsed (0.5 s here, start-up excluded: bench/circuits.py prints it)."""
    path = tmp_path / "million.csv"
    path.write_text(TUMFTM_HEADER + "\n" + "1.0,2.0,3.0,3.0\n" * 1_000_000)
    start = time.perf_counter()
    with pytest.raises(CircuitError, match=rf"million\.csv: 1,000,000 rows, more than the limit of {MAX_POINTS:,}"):
        convert(path, CircuitMeta("m"))
    assert time.perf_counter() - start < HANG_BOUND_S


def test_crowded_points_are_smoothed_within_bounds(tmp_path: Path) -> None:
    """200 points 5 micrometres apart in a 1 km loop: a median spacing of 5e-6 m once asked the
    smoothing for 10^9 samples."""
    phi = np.linspace(0.0, -2 * math.pi, 60, endpoint=False)
    xy = np.column_stack([160 * np.cos(phi), 160 * np.sin(phi)])
    along = (xy[11] - xy[10]) / np.hypot(*(xy[11] - xy[10]))
    crowd = xy[10] + np.outer(np.arange(1, 201) * 5e-6, along)
    lines = [f"{x:.6f},{y:.6f},2,2" for x, y in np.vstack([xy[:11], crowd, xy[11:]])]
    path = tmp_path / "crowd.csv"
    path.write_text("\n".join([TUMFTM_HEADER, *lines]) + "\n")
    start = time.perf_counter()
    assert convert(path, CircuitMeta("crowd")).length_m == pytest.approx(2 * math.pi * 160, rel=0.005)
    assert time.perf_counter() - start < 5.0


def test_a_huge_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as f:
        f.truncate(100 * 2**20)  # sparse: costs no disk
    with pytest.raises(CircuitError, match=r"huge\.csv: the file is 100 MiB, more than the limit of 64 MiB"):
        Circuit.from_file(path)


# ------------------------------------------------------------------ 4. the self-crossing check
def brute_force_crossing(xy: np.ndarray) -> tuple[int, int] | None:
    """The O(n^2) check the grid replaced: the first pair (i, j), j > i + 1, that crosses strictly."""
    n = len(xy)
    a, b = xy, np.roll(xy, -1, axis=0)
    for i in range(n):
        for j in range(i + 2, n):
            if j - i == n - 1:
                continue
            r, s, qp = b[i] - a[i], b[j] - a[j], a[j] - a[i]
            denom = r[0] * s[1] - r[1] * s[0]
            if denom == 0:
                continue
            t = (qp[0] * s[1] - qp[1] * s[0]) / denom
            u = (qp[0] * r[1] - qp[1] * r[0]) / denom
            if 0 < t < 1 and 0 < u < 1:
                return i, j
    return None


def grid_crossing(xy: np.ndarray) -> tuple[int, int] | None:
    try:
        check_no_self_crossing(xy, "w")
    except CircuitError as exc:
        rows = str(exc).split("between data rows ")[1].split(":")[0].split(" and ")
        return int(rows[0].split("-")[0]) - 1, int(rows[1].split("-")[0]) - 1
    return None


polylines = st.integers(4, 14).flatmap(
    lambda n: st.lists(st.tuples(st.integers(-4, 4), st.integers(-4, 4)), min_size=n, max_size=n)
)


@settings(max_examples=300, deadline=None, database=None)
@given(points=polylines, size=st.sampled_from([1e-6, 1.0, 3.7, 1e6]))
def test_grid_crossing_check_finds_what_the_brute_force_found(points: list[tuple[int, int]], size: float) -> None:
    """Small integer grids make touching, collinear and repeated points, the cases that matter."""
    xy = np.array(points, dtype=np.float64) * size
    assert grid_crossing(xy) == brute_force_crossing(xy)


def test_shipped_circuits_do_not_cross_themselves() -> None:
    for name, path in shipped().items():
        _, rows = read_circuit_file(path)
        check_no_self_crossing(rows[:, :2], name)


def test_crossing_check_of_100k_points_is_fast() -> None:
    t = np.linspace(0.0, 2 * math.pi, 100_000, endpoint=False) + math.pi / 100_000  # no vertex on the crossing
    wobbly = (1 + 0.1 * np.cos(5 * t))[:, None] * np.column_stack([1000 * np.cos(t), 700 * np.sin(t)])
    eight = np.column_stack([1000 * np.sin(t), 500 * np.sin(2 * t)])
    start = time.perf_counter()
    check_no_self_crossing(wobbly, "w")
    with pytest.raises(CircuitError, match="w: the centre line crosses itself between data rows 50000-50001 and 100000-1:"):
        check_no_self_crossing(eight, "w")
    assert time.perf_counter() - start < 2.0


# ------------------------------------------------------------- 5. fuzzing the circuit file reader
def refusal(exc: CircuitError) -> str:
    """The kind of a refusal, for hypothesis's statistics (``--hypothesis-show-statistics``)."""
    text = re.sub(r"^.*?\.csv(:\d+)?(?: at scale \S+)?: ", "", str(exc))
    return re.sub(r"-?\d[\d.e+-]*|'[^']*'|\"[^\"]*\"", "#", text)[:50]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
plausible_values = st.sampled_from(['"user"', '"train"', "1.0", "0.5", "225.0", "null", "[30.0, 0.0, 1.57]", '"text"'])
header_lines = st.lists(
    st.tuples(
        st.sampled_from(["role", "source", "licence", "scale", "line_width_m", "wall_height_m",
                         "reference_lap_time_s", "spawn", "notes", "nmae", ""]),
        plausible_values | json_values.map(json.dumps) | st.text(max_size=12),
    ),
    max_size=4,
    unique_by=lambda line: line[0],
)
cells = st.sampled_from(["nan", "inf", "-1", "0", "", "x", "1e400", "1,2", " 3 ", "1e-9"]) | st.floats().map(str)
few = st.integers(0, 9).map(lambda k: max(0, k - 7))
"""How many things to break: mostly none, so that many fuzzed files load and reach the geometry checks."""


@st.composite
def circuit_files(draw: st.DrawFn) -> bytes:
    """A good circuit file, then a few of its header values, rows, cells and bytes changed."""
    radius = draw(st.sampled_from([30.0, 30.0, 30.0, 400.0, 2e3, 3.0, 0.5, 1e7]))
    width = draw(st.sampled_from([1.5, 1.5, 1.5, 0.6, 3.0, 0.1, 30.0]))
    rows = [row.split(",") for row in ring(radius, draw(st.integers(0, 80)), width)]
    for _ in range(draw(few)):
        if rows:
            rows[draw(st.integers(0, len(rows) - 1))][draw(st.integers(0, 3))] = draw(cells)
    name = '"fuzz"' if draw(few) == 0 else draw(st.sampled_from(["123", "null", '""', '"Fuzz Me"']))
    header = draw(header_lines) if draw(few) else []
    extra = "".join(f"# {key}: {value}\n" for key, value in [("name", name), *header])
    data = (f'# format: "simeval-circuit/1"\n{extra}{COLUMNS}\n' + "\n".join(",".join(row) for row in rows) + "\n").encode()
    if draw(st.booleans()):
        data = b"\xef\xbb\xbf" + data
    for _ in range(draw(few) // 2):
        at = draw(st.integers(0, len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=3)) + data[at:]
    return data


@FUZZ
@given(data=circuit_files())
# Before: a TypeError traceback, a NaN lap time accepted, "expected X, found X", an OverflowError.
@example(data=circuit_text(extra="# spawn: 5\n").encode())
@example(data=circuit_text(extra="# reference_lap_time_s: NaN\n").encode())
@example(data=b"\xef\xbb\xbf" + circuit_text().encode())
@example(data=circuit_text(extra="# scale: 123456789012345678901234567890123456789012345678901234567890" + "0" * 300 + "\n").encode())
def test_fuzzed_circuit_files_load_or_raise_circuit_error(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "fuzz.csv"
    path.write_bytes(data)
    start = time.perf_counter()
    try:
        Circuit.from_file(path)
        event("loaded")
    except CircuitError as exc:
        assert "\n" not in str(exc)
        event(refusal(exc))
    assert time.perf_counter() - start < TIME_BOUND_S


# ---------------------------------------------------------------- 3. fuzzing the TUMFTM importer
@st.composite
def tumftm_cases(draw: st.DrawFn) -> tuple[list[str], float]:
    """Rows of a rough loop (4 to 40 points, millimetres to kilometres across, written to 0-6
    decimals, sometimes a row changed) and a scale that makes its lap 6 m to 1 km (the lap limits have
    tests of their own; long laps only take longer), its walls 0.3 to 30 m from the centre line."""
    n = draw(st.integers(4, 40))
    size = 10 ** draw(st.floats(-2, 4))
    scale = 10 ** draw(st.floats(0.8, 3.0)) / (2 * math.pi * size)
    half_width = 10 ** draw(st.floats(-0.5, 1.5)) / scale
    steps = np.cumsum(draw(st.lists(st.floats(0.2, 1.0), min_size=n, max_size=n)))
    phi = 2 * math.pi * (steps - steps[0]) / steps[-1]  # a star-shaped loop: crosses itself only when rounded
    radii = draw(st.lists(st.floats(0.8, 1.2), min_size=n, max_size=n))
    widths = draw(st.lists(st.floats(0.8, 1.25), min_size=n, max_size=n))
    digits = max(0, 3 - math.floor(math.log10(size)) - draw(few))  # a coarse file repeats points
    rows = [
        f"{size * r * math.cos(p):.{digits}f},{size * r * math.sin(p):.{digits}f},{half_width * w:.6g},{half_width * w:.6g}"
        for p, r, w in zip(phi, radii, widths, strict=True)
    ]
    for _ in range(draw(few)):
        rows[draw(st.integers(0, n - 1))] = ",".join(draw(st.lists(cells, min_size=1, max_size=5)))
    return rows, scale


@FUZZ
@given(case=tumftm_cases(), road=st.none() | st.floats(0.5, 60.0))
# Crashes of the importer before the limits (each a ValueError from scipy's KD-tree: a loop scaled
# to nothing made a resampled centre line of NaN):
@example(case=(["3,2,1.345,1.345", "-1,5,5.689,5.689", "-2,5,5.579,5.579", "-2,-2,3.959,3.959"], 1e-4), road=None)
@example(case=(["0.0425,0.0263,2.000,2.000", "0.6082,0.5544,1.663,1.663", "-0.6327,0.4799,19.536,19.536",
                "-0.0415,-0.1957,12.162,12.162"], 1e-3), road=None)
@example(case=(["105.431,0.000,27.916,27.916", "32.708,0.000,15.323,15.323", "13.964,0.000,9.944,9.944",
                "60.237,0.000,0.122,0.122", "48.507,2.726,24.925,24.925", "25.192,49.496,8.747,8.747"], 1e-5), road=3.96)
# ... and the MemoryError of a loop scaled far up (365 TiB asked for):
@example(case=([f"{1e12 * math.cos(p):.1f},{1e12 * math.sin(p):.1f},2,2" for p in np.linspace(0, 6, 40)], 1.0), road=None)
def test_fuzzed_tumftm_files_convert_or_raise_circuit_error(
    tmp_path_factory: pytest.TempPathFactory, case: tuple[list[str], float], road: float | None
) -> None:
    rows, scale = case
    path = tmp_path_factory.mktemp("fuzz") / "track.csv"
    path.write_text("\n".join([TUMFTM_HEADER, *rows]) + "\n")
    start = time.perf_counter()
    try:
        convert(path, CircuitMeta("t", scale=scale), road_width_m=road)
        event("converted")
    except CircuitError as exc:
        assert "\n" not in str(exc)
        event(refusal(exc))
    assert time.perf_counter() - start < TIME_BOUND_S
