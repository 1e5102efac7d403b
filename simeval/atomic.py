"""Write files and folders whole: into a temporary sibling, then rename, so a crash leaves no half result."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from simeval.errors import ResultsError

HOST_TAG = hashlib.sha1(socket.gethostname().encode()).hexdigest()[:8]
_OWNED = re.compile(r"^\..+\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.[^.]+\.(?:partial|tmp)$")
"""A temporary file or folder's name: ``.NAME.<host>-<pid>.<random>.partial`` (or ``.tmp``): the
process that writes it, so that one left by a dead process can be told from a live one's."""


def _owner_tag() -> str:
    return f"{HOST_TAG}-{os.getpid()}"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def public_permissions(path: Path | str, directory: bool = False) -> None:
    """Give a temporary file or folder the permissions a plain ``open``/``mkdir`` would have
    (``mkstemp``/``mkdtemp`` make them private to the owner)."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path`` to write (by any writer: a video encoder); on success
    it replaces ``path`` in one rename, on any exception it is removed. The parent folder is
    created if needed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_owner_tag()}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as exc:
        raise ResultsError(f"cannot write {path}: {exc.strerror or exc}; choose a writable location") from None
    try:
        public_permissions(tmp)
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Replace ``path`` with ``data`` in one rename; the parent folder is created if needed."""
    with atomic_file(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    return Path(path)


def write_text_atomic(path: Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


@contextmanager
def atomic_directory(final: Path) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; on success it is renamed to ``final`` in one step.

    On any exception the temporary folder is removed, so ``final`` either appears complete or not
    at all. ``final`` must not exist yet (run folders are never overwritten).
    """
    final = Path(final)
    if final.exists():
        raise ResultsError(f"{final} already exists; choose another --out folder or remove it")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.{_owner_tag()}.", suffix=".partial", dir=final.parent))
    except OSError as exc:
        raise ResultsError(
            f"cannot write results to {final}: {exc.strerror or exc}; pass --out with a writable folder"
        ) from None
    try:
        public_permissions(tmp, directory=True)
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_folder_atomic(final: Path, files: Mapping[str, bytes]) -> Path:
    """Write a folder of ``files`` (name -> content, names without a folder part) whole, as
    ``atomic_directory`` does: it appears complete or not at all, and never over an existing one."""
    for name in files:
        if not name or Path(name).name != name or name in (".", ".."):
            raise ResultsError(f"cannot write {final}: '{name}' is not a plain file name")
    with atomic_directory(final) as tmp:
        for name, data in files.items():
            (tmp / name).write_bytes(data)
    return Path(final)


def ensure_writable(folder: Path, option: str = "--out") -> None:
    """Fail before any work, not after it, when ``folder`` cannot be created and written: one line
    that says which part of the path is in the way."""
    chain = [Path(folder), *Path(folder).parents]
    blocker = next((p for p in chain if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ResultsError(f"cannot write results to {folder}: {blocker} is a file, not a folder; pass {option} with a folder path")
    existing = next(p for p in chain if p.exists())
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise ResultsError(f"cannot write results under {existing}: {exc.strerror or exc}; pass {option} with a writable folder") from None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


_LEGACY = re.compile(r"^\..+\.[a-z0-9_]{8}\.partial$")
"""A run folder in progress as simeval named them before owners were recorded (mkdtemp's suffix)."""


def is_stale(path: Path, legacy: bool = False) -> bool:
    """A temporary ``.partial`` folder or ``.tmp`` file of a process of this machine that is gone
    (killed mid-write). One of a live process, or of another machine (a cluster's shared folder),
    is not; with ``legacy``, a ``.partial`` folder named as simeval named them before owners were
    recorded is (only in folders simeval owns: a sweep's runs/)."""
    name = path.name
    owner = _OWNED.match(name)
    if owner is None:
        return legacy and bool(_LEGACY.match(name)) and path.is_dir()
    return owner["host"] == HOST_TAG and not _alive(int(owner["pid"]))


def clean_stale(folder: Path, legacy: bool = False) -> list[Path]:
    """Remove what dead processes left half-written in ``folder`` (never a live writer's)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = sorted(p for p in folder.iterdir() if is_stale(p, legacy))
    for path in stale:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return stale
