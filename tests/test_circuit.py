"""Circuit geometry and the project's own circuit file format."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from simeval.errors import CircuitError
from simeval.track.circuit import Circuit, CircuitMeta

RADIUS_M = 30.0


def circle_rows(radius: float = RADIUS_M, count: int = 120, w_right: float = 1.5, w_left: float = 1.5) -> np.ndarray:
    """Counter-clockwise circle starting at (radius, 0)."""
    phi = np.linspace(0.0, 2 * math.pi, count, endpoint=False)
    return np.column_stack(
        [radius * np.cos(phi), radius * np.sin(phi), np.full(count, w_right), np.full(count, w_left)]
    )


@pytest.fixture
def circle() -> Circuit:
    return Circuit.from_points(circle_rows(), CircuitMeta("circle"))


@pytest.fixture
def wavy() -> Circuit:
    """An ellipse with a wobble and varying widths: curvature of both signs, no symmetry to hide bugs."""
    phi = np.linspace(0.0, 2 * math.pi, 300, endpoint=False)
    r = 1 + 0.15 * np.cos(3 * phi)
    rows = np.column_stack(
        [80 * r * np.cos(phi), 50 * r * np.sin(phi), 1.2 + 0.3 * np.sin(phi), 1.8 - 0.3 * np.cos(phi)]
    )
    return Circuit.from_points(rows, CircuitMeta("wavy", line_width_m=0.12))


def test_length_of_a_circle(circle: Circuit) -> None:
    assert circle.length_m == pytest.approx(2 * math.pi * RADIUS_M, abs=0.3)


def test_vertices_are_uniformly_spaced(wavy: Circuit) -> None:
    steps = np.hypot(*np.diff(np.vstack([wavy.xy, wavy.xy[:1]]), axis=0).T)
    assert steps == pytest.approx(0.25, abs=2e-3)


def test_heading_of_a_counter_clockwise_circle(circle: Circuit) -> None:
    s = np.array([0.0, circle.length_m / 4, circle.length_m / 2])
    expected = np.array([math.pi / 2, math.pi, -math.pi / 2])
    assert np.angle(np.exp(1j * (circle.heading_at(s) - expected))) == pytest.approx(0.0, abs=0.01)


def test_curvature_of_a_circle(circle: Circuit) -> None:
    assert circle.curvature_at(np.linspace(0, circle.length_m, 50)) == pytest.approx(1 / RADIUS_M, rel=0.01)


def test_position_at_lateral_offset_is_inward_on_a_left_turn(circle: Circuit) -> None:
    assert np.hypot(*circle.position(10.0, 1.0)) == pytest.approx(RADIUS_M - 1.0, abs=0.01)


@pytest.mark.parametrize("fixture", ["circle", "wavy"])
def test_project_inverts_position(fixture: str, request: pytest.FixtureRequest) -> None:
    circuit: Circuit = request.getfixturevalue(fixture)
    rng = np.random.default_rng(0)
    s = rng.uniform(0, circuit.length_m, 500)
    d = rng.uniform(-1.0, 1.0, 500)
    s2, d2 = circuit.project(circuit.position(s, d))
    ds = np.angle(np.exp(2j * math.pi * (s2 - s) / circuit.length_m)) * circuit.length_m / (2 * math.pi)
    assert np.abs(ds).max() < 0.02
    assert np.abs(d2 - d).max() < 0.01


def test_width_at_interpolates_the_widths() -> None:
    rows = circle_rows(w_right=1.0, w_left=2.0)
    rows[:, 2] = 1.0 + 0.5 * np.sin(np.linspace(0.0, 2 * math.pi, len(rows), endpoint=False))
    circuit = Circuit.from_points(rows, CircuitMeta("widths"))
    right, left = circuit.width_at(np.array([0.0, circuit.length_m / 4, circuit.length_m / 2]))
    assert right == pytest.approx([1.0, 1.5, 1.0], abs=0.01)
    assert left == pytest.approx([2.0, 2.0, 2.0])


def test_spawn_defaults_to_the_first_point(circle: Circuit) -> None:
    x, y, yaw = circle.spawn_pose
    assert (x, y) == pytest.approx((RADIUS_M, 0.0), abs=0.05)
    assert yaw == pytest.approx(math.pi / 2, abs=0.01)


def test_save_and_from_file_round_trip(wavy: Circuit, tmp_path: Path) -> None:
    path = wavy.save(tmp_path / "wavy.csv")
    loaded = Circuit.from_file(path)
    assert loaded.meta == wavy.meta
    assert loaded.length_m == pytest.approx(wavy.length_m, abs=1e-3)
    assert np.abs(loaded.xy - wavy.xy).max() < 1e-3
    assert np.abs(loaded.w_left - wavy.w_left).max() < 1e-3


def test_refuses_a_bend_tighter_than_the_road() -> None:
    with pytest.raises(CircuitError, match="tighter than the road"):
        Circuit.from_points(circle_rows(radius=2.0, count=40, w_right=1.95, w_left=1.95), CircuitMeta("tight"))


def horseshoe_rows(gap_deg: float) -> np.ndarray:
    """A ring road (radii 18 and 32 m) cut open at +x: its two ends face each other across the gap."""
    from scipy.ndimage import gaussian_filter1d

    def arc(r: float, a0: float, a1: float) -> np.ndarray:
        a = np.linspace(a0, a1, int(abs(a1 - a0) * r / 0.25), endpoint=False)
        return np.column_stack([r * np.cos(a), r * np.sin(a)])

    def line(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        return np.linspace(p, q, int(np.hypot(*(q - p)) / 0.25), endpoint=False)

    g = math.radians(gap_deg / 2)
    top, bottom = np.array([math.cos(g), math.sin(g)]), np.array([math.cos(g), -math.sin(g)])
    xy = np.vstack(
        [
            arc(32, g, 2 * math.pi - g),
            line(32 * bottom, 18 * bottom),
            arc(18, 2 * math.pi - g, g),
            line(18 * top, 32 * top),
        ]
    )
    xy = gaussian_filter1d(xy, 16, axis=0, mode="wrap")[::4]  # round the corners (radius > 1.6 m)
    return np.column_stack([xy, np.full((len(xy), 2), 1.5)])


def test_refuses_a_road_that_overlaps_itself() -> None:
    with pytest.raises(CircuitError, match="comes within"):
        Circuit.from_points(horseshoe_rows(gap_deg=4.0), CircuitMeta("narrow"))


def test_accepts_the_same_shape_with_room_between_the_ends() -> None:
    Circuit.from_points(horseshoe_rows(gap_deg=12.0), CircuitMeta("wide"))


# ------------------------------------------------------------------------------ bad own-format files
GOOD_HEADER = '# format: "simeval-circuit/1"\n# name: "bad"\nx_m,y_m,w_right_m,w_left_m\n'
GOOD_ROWS = "".join(f"{r[0]:.3f},{r[1]:.3f},1.5,1.5\n" for r in circle_rows())


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("x_m,y_m,w_right_m,w_left_m\n" + GOOD_ROWS, "not a simeval-circuit/1 file"),
        (
            '# format: "simeval-circuit/1"\n# name: "bad"\nx,y,wr,wl\n' + GOOD_ROWS,
            r"bad\.csv:3: expected the column header",
        ),
        (GOOD_HEADER + GOOD_ROWS + "1.0,2.0,3.0\n", r"bad\.csv:124: expected 4 values"),
        (GOOD_HEADER + "1.0,two,1.5,1.5\n" + GOOD_ROWS, r"bad\.csv:4: column y_m is not a number: 'two'"),
        (GOOD_HEADER + GOOD_ROWS.replace("1.5,1.5", "nan,1.5", 1), r"bad\.csv:4: column w_right_m is nan"),
        (GOOD_HEADER + "0,0,1,1\n1,0,1,1\n1,1,1,1\n", "at least 4 points"),
        ('# format: "simeval-circuit/1"\nx_m,y_m,w_right_m,w_left_m\n' + GOOD_ROWS, "header has no 'name'"),
        (
            '# format: "simeval-circuit/1"\n# name: "bad"\n# scale: -2\nx_m,y_m,w_right_m,w_left_m\n' + GOOD_ROWS,
            r"bad\.csv:3: header scale must be a number from 0\.0001 to 10000, got -2",
        ),
    ],
)
def test_bad_circuit_files_name_file_and_line(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(CircuitError, match=match) as info:
        Circuit.from_file(path)
    assert "bad" in str(info.value)


def test_unknown_header_key_suggests_the_nearest(tmp_path: Path) -> None:
    path = tmp_path / "typo.csv"
    path.write_text(
        '# format: "simeval-circuit/1"\n# name: "typo"\n# scael: 1.0\nx_m,y_m,w_right_m,w_left_m\n' + GOOD_ROWS
    )
    with pytest.raises(CircuitError, match=r"typo\.csv:3: unknown header key 'scael' \(did you mean 'scale'\?\)"):
        Circuit.from_file(path)


def test_the_track_layers_car_width_is_the_simulators() -> None:
    """``simeval.track.limits`` repeats the car's width (track may not import sim): keep them equal."""
    from simeval.sim.vehicle import VehicleConfig
    from simeval.track.limits import CAR_WIDTH_M

    assert CAR_WIDTH_M == VehicleConfig().width_m


def test_missing_circuit_file(tmp_path: Path) -> None:
    with pytest.raises(CircuitError, match="no such circuit file"):
        Circuit.from_file(tmp_path / "nowhere.csv")
