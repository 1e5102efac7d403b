"""`python -m simeval.dataset`: the real simulator and expert, at a few hundred frames."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from simeval.agents.expert import ExpertAgent
from simeval.build.dataset import (
    ARRAYS,
    DatasetConfig,
    generate,
    load_manifest,
    load_split,
    load_test_set,
    manifest_sha256,
)
from simeval.build.dataset.collect import ChunkJob
from simeval.build.dataset.config import FORMAT
from simeval.dataset import main
from simeval.errors import ConfigError, DatasetError, UnknownNameError
from tests.support import TEST_CIRCUITS

TINY = DatasetConfig(
    seed=3, train_frames=500, val_frames=200, chunk_frames=100, episode_steps=60,
    circuits=("gen-003", "gen-002"), val_circuits=("gen-002",),
)
TINY_ARGS = [
    "--seed", "3", "--train-frames", "500", "--val-frames", "200", "--chunk-frames", "100",
    "--episode-steps", "60", "--circuits", "gen-003,gen-002", "--val-circuits", "gen-002",
]


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "pilotnet"
    generate(TINY, root, progress=False)
    return root


@pytest.fixture
def copy(made, tmp_path) -> Path:
    """A private copy of the module's data set, for tests that damage or extend it."""
    return Path(shutil.copytree(made, tmp_path / "copy"))


def _all_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _names(root: Path, split_arrays: dict[str, np.ndarray]) -> set[str]:
    circuits = load_manifest(root).circuits
    return {circuits[i]["name"] for i in np.unique(split_arrays["circuit"])}


def test_manifest_counts_match_the_files(made):
    manifest = load_manifest(made)
    assert manifest.frames("train") == 500 and manifest.frames("val") == 200
    on_disk = {p.relative_to(made).as_posix() for p in made.rglob("*.npz")}
    listed = {c["file"] for s in ("train", "val") for c in manifest.splits[s]["chunks"]}
    listed |= {t["file"] for t in manifest.test_sets.values()}
    assert on_disk == listed
    for split in ("train", "val"):
        arrays = load_split(made, split)
        summary = manifest.splits[split]
        assert {name: a.dtype.name for name, a in arrays.items()} == {n: d for n, (d, _) in ARRAYS.items()}
        assert all(len(a) == summary["frames"] for a in arrays.values())
        assert arrays["frames"].shape[1:] == (66, 200, 3)
        assert summary["labels"]["min"] == arrays["labels"].min(axis=0).tolist()
        assert summary["labels"]["max"] == arrays["labels"].max(axis=0).tolist()
        assert summary["labels"]["mean"] == pytest.approx(arrays["labels"].astype(float).mean(axis=0).tolist())
        assert summary["labels"]["std"] == pytest.approx(arrays["labels"].astype(float).std(axis=0).tolist())
        assert sum(summary["terminations"].values()) == summary["episodes"]
        assert 0.0 <= summary["crash_rate"] <= 1.0
    low, high = manifest.label_range("train")
    assert low.dtype == np.float32 and (low < high).all()
    assert manifest.settings["circuits"] == ["gen-003", "gen-002"] and manifest.seed == 3
    assert {"simeval", "git_commit"} <= manifest.code.keys()
    assert manifest.sha256 == manifest_sha256(made)


def test_labels_are_the_experts_and_noise_changes_only_the_executed_command(made):
    train = load_split(made, "train")
    assert not np.allclose(train["executed"], train["labels"]), "DART noise was not applied"
    assert (train["executed"][:, 0] >= 0).all()
    expert = ExpertAgent()
    for episode in np.unique(train["episode"]):
        rows = np.flatnonzero(train["episode"] == episode)
        assert (np.diff(train["t"][rows]) > 0).all()
        expert.reset()
        replayed = [expert.act(frame, {}) for frame in train["frames"][rows]]
        np.testing.assert_array_equal(np.asarray(replayed, np.float32), train["labels"][rows])


def test_test_sets_are_noise_free_laps_of_every_test_circuit(made):
    manifest = load_manifest(made)
    assert sorted(manifest.test_sets) == sorted(TEST_CIRCUITS)
    for name in TEST_CIRCUITS:
        lap = load_test_set(made, name)
        np.testing.assert_array_equal(lap["executed"], lap["labels"])
        assert _names(made, lap) == {name}
        assert manifest.test_sets[name]["termination"] == "lap_completed"
        assert len(lap["frames"]) > 500


