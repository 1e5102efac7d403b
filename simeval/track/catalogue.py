"""The circuit catalogue: circuit files by name, shipped and user-imported.

Shipped circuits live in ``circuits/`` (``simeval.paths.data_dir``); a user's imports in
``simeval.paths.user_circuits_dir()``. A circuit's name is its file name without ``.csv``; a
shipped name wins over an import of the same name. This module only finds files: reading them is
``simeval.track.circuit``'s job (``Circuit.from_name``).
"""

from __future__ import annotations

from pathlib import Path

from simeval.errors import UnknownNameError
from simeval.paths import data_dir, user_circuits_dir
from simeval.track.circuit_file import read_meta


def circuit_files(folder: Path) -> dict[str, Path]:
    """The circuit files of one folder by name (hidden temporary files are not circuits)."""
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.glob("*.csv")) if not p.name.startswith(".")}


def shipped() -> dict[str, Path]:
    """The circuits that come with simeval, by name."""
    return circuit_files(data_dir("circuits"))


def available() -> dict[str, Path]:
    """Every circuit by name: the user's imports, then the shipped ones (a shipped name wins)."""
    return {**circuit_files(user_circuits_dir()), **shipped()}


def circuit_path(name: str) -> Path:
    """The file of circuit ``name``; an unknown name suggests the nearest known one."""
    known = available()
    if name not in known:
        raise UnknownNameError("circuit", name, known)
    return known[name]


def shipped_with_role(role: str) -> list[str]:
    """Names of the shipped circuits whose header gives ``role`` ('test' or 'train'), sorted."""
    return [name for name, path in shipped().items() if read_meta(path).role == role]


def evaluation_circuits() -> list[str]:
    """The evaluation circuits (role 'test': simeval never trains on them), sorted by name."""
    return shipped_with_role("test")
