"""The circuit catalogue (shipped and user-imported circuits, by name) and its command line.

    python -m simeval.circuits list
    python -m simeval.circuits show NAME [--out PNG]
    python -m simeval.circuits import FILE.csv --name NAME --scale 1:3.03 [--road-width 3.0]
    python -m simeval.circuits build            # maintainers: regenerate circuits/ from shared/tracks

Shipped circuits live in ``circuits/`` (``simeval.paths.data_dir``); imported ones in
``simeval.paths.user_circuits_dir()``. A circuit's name is its file name without ``.csv``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from simeval.circuit import Circuit, CircuitMeta
from simeval.errors import CircuitError, SimevalError, UnknownNameError
from simeval.paths import REPO_ROOT, data_dir, results_dir, user_circuits_dir

NAME_PATTERN = re.compile(r"[a-z0-9_-]+")
ROLE_ORDER = {"test": 0, "train": 1, "user": 2}


# ------------------------------------------------------------------------------------ catalogue
def _circuit_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.csv")) if not p.name.startswith(".")}


def available() -> dict[str, Path]:
    """Every circuit by name: the user's imports, then the shipped ones (a shipped name wins)."""
    return {**_circuit_files(user_circuits_dir()), **_circuit_files(data_dir("circuits"))}


def circuit_path(name: str) -> Path:
    """The file of circuit ``name``; an unknown name suggests the nearest known one."""
    known = available()
    if name not in known:
        raise UnknownNameError("circuit", name, known)
    return known[name]


# ------------------------------------------------------------------------------------ list, show
def _short_source(source: str, limit: int = 60) -> str:
    first = source.split(";")[0].strip()
    return first if len(first) <= limit else first[: limit - 3] + "..."


def _list_rows() -> list[tuple[str, ...]]:
    rows = []
    for name, path in available().items():
        try:
            c = Circuit.from_file(path)
        except SimevalError as exc:
            rows.append((name, "?", "-", "-", f"unreadable: {exc}"))
            continue
        road = float((c.w_left + c.w_right).mean())
        rows.append((name, c.meta.role, f"{c.length_m:.1f}", f"{road:.2f}", _short_source(c.meta.source)))
    return sorted(rows, key=lambda r: (ROLE_ORDER.get(r[1], 3), r[0]))


