"""The project's circuit file: a CSV whose ``# key: value`` header carries the metadata.

    # format: "simeval-circuit/1"
    # name: "montreal"
    # role: "test"
    # ...                      (every field of ``CircuitMeta``, as JSON values)
    x_m,y_m,w_right_m,w_left_m
    53.5123,-10.7340,1.5500,1.5500
    ...

One row per control point (the TUMFTM column order): position (m) and the distances from the
centre line to the right and left walls (m). ``read_meta`` reads the header alone, which is all the
catalogue needs to know a circuit's role.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simeval.atomic import write_text_atomic
from simeval.errors import CircuitError, UnknownNameError

FORMAT_TAG = "simeval-circuit/1"
COLUMNS = ("x_m", "y_m", "w_right_m", "w_left_m")
ROLES = ("test", "train", "user")


@dataclass(frozen=True)
class CircuitMeta:
    """What a circuit is and where it came from; written as the header of its file."""

    name: str
    role: str = "user"
    """'test' (evaluation only, never trained on), 'train', or 'user' (imported by a user)."""
    source: str = ""
    """Where the geometry comes from (data set, file, generator and seed)."""
    licence: str = ""
    scale: float = 1.0
    """Multiplier applied to the source coordinates (1/3.03 for montreal)."""
    line_width_m: float = 0.10
    """Width of the red centre line (m)."""
    wall_height_m: float = 0.5
    reference_lap_time_s: float | None = None
    """Lap time of the original explicit brain in Gazebo, where known (s)."""
    spawn: tuple[float, float, float] | None = None
    """Start pose (x_m, y_m, yaw_rad); None starts on the line at s = 0, heading along it."""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise CircuitError(f"circuit '{self.name}': role must be one of {ROLES}, got '{self.role}'")
        for key in ("scale", "line_width_m", "wall_height_m"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise CircuitError(f"circuit '{self.name}': {key} must be a positive number, got {value!r}")


def read_circuit_file(path: str | Path) -> tuple[CircuitMeta, NDArray[np.float64]]:
    """The metadata and the (M, 4) control rows of a circuit file, each problem named by file and line."""
    path = Path(path)
    header, table_lines, first_row_line = _split_header(_read_text(path), path)
    return _meta_from_header(header, path), _parse_table(table_lines, path, first_row_line)


def read_meta(path: str | Path) -> CircuitMeta:
    """The metadata of a circuit file, without reading its rows."""
    path = Path(path)
    header, _, _ = _split_header(_read_text(path), path)
    return _meta_from_header(header, path)


def write_circuit_file(path: str | Path, meta: CircuitMeta, rows: NDArray[np.float64]) -> Path:
    """Write a circuit file whole (temp file + rename), so a crash never leaves half a file."""
    lines = [f"# format: {json.dumps(FORMAT_TAG)}"]
    for key, value in dataclasses.asdict(meta).items():
        lines.append(f"# {key}: {json.dumps(value)}")
    lines.append(",".join(COLUMNS))
    lines.extend(",".join(f"{v:.4f}" for v in row) for row in rows)
    return write_text_atomic(Path(path), "\n".join(lines) + "\n")


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CircuitError(f"{path}: no such circuit file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CircuitError(f"{path}: cannot read circuit file ({exc})") from None


def _split_header(text: str, path: Path) -> tuple[dict[str, str], list[str], int]:
    header: dict[str, str] = {}
    lines = text.splitlines()
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            key, sep, value = stripped.lstrip("#").partition(":")
            if not sep:
                raise CircuitError(f"{path}:{lineno}: header line must be '# key: value', got '{stripped}'")
            header[key.strip()] = value.strip()
            continue
        columns = tuple(c.strip() for c in stripped.split(","))
        if columns != COLUMNS:
            raise CircuitError(
                f"{path}:{lineno}: expected the column header '{','.join(COLUMNS)}', got '{stripped}'"
            )
        return header, lines[lineno:], lineno + 1
    raise CircuitError(f"{path}: no column header '{','.join(COLUMNS)}' found: is this a simeval circuit file?")


def _meta_from_header(header: dict[str, str], path: Path) -> CircuitMeta:
    fmt = header.pop("format", None)
    if fmt is None or json.loads(fmt) != FORMAT_TAG:
        raise CircuitError(
            f"{path}: not a {FORMAT_TAG} file (format line is {fmt!r}); "
            "import a TUMFTM track with `python -m simeval.circuits import FILE.csv --name NAME`"
        )
    fields = {f.name for f in dataclasses.fields(CircuitMeta)}
    values = {}
    for key, raw in header.items():
        if key not in fields:
            raise UnknownNameError(f"circuit header key (in {path})", key, fields)
        try:
            values[key] = json.loads(raw)
        except json.JSONDecodeError:
            raise CircuitError(f"{path}: header '{key}' must be a JSON value, got '{raw}'") from None
    if "name" not in values:
        raise CircuitError(f"{path}: header has no 'name'")
    if values.get("spawn") is not None:
        values["spawn"] = tuple(values["spawn"])
    try:
        return CircuitMeta(**values)
    except TypeError as exc:
        raise CircuitError(f"{path}: bad header ({exc})") from None


def _parse_table(lines: list[str], path: Path, first_line: int) -> NDArray[np.float64]:
    """Parse numeric rows, naming the file line of anything that is not four numbers."""
    rows = []
    for offset, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        parts = stripped.split(",")
        if len(parts) != 4:
            raise CircuitError(f"{path}:{first_line + offset}: expected 4 values ({','.join(COLUMNS)}), got {len(parts)}")
        try:
            rows.append([float(p) for p in parts])
        except ValueError:
            raise CircuitError(f"{path}:{first_line + offset}: not a number in '{stripped}'") from None
    return np.array(rows, dtype=np.float64).reshape(-1, 4)
