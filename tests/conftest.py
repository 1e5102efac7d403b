"""Importing simeval registers the gymnasium env for every test; shared session fixtures."""

from __future__ import annotations

import pytest

import simeval  # noqa: F401

TINY_TRAIN_FRAMES = 2048


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A real data set in miniature, made once per test session: 2,048 training frames on three
    training circuits (enough to calibrate every optimized variant), 512 validation frames, and the
    full noise-free test laps of the test circuits (the same laps as in the full data set, so
    offline MSE measured on them is the cards' own)."""
    from simeval.build.dataset import DatasetConfig, generate

    root = tmp_path_factory.mktemp("tiny-data")
    config = DatasetConfig(
        train_frames=TINY_TRAIN_FRAMES, val_frames=512, chunk_frames=1024,
        circuits=("gen-003", "gen-002", "austin"), val_circuits=("gen-002",),
    )
    generate(config, root, progress=False)
    return root


@pytest.fixture(scope="session")
def dls_models(tmp_path_factory):
    """simeval's torch-fp32 written in JdeRobot DeepLearningStudio's conventions (a state dict with
    their key names, a TorchScript trace, an ONNX graph), each with its contract beside it: made by
    the README's example script, as a user makes them."""
    import runpy
    from pathlib import Path

    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    out = tmp_path_factory.mktemp("dls")
    script = runpy.run_path(str(Path(__file__).parents[1] / "examples" / "dls_pilotnet.py"))
    assert script["main"](["torch", str(out), "--contracts"]) == 0
    return {"state-dict": out / "pilot_net_model_best.pth", "torchscript": out / "baseline.pt", "onnx": out / "pilot_net.onnx"}