def test_splits_come_from_disjoint_training_circuits_in_both_directions(made):
    manifest = load_manifest(made)
    train, val = (_names(made, load_split(made, s, arrays=["circuit"])) for s in ("train", "val"))
    assert train == {"gen-003", "gen-003-reverse"}
    assert val == {"gen-002", "gen-002-reverse"}
    driven = [c for c in manifest.circuits if c["name"] in train | val]
    assert all(c["role"] == "train" for c in driven)
    assert not {c["base"] for c in driven} & set(TEST_CIRCUITS)
    assert {c["split"] for c in driven if c["name"] in train} == {"train"}


def test_rerun_after_deleting_a_chunk_reproduces_identical_bytes(made, copy):
    (copy / "train" / "chunk-00002.npz").unlink()
    (copy / "test" / "simple.npz").unlink()
    generate(TINY, copy, progress=False)
    assert _all_bytes(copy) == _all_bytes(made)


def test_interrupted_run_leaves_whole_files_and_resumes(made, tmp_path, monkeypatch):
    real_run, calls = ChunkJob.run, []

    def interrupted(job):
        calls.append(job.index)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_run(job)

    monkeypatch.setattr(ChunkJob, "run", interrupted)
    root = tmp_path / "partial"
    with pytest.raises(KeyboardInterrupt):
        generate(TINY, root, progress=False)
    assert sorted(p.name for p in (root / "train").iterdir()) == ["chunk-00000.npz", "chunk-00001.npz"]
    with pytest.raises(DatasetError, match="unfinished"):
        load_split(root, "train")
    monkeypatch.setattr(ChunkJob, "run", real_run)
    generate(TINY, root, progress=False)
    assert _all_bytes(root) == _all_bytes(made)


def test_corrupt_chunk_is_refused_by_the_reader_and_remade_by_a_rerun(made, copy):
    chunk = copy / "val" / "chunk-00001.npz"
    chunk.write_bytes(chunk.read_bytes()[:1000] + b"garbage")
    with pytest.raises(DatasetError, match=r"chunk-00001\.npz.*python -m simeval\.dataset"):
        load_split(copy, "val")
    generate(TINY, copy, progress=False)
    assert _all_bytes(copy) == _all_bytes(made)


def test_worker_processes_give_the_same_bytes(made, tmp_path):
    generate(TINY, tmp_path / "jobs2", jobs=2, progress=False)
    assert _all_bytes(tmp_path / "jobs2") == _all_bytes(made)


def test_cli_resumes_with_a_progress_bar_on_a_non_tty(made, copy, capsys):
    (copy / "val" / "chunk-00000.npz").unlink()
    assert main(["--out", str(copy), *TINY_ARGS]) == 0
    captured = capsys.readouterr()
    assert "frame" in captured.err and "files 10/10" in captured.err
    assert "train 500" in captured.out and manifest_sha256(copy) in captured.out
    assert _all_bytes(copy) == _all_bytes(made)


def test_cli_refuses_a_test_circuit_with_one_line(tmp_path, capsys):
    args = ["--out", str(tmp_path / "d"), "--circuits", "montreal,gen-002", "--val-circuits", "gen-002"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "montreal" in err and err.count("\n") == 1
    assert not (tmp_path / "d").exists()


def test_other_settings_in_the_same_folder_are_refused(copy):
    with pytest.raises(DatasetError, match="other settings.*seed"):
        generate(dataclasses.replace(TINY, seed=4), copy, progress=False)


def test_resume_across_a_change_of_the_driving_code_is_refused(copy):
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["code"]["driving_code"] = "0" * 64  # as if the simulator or expert changed since
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="another version of the simulator, expert or circuits"):
        generate(TINY, copy, progress=False)


def test_missing_data_set_says_how_to_make_it(tmp_path):
    with pytest.raises(DatasetError, match=r"manifest\.json.*python -m simeval\.dataset"):
        load_split(tmp_path, "train")
    with pytest.raises(DatasetError, match="python -m simeval.dataset"):
        manifest_sha256(tmp_path)


def test_unknown_names_and_bad_settings(made):
    with pytest.raises(UnknownNameError):
        load_split(made, "test")
    with pytest.raises(UnknownNameError):
        load_test_set(made, "austin")
    with pytest.raises(UnknownNameError):
        load_split(made, "train", arrays=["frame"])
    with pytest.raises(ConfigError):
        DatasetConfig(chunk_frames=0)
    with pytest.raises(ConfigError, match="role 'test'"):
        generate(dataclasses.replace(TINY, circuits=("gen-002", "simple")), made, progress=False)


def test_manifest_is_plain_json_with_the_documented_arrays(made):
    data = json.loads((made / "manifest.json").read_text())
    assert data["format"] == FORMAT and data["complete"] is True
    assert list(data["arrays"]) == list(ARRAYS)
    assert data["settings"]["noise"]["clean_fraction"] > 0
