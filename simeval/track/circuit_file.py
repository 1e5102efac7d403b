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
import difflib
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simeval.atomic import write_text_atomic
from simeval.errors import CircuitError
from simeval.track.csv_rows import data_lines, parse_rows, quote, read_text
from simeval.track.limits import SCALE_RANGE

FORMAT_TAG = "simeval-circuit/1"
COLUMNS = ("x_m", "y_m", "w_right_m", "w_left_m")
ROLES = ("test", "train", "user")
NAME_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")
"""A circuit name: it names the circuit's file and is part of every run folder's name, so it is
kept to characters that are safe in any file name."""


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
        if isinstance(self.spawn, list):  # as read from JSON
            object.__setattr__(self, "spawn", tuple(self.spawn))
        for f in dataclasses.fields(self):
            problem = meta_problem(f.name, getattr(self, f.name))
            if problem:
                name = quote(self.name) if isinstance(self.name, str) else repr(self.name)
                raise CircuitError(f"circuit '{name}': {problem}")


# ---------------------------------------------------------------------------------- field rules
def _is_number(value: object) -> bool:
    """A finite number; a bool is not one (JSON's true is not 1), nor is NaN or Infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):  # what JSON reads and writes
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _is_positive(value: object) -> bool:
    return _is_number(value) and value > 0


def _is_pose(value: object) -> bool:
    return isinstance(value, (list, tuple)) and len(value) == 3 and all(_is_number(v) for v in value)


FIELD_RULES: dict[str, tuple[Callable[[object], bool], str]] = {
    "name": (lambda v: isinstance(v, str) and NAME_PATTERN.fullmatch(v) is not None,
             "1 to 64 lower-case letters, digits, '_' or '-' (it names the circuit's file)"),
    "role": (lambda v: isinstance(v, str) and v in ROLES, f"one of {', '.join(ROLES)}"),
    "source": (lambda v: isinstance(v, str), "a string"),
    "licence": (lambda v: isinstance(v, str), "a string"),
    "notes": (lambda v: isinstance(v, str), "a string"),
    "scale": (lambda v: _is_number(v) and SCALE_RANGE[0] <= v <= SCALE_RANGE[1],
              f"a number from {SCALE_RANGE[0]:g} to {SCALE_RANGE[1]:g}"),
    "line_width_m": (_is_positive, "a finite number > 0"),
    "wall_height_m": (_is_positive, "a finite number > 0"),
    "reference_lap_time_s": (lambda v: v is None or _is_positive(v), "null or a finite number of seconds > 0"),
    "spawn": (lambda v: v is None or _is_pose(v), "null or [x_m, y_m, yaw_rad], three finite numbers"),
}
"""What each ``CircuitMeta`` field must be: a file's header is JSON, and anything else there would
surface later as a crash or as a lap that never ends (a NaN lap time never times out)."""


def meta_problem(key: str, value: object) -> str | None:
    """What is wrong with ``value`` for field ``key``, as the end of a message, or None."""
    check, rule = FIELD_RULES[key]
    if check(value):
        return None
    return f"{key} must be {rule}, got {_shown(value)}"


def _shown(value: object) -> str:
    """``value`` as the header would write it (JSON), cut short."""
    try:
        return quote(json.dumps(value))
    except (TypeError, ValueError, RecursionError):
        return quote(repr(value))


# ------------------------------------------------------------------------------------ read, write
def read_circuit_file(path: str | Path) -> tuple[CircuitMeta, NDArray[np.float64]]:
    """The metadata and the (M, 4) control rows of a circuit file, each problem named by file and line."""
    path = Path(path)
    header, table_lines, first_row_line = _split_header(_read_text(path), path)
    meta = _meta_from_header(header, path)
    return meta, parse_rows(data_lines(table_lines, first_row_line, path), path, COLUMNS)


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
    return read_text(path, "no such circuit file")


def _split_header(text: str, path: Path) -> tuple[dict[str, tuple[int, str]], list[str], int]:
    """The header's ``key -> (line, raw value)``, the lines after the column header, and the first one's number."""
    header: dict[str, tuple[int, str]] = {}
    lines = text.splitlines()
    for lineno, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            key, sep, value = stripped.lstrip("#").partition(":")
            key = key.strip()
            if not sep:
                raise CircuitError(f"{path}:{lineno}: header line must be '# key: value', got '{quote(stripped)}'")
            if key in header:
                raise CircuitError(f"{path}:{lineno}: header '{quote(key)}' again (first on line {header[key][0]}); keep one")
            header[key] = (lineno, value.strip())
            continue
        columns = tuple(c.strip() for c in stripped.split(","))
        if columns != COLUMNS:
            raise CircuitError(
                f"{path}:{lineno}: expected the column header '{','.join(COLUMNS)}', got '{quote(stripped)}'"
            )
        return header, lines[lineno:], lineno + 1
    raise CircuitError(f"{path}: no column header '{','.join(COLUMNS)}' found: is this a simeval circuit file?")


def _meta_from_header(header: dict[str, tuple[int, str]], path: Path) -> CircuitMeta:
    """The header's values, each checked against ``FIELD_RULES`` and named by its line when wrong."""
    expected = f"# format: {json.dumps(FORMAT_TAG)}"
    if "format" not in header:
        raise CircuitError(
            f"{path}: not a {FORMAT_TAG} file (no '{expected}' line); "
            "import a TUMFTM track with `python -m simeval.circuits import FILE.csv --name NAME`"
        )
    lineno, fmt = header.pop("format")
    if _json_value(fmt) != FORMAT_TAG:
        raise CircuitError(f"{path}:{lineno}: not a {FORMAT_TAG} file (format is '{quote(fmt)}'); the line must read '{expected}'")
    values = {}
    for key, (lineno, raw) in header.items():
        if key not in FIELD_RULES:
            raise CircuitError(f"{path}:{lineno}: unknown header key '{quote(key)}'{_suggestion(key)}")
        value = _json_value(raw)
        if value is _NOT_JSON:
            raise CircuitError(f"{path}:{lineno}: header '{key}' must be a JSON value, got '{quote(raw)}'; fix that line")
        problem = meta_problem(key, value)
        if problem:
            raise CircuitError(f"{path}:{lineno}: header {problem}; fix that line")
        values[key] = value
    if "name" not in values:
        raise CircuitError(f"{path}: header has no 'name'; add a line '# name: \"{path.stem}\"'")
    return CircuitMeta(**values)


_NOT_JSON = object()


def _json_value(raw: str) -> object:
    """The JSON value of ``raw``, or ``_NOT_JSON``."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return _NOT_JSON


def _suggestion(key: str) -> str:
    close = difflib.get_close_matches(key, list(FIELD_RULES), n=1, cutoff=0.5)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"{hint}; known keys: {', '.join(FIELD_RULES)}"
