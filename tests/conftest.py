"""Importing simeval registers the gymnasium env for every test; shared session fixtures."""

from __future__ import annotations

import pytest

import simeval  # noqa: F401


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A real data set in miniature: a few hundred frames on two training loops, plus the full
    noise-free test laps of the three test circuits (what offline MSE is measured on)."""
    from simeval.dataset import DatasetConfig, generate

    root = tmp_path_factory.mktemp("tiny-data")
    config = DatasetConfig(
        train_frames=256, val_frames=64, chunk_frames=128,
        circuits=("gen-003", "gen-002"), val_circuits=("gen-002",),
    )
    generate(config, root, progress=False)
    return root