def cmd_list(args: argparse.Namespace) -> int:
    """Print the catalogue as a table."""
    rows = [("name", "role", "lap_m", "road_m", "source"), *_list_rows()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for name, role, lap, road, source in rows:
        print(f"{name:<{widths[0]}}  {role:<{widths[1]}}  {lap:>{widths[2]}}  {road:>{widths[3]}}  {source}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Draw a circuit to a PNG and print its path."""
    from matplotlib.figure import Figure

    from simeval.plots import draw_circuit, save_figure

    circuit = Circuit.from_file(circuit_path(args.name))
    fig = Figure(figsize=(8, 8))
    ax = fig.add_subplot()
    draw_circuit(ax, circuit)
    ax.set_title(f"{circuit.name}: lap {circuit.length_m:.1f} m")
    out = args.out or results_dir() / "circuits" / f"{circuit.name}.png"
    print(save_figure(fig, out))
    return 0


# ---------------------------------------------------------------------------------------- import
def _check_new_name(name: str, dest: Path, force: bool) -> None:
    if not NAME_PATTERN.fullmatch(name):
        raise CircuitError(f"circuit name must be lower-case letters, digits, '_' or '-', got '{name}'")
    shipped = _circuit_files(data_dir("circuits"))
    if name in shipped and dest.resolve() != data_dir("circuits").resolve():
        raise CircuitError(f"'{name}' is a shipped circuit ({shipped[name]}); choose another --name")
    target = dest / f"{name}.csv"
    if target.exists() and not force:
        raise CircuitError(f"circuit '{name}' already exists ({target}); pass --force to replace it")


def cmd_import(args: argparse.Namespace) -> int:
    """Convert a TUMFTM-format CSV into a circuit file usable by name."""
    from simeval.tumftm import convert, parse_scale

    dest = args.dest or user_circuits_dir()
    _check_new_name(args.name, dest, args.force)
    meta = CircuitMeta(
        name=args.name,
        role=args.role,
        source=args.source or f"{Path(args.file).name} (TUMFTM format)",
        licence=args.licence,
        scale=parse_scale(args.scale),
        line_width_m=args.line_width,
    )
    circuit = convert(args.file, meta, road_width_m=args.road_width)
    path = circuit.save(dest / f"{args.name}.csv")
    print(f"imported '{args.name}': lap {circuit.length_m:.1f} m -> {path}")
    return 0


# ----------------------------------------------------------------------------------------- build
@dataclass(frozen=True)
class TumftmCircuit:
    """A shipped circuit made from one TUMFTM file."""

    name: str
    file: str
    scale: float
    road_width_m: float = 3.0
    line_width_m: float = 0.10
    reference_lap_time_s: float | None = None


SIMPLE_REFERENCE_LAP_TIME_S = 68.0
"""Lap time of the explicit brain on SimpleCircuit in Gazebo (s)."""

TEST_TUMFTM = (
    TumftmCircuit("montreal", "Montreal.csv", 1 / 3.03, 3.0, 0.10, 225.0),
    TumftmCircuit("montmelo", "Catalunya.csv", 1 / 6.25, 3.0, 0.12, 111.0),
)
"""The TUMFTM test circuits at the sizes of the Gazebo circuits of the published results."""

TRAIN_ROAD_WIDTH_M = 3.0
TRAIN_LAP_TARGET_M = 1000.0
TRAIN_LAP_MAX_M = 2000.0
TRAIN_LAP_STEP = 1.1
"""A training track is tried at a ~1 km lap, then 10% larger each time, up to 2 km."""
TRAIN_MIN_RADIUS_M = 2.0
"""Tightest bend allowed on a training circuit (m): about montmelo's tightest, so experts can drive it."""
GENERATED_SEEDS = range(6)
TUMFTM_LICENCE = "LGPL-3.0"
SMOOTHING_NOTE = "centre line Gaussian-smoothed (simeval.tumftm.smooth_loop), control points every ~1 m"


def default_tracks_dir() -> Path:
    """The reference data beside the repository: ``../shared/tracks``."""
    return REPO_ROOT.parent / "shared" / "tracks"


def _tumftm_circuit(tracks: Path, spec: TumftmCircuit, role: str) -> Circuit:
    from simeval.tumftm import convert, database_source

    path = tracks / "tumftm" / spec.file
    meta = CircuitMeta(
        name=spec.name,
        role=role,
        source=database_source(path),
        licence=TUMFTM_LICENCE,
        scale=spec.scale,
        line_width_m=spec.line_width_m,
        reference_lap_time_s=spec.reference_lap_time_s,
        notes=SMOOTHING_NOTE,
    )
    return convert(path, meta, road_width_m=spec.road_width_m)


def _training_circuit(tracks: Path, file: str) -> Circuit:
    """The smallest training circuit from ~1 km up that validates and has no bend under 2 m."""
    from simeval.trackgen import loop_length, min_radius_m
    from simeval.tumftm import read_tumftm

    raw_lap = loop_length(read_tumftm(tracks / "tumftm" / file)[:, :2])
    lap, reason = TRAIN_LAP_TARGET_M, ""
    while lap <= TRAIN_LAP_MAX_M:
        spec = TumftmCircuit(Path(file).stem.lower(), file, 1 / round(raw_lap / lap, 2), TRAIN_ROAD_WIDTH_M)
        lap *= TRAIN_LAP_STEP
        try:
            circuit = _tumftm_circuit(tracks, spec, "train")
        except CircuitError as exc:
            reason = str(exc)
            continue
        if min_radius_m(circuit) >= TRAIN_MIN_RADIUS_M:
            return circuit
        reason = f"tightest bend {min_radius_m(circuit):.2f} m < {TRAIN_MIN_RADIUS_M} m"
    raise CircuitError(f"{file}: no scale with a lap of at most {TRAIN_LAP_MAX_M:.0f} m works ({reason})")


def build_circuits(tracks: Path) -> tuple[list[Circuit], list[str]]:
    """Every shipped circuit from the reference data, and the tracks skipped (with why)."""
    from simeval.trackgen import generate_loop, simple_circuit

    if not (tracks / "tumftm").is_dir():
        raise CircuitError(f"{tracks}: no tumftm/ folder of reference tracks here; pass --tracks DIR")
    built = [simple_circuit(tracks / "simple_circuit.json", reference_lap_time_s=SIMPLE_REFERENCE_LAP_TIME_S)]
    built += [_tumftm_circuit(tracks, spec, "test") for spec in TEST_TUMFTM]
    test_files = {spec.file for spec in TEST_TUMFTM}
    skipped = []
    for path in sorted((tracks / "tumftm").glob("*.csv")):
        if path.name in test_files:
            continue
        try:
            built.append(_training_circuit(tracks, path.name))
        except CircuitError as exc:
            skipped.append(str(exc))
    built += [generate_loop(seed, road_width_m=TRAIN_ROAD_WIDTH_M) for seed in GENERATED_SEEDS]
    return built, skipped


def cmd_build(args: argparse.Namespace) -> int:
    """Regenerate the shipped circuit files and print what was made."""
    from simeval.tumftm import scale_label

    dest = args.dest or data_dir("circuits")
    built, skipped = build_circuits(args.tracks or default_tracks_dir())
    for circuit in built:
        path = circuit.save(dest / f"{circuit.name}.csv")
        width, height = circuit.bounding_box()
        print(
            f"{circuit.meta.role:5}  {circuit.name:14} {scale_label(circuit.meta.scale):>9}  "
            f"lap {circuit.length_m:7.1f} m  bbox {width:6.1f} x {height:6.1f} m  -> {path}"
        )
    for reason in skipped:
        print(f"skipped: {reason}")
    return 0


# ------------------------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m simeval.circuits", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="table of the shipped and imported circuits").set_defaults(run=cmd_list)

    show = sub.add_parser("show", help="draw a circuit to a PNG")
    show.add_argument("name")
    show.add_argument("--out", type=Path, help="PNG path (default results/circuits/NAME.png)")
    show.set_defaults(run=cmd_show)

    imp = sub.add_parser("import", help="convert a TUMFTM-format CSV into a circuit usable by name")
    imp.add_argument("file", type=Path)
    imp.add_argument("--name", required=True, help="circuit name: lower-case letters, digits, _ and -")
    imp.add_argument("--scale", required=True, help="factor (0.33) or ratio (1:3.03) applied to the file")
    imp.add_argument("--road-width", type=float, help="constant road width (m); default: the file's widths x scale")
    imp.add_argument("--line-width", type=float, default=0.10, help="red centre line width (m)")
    imp.add_argument("--role", choices=("train", "user"), default="user")
    imp.add_argument("--source", help="where the track comes from (default: the file name)")
    imp.add_argument("--licence", default="unknown (see the source file)", help="licence of the source data")
    imp.add_argument(
        "--dest", type=Path, help="folder to write to (default $SIMEVAL_CIRCUITS_DIR or ~/.simeval/circuits)"
    )
    imp.add_argument("--force", action="store_true", help="replace an existing circuit of that name")
    imp.set_defaults(run=cmd_import)

    build = sub.add_parser("build", help="maintainers: regenerate circuits/ from the reference tracks")
    build.add_argument("--tracks", type=Path, help="reference data folder (default ../shared/tracks)")
    build.add_argument("--dest", type=Path, help="output folder (default the shipped circuits/)")
    build.set_defaults(run=cmd_build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except SimevalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
