"""Reading a circuit's CSV text and rows: shared by the project's circuit file and the TUMFTM importer.

Both formats are UTF-8 text (a leading byte-order mark, as spreadsheet programs write, is fine)
with one row of four numbers per control point: x, y, and the distances to the right and left
walls. Every problem is one ``CircuitError`` naming the file and line.
"""

from __future__ import annotations

import math
import stat
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simeval.errors import CircuitError
from simeval.track.limits import check_file_size, check_point_count

QUOTE_LIMIT = 60
"""Longest piece of a bad line quoted in a message (a message stays one short line)."""


def read_text(path: Path, missing: str) -> str:
    """The text of ``path``; ``missing`` is the message for a file that is not there.

    Refuses what is not a regular file, a file larger than any circuit (before reading it), and
    bytes that are not UTF-8 (naming the line).
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise CircuitError(f"{path}: {missing}") from None
    except OSError as exc:
        raise CircuitError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        raise CircuitError(f"{path}: not a regular file; give the path of a CSV file")
    check_file_size(info.st_size, str(path))
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CircuitError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise CircuitError(
            f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None


def quote(text: str) -> str:
    """``text`` for a message, cut to ``QUOTE_LIMIT`` characters."""
    return text if len(text) <= QUOTE_LIMIT else text[: QUOTE_LIMIT - 3] + "..."


def data_lines(lines: list[str], first_lineno: int, path: Path) -> list[tuple[int, str]]:
    """The (file line, stripped text) of every row, skipping blank and ``#`` lines; refuses more
    rows than the limit before any is parsed."""
    rows = [(n, s) for n, line in enumerate(lines, start=first_lineno) if (s := line.strip()) and not s.startswith("#")]
    check_point_count(len(rows), str(path))
    return rows


def parse_rows(rows: list[tuple[int, str]], path: Path, columns: tuple[str, ...]) -> NDArray[np.float64]:
    """The (M, 4) numbers of ``rows`` (from ``data_lines``): four finite numbers each, widths > 0."""
    return np.array([parse_row(text, lineno, path, columns) for lineno, text in rows], dtype=np.float64).reshape(-1, 4)


def parse_row(line: str, lineno: int, path: Path, columns: tuple[str, ...]) -> list[float]:
    """One row's four numbers; a column whose name starts with ``w_`` is a width and must be > 0."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != len(columns):
        raise CircuitError(
            f"{path}:{lineno}: expected {len(columns)} values ({','.join(columns)}), "
            f"got {len(parts)} in '{quote(line)}'; fix that row"
        )
    values = []
    for column, text in zip(columns, parts, strict=True):
        try:
            value = float(text)
        except ValueError:
            raise CircuitError(f"{path}:{lineno}: column {column} is not a number: '{quote(text)}'; fix that row") from None
        if not math.isfinite(value):
            raise CircuitError(f"{path}:{lineno}: column {column} is {quote(text)}; every value must be a finite number")
        if column.startswith("w_") and value <= 0:
            raise CircuitError(f"{path}:{lineno}: column {column} is {quote(text)}; track widths must be > 0 m")
        values.append(value)
    return values
