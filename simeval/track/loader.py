"""A circuit from what a user names on a command line: a catalogue name (``montreal``), a simeval
circuit file (``path/to/track.csv``, its header says everything), or a TUMFTM centre-line file
(``x_m,y_m,w_tr_right_m,w_tr_left_m``) at a given scale, for a one-off run without importing it
into the catalogue first.
"""

from __future__ import annotations

import re
from pathlib import Path

from simeval.errors import ConfigError
from simeval.track.circuit import Circuit
from simeval.track.circuit_file import CircuitMeta
from simeval.track.csv_rows import read_text
from simeval.track.tumftm import convert, parse_scale

FILE_SUFFIX = ".csv"


def is_circuit_file(spec: str) -> bool:
    """Whether ``spec`` names a circuit file rather than a catalogue name."""
    return spec.lower().endswith(FILE_SUFFIX)


def circuit_label(spec: str) -> str:
    """The name a circuit file goes by in run folders and tables: its file name without ``.csv``."""
    return Path(spec).stem if is_circuit_file(spec) else spec


def is_tumftm_file(spec: str) -> bool:
    """Whether ``spec`` is a circuit file without simeval's header (a TUMFTM centre line), the only
    kind of circuit that does not carry its own scale."""
    if not is_circuit_file(spec):
        return False
    text = read_text(Path(spec), "no such circuit file; give a catalogue name (python -m simeval.circuits list) or a .csv file")
    return not text.lstrip("\ufeff").startswith("# format:")


def check_scale_applies(specs: list[str], scale: str | None) -> None:
    """A ``--circuit-scale`` given where no circuit is a TUMFTM file is a mistake: say so."""
    if scale is not None and not any(is_tumftm_file(spec) for spec in specs):
        raise ConfigError(f"--circuit-scale {scale} applies to TUMFTM circuit files, and none of {', '.join(specs)} is one "
                          "(a catalogue circuit or a simeval circuit file carries its own scale)")


def load_circuit(spec: str, scale: str | None = None) -> Circuit:
    """The circuit ``spec`` names; ``scale`` (``1:3.03`` or ``0.33``, default 1) is that of a
    TUMFTM file, and means nothing to the others (they carry their own)."""
    if not is_circuit_file(spec):
        return Circuit.from_name(spec)
    path = Path(spec)
    if not is_tumftm_file(spec):
        return Circuit.from_file(path)
    name = re.sub(r"[^a-z0-9_-]", "-", path.stem.lower())[:64] or "track"
    meta = CircuitMeta(name=name, role="user", source=f"TUMFTM file {path}", scale=parse_scale(scale or 1.0))
    return convert(path, meta)
