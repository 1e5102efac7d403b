"""``python -m simeval.circuits``: list, draw, import and rebuild circuits.

    python -m simeval.circuits list             # a broken file is a row with its error; exit 0
    python -m simeval.circuits show NAME [--out PNG]
    python -m simeval.circuits import FILE.csv --name NAME --scale 1:3.03 [--road-width 3.0]
    python -m simeval.circuits build            # regenerate circuits/ from circuits/sources

The catalogue is ``simeval.track.catalogue``; the recipe of the shipped circuits is
``simeval.track.recipe``.

Exit codes: 0 done (``list`` also when a user circuit is broken: it is listed with its error);
2 bad input (an unknown name, a malformed or out-of-bounds circuit file, an unwritable output);
130 interrupted (Ctrl-C): the circuit files written so far are whole.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from simeval.errors import CircuitError, SimevalError, first_line, run_command
from simeval.options import command_parser
from simeval.paths import data_dir, results_dir, user_circuits_dir
from simeval.track.catalogue import available, circuit_files, circuit_path
from simeval.track.circuit import Circuit
from simeval.track.circuit_file import NAME_PATTERN, CircuitMeta
from simeval.track.limits import MAX_HALF_WIDTH_M, MAX_LAP_M, MIN_HALF_WIDTH_M, MIN_LAP_M

ROLE_ORDER = {"test": 0, "train": 1, "user": 2}


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
            rows.append((name, "?", "-", "-", f"unreadable: {first_line(exc, limit=300)}"))
            continue
        road = float((c.w_left + c.w_right).mean())
        rows.append((name, c.meta.role, f"{c.length_m:.1f}", f"{road:.2f}", _short_source(c.meta.source)))
    return sorted(rows, key=lambda r: (ROLE_ORDER.get(r[1], 3), r[0]))


def cmd_list(args: argparse.Namespace) -> int:
    """Print the catalogue as a table; a file that cannot be read is a row with its error (exit 0:
    one broken import must not hide the other circuits)."""
    rows = [("name", "role", "lap_m", "road_m", "source"), *_list_rows()]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for name, role, lap, road, source in rows:
        print(f"{name:<{widths[0]}}  {role:<{widths[1]}}  {lap:>{widths[2]}}  {road:>{widths[3]}}  {source}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    """Draw a circuit to a PNG and print its path."""
    from matplotlib.figure import Figure

    from simeval.eval.plots import draw_circuit, save_figure

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
        raise CircuitError(f"circuit name must be 1 to 64 lower-case letters, digits, '_' or '-', got '{name}'")
    shipped = circuit_files(data_dir("circuits"))
    if name in shipped and dest.resolve() != data_dir("circuits").resolve():
        raise CircuitError(f"'{name}' is a shipped circuit ({shipped[name]}); choose another --name")
    target = dest / f"{name}.csv"
    if target.exists() and not force:
        raise CircuitError(f"circuit '{name}' already exists ({target}); pass --force to replace it")


def cmd_import(args: argparse.Namespace) -> int:
    """Convert a TUMFTM-format CSV into a circuit file usable by name."""
    from simeval.track.tumftm import convert, parse_scale

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
    progress = not args.no_progress and sys.stderr.isatty()
    circuit = convert(args.file, meta, road_width_m=args.road_width, progress=progress)
    path = circuit.save(dest / f"{args.name}.csv")
    print(f"imported '{args.name}': lap {circuit.length_m:.1f} m -> {path}")
    return 0


# ----------------------------------------------------------------------------------------- build
def cmd_build(args: argparse.Namespace) -> int:
    """Regenerate the shipped circuit files and print what was made."""
    from simeval.track.recipe import build_circuits, sources_dir
    from simeval.track.tumftm import scale_label

    dest = args.dest or data_dir("circuits")
    built, skipped = build_circuits(args.tracks or sources_dir(), refit=args.refit)
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
    parser = command_parser("python -m simeval.circuits", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser(
        "list",
        help="table of the shipped and imported circuits; a file that cannot be read is listed with its error "
        "(role '?') and the exit status stays 0",
    ).set_defaults(run=cmd_list)

    show = sub.add_parser("show", help="draw a circuit to a PNG")
    show.add_argument("name")
    show.add_argument("--out", type=Path, help="PNG path (default results/circuits/NAME.png)")
    show.set_defaults(run=cmd_show)

    imp = sub.add_parser("import", help="convert a TUMFTM-format CSV into a circuit usable by name")
    imp.add_argument("file", type=Path)
    imp.add_argument("--name", required=True, help="circuit name: lower-case letters, digits, _ and -")
    imp.add_argument(
        "--scale", required=True,
        help=f"factor (0.33) or ratio (1:3.03) applied to the file; the scaled lap must be {MIN_LAP_M:g} m to {MAX_LAP_M:,.0f} m",
    )
    imp.add_argument(
        "--road-width", type=float,
        help=f"constant road width ({2 * MIN_HALF_WIDTH_M:g} to {2 * MAX_HALF_WIDTH_M:g} m); default: the file's widths x scale",
    )
    imp.add_argument("--line-width", type=float, default=0.10, help="red centre line width (m)")
    imp.add_argument("--role", choices=("train", "user"), default="user")
    imp.add_argument("--source", help="where the track comes from (default: the file name)")
    imp.add_argument("--licence", default="unknown (see the source file)", help="licence of the source data")
    imp.add_argument(
        "--dest", type=Path, help="folder to write to (default $SIMEVAL_CIRCUITS_DIR or ~/.simeval/circuits)"
    )
    imp.add_argument("--force", action="store_true", help="replace an existing circuit of that name")
    imp.add_argument("--no-progress", action="store_true", help="no progress bar (there is none unless stderr is a terminal)")
    imp.set_defaults(run=cmd_import)

    build = sub.add_parser("build", help="regenerate the shipped circuits from their source data")
    build.add_argument("--tracks", type=Path, help="source data folder (default circuits/sources)")
    build.add_argument("--refit", action="store_true", help="solve SimpleCircuit's fit again and record it in the source folder")
    build.add_argument("--dest", type=Path, help="output folder (default the shipped circuits/)")
    build.set_defaults(run=cmd_build)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run_command(lambda: args.run(args), "interrupted: the circuit files written so far are whole")


if __name__ == "__main__":
    raise SystemExit(main())
