"""Results appear whole or not at all."""

from __future__ import annotations

import pytest

from simeval.atomic import atomic_directory, write_folder_atomic, write_text_atomic
from simeval.errors import ResultsError


def test_failed_folder_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_directory(tmp_path / "run") as tmp:
        (tmp / "metrics.json").write_text("{}")
        raise RuntimeError("crash while writing")
    assert list(tmp_path.iterdir()) == []


def test_finished_folder_appears_with_its_files(tmp_path):
    with atomic_directory(tmp_path / "run") as tmp:
        (tmp / "a.txt").write_text("a")
    assert (tmp_path / "run" / "a.txt").read_text() == "a"
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_existing_folder_is_refused(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(ResultsError, match="already exists"), atomic_directory(tmp_path / "run"):
        pass


def test_a_folder_of_files_is_written_whole_and_only_with_plain_names(tmp_path):
    """A Ray sweep's run folders come from other machines as files: written whole, names checked."""
    write_folder_atomic(tmp_path / "run", {"a.csv": b"1\n", "b.json": b"{}"})
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["a.csv", "b.json"]
    for name in ("../escape", "/etc/passwd", "sub/x", ".."):
        with pytest.raises(ResultsError, match="not a plain file name"):
            write_folder_atomic(tmp_path / "bad", {name: b"x"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"], "nothing else written, nothing left half-written"


def test_atomic_file_replaces_whole(tmp_path):
    path = write_text_atomic(tmp_path / "sub" / "f.txt", "one")
    write_text_atomic(path, "two")
    assert path.read_text() == "two"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]
