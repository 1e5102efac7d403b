"""PilotNet in both frameworks: architecture, pre-processing, artifacts, safe loading, and a tiny
end-to-end run (data set -> training -> agent driving) through the real code paths."""

from __future__ import annotations

import json
import pickle
import zipfile

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("tensorflow")

from simeval.agents import load_agent  # noqa: E402
from simeval.agents.card import ModelCard  # noqa: E402
from simeval.agents.pilotnet import PARAMETERS, LabelRange, preprocess  # noqa: E402
from simeval.build.evaluate import mse_report  # noqa: E402
from simeval.env import FollowLineEnv  # noqa: E402
from simeval.errors import AgentError  # noqa: E402
from simeval.train import main as train_main  # noqa: E402
from tests.support import circuit  # noqa: E402

TRAIN_FRAMES = 512
"""Of the session data set's training frames: enough for an epoch to mean something, quick to run."""


def test_torch_architecture_and_parameter_count():
    import torch

    from simeval.agents.formats.torch_state_dict import PilotNet, parameter_count

    model = PilotNet()
    assert parameter_count(model) == PARAMETERS == 1_595_528
    shapes = []
    x = torch.zeros(1, 66, 200, 3).permute(0, 3, 1, 2)
    for layer in model.features:
        x = layer(x)
        if isinstance(layer, torch.nn.Conv2d):
            shapes.append(tuple(x.shape[1:]))
    assert shapes == [(24, 31, 98), (36, 14, 47), (48, 5, 22), (64, 3, 20), (64, 1, 18)]
    assert model(torch.zeros(4, 66, 200, 3)).shape == (4, 2)
    # Quantization-ready: every conv and linear is followed by its own ReLU module.
    names = [type(m).__name__ for m in model.features] + [type(m).__name__ for m in model.head]
    assert names.count("ReLU") == 9 and isinstance(model.flatten, torch.nn.Flatten)


def test_keras_has_the_same_architecture():
    from simeval.build.training.fit_keras import build_pilotnet, trainable_parameters

    model, normalized = build_pilotnet()
    assert trainable_parameters(model) == PARAMETERS
    convs = [layer for layer in model.layers if layer.name.startswith("conv")]
    assert [tuple(c.output.shape[1:]) for c in convs] == [(31, 98, 24), (14, 47, 36), (5, 22, 48), (3, 20, 64), (1, 18, 64)]
    assert all(c.padding == "valid" for c in convs)
    assert normalized.output.shape[1:] == (2,)


def test_preprocess_scales_and_refuses_wrong_input():
    frames = np.full((2, 66, 200, 3), 255, np.uint8)
    assert preprocess(frames).dtype == np.float32 and preprocess(frames).max() == 1.0
    with pytest.raises(ValueError, match="66, 200, 3"):
        preprocess(np.zeros((2, 200, 66, 3), np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        preprocess(np.zeros((66, 200, 3), np.float32))


def test_label_range_round_trip_and_mse_units():
    labels = np.array([[6.5, -7.1], [24.0, 7.1], [10.0, 0.0]], np.float32)
    r = LabelRange.of(labels)
    assert np.allclose(r.normalize(labels).min(axis=0), 0) and np.allclose(r.normalize(labels).max(axis=0), 1)
    assert np.allclose(r.denormalize(r.normalize(labels)), labels, atol=1e-5)
    report = mse_report(labels + np.array([1.0, 0.0]), labels, r)
    assert report["mse_v_mps2"] == pytest.approx(1.0)
    assert report["mse_normalized"] == pytest.approx(0.5 * (1 / 17.5) ** 2, rel=1e-5)


@pytest.fixture(scope="module")
def tiny_models(tiny_data, tmp_path_factory):
    """One short epoch per framework on the miniature data set: the real pipeline, end to end."""
    root = tmp_path_factory.mktemp("tiny-models")
    models = {}
    for framework in ("torch", "tf"):
        out = root / framework
        args = ["--framework", framework, "--data", str(tiny_data), "--out", str(out), "--work", str(root / f"work-{framework}"),
                "--epochs", "1", "--batch-size", "64", "--max-frames", str(TRAIN_FRAMES)]
        assert train_main(args) == 0
        models[framework] = out
    return models


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_training_writes_artifact_and_card(tiny_models, framework):
    out = tiny_models[framework]
    card = ModelCard(**json.loads((out / "card.json").read_text()))
    artifact = out / card.artifact
    assert card.parameters == PARAMETERS
    assert card.size_bytes == artifact.stat().st_size and 5e6 < card.size_bytes < 10e6
    assert set(card.test) == {"simple", "montreal", "montmelo", "all"}
    assert card.test["all"]["frames"] > 1000 and np.isfinite(card.test["all"]["mse_normalized"])
    assert card.dataset["train_frames"] == TRAIN_FRAMES and len(card.dataset["manifest_sha256"]) == 64
    assert card.training["epochs_run"] == 1


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_trained_model_drives_from_its_file(tiny_models, framework):
    card = json.loads((tiny_models[framework] / "card.json").read_text())
    agent = load_agent(str(tiny_models[framework] / card["artifact"]))
    env = FollowLineEnv(circuit("simple"))
    obs, info = env.reset(seed=0)
    agent.reset(env.circuit)
    for _ in range(5):
        v, w = agent.act(obs, info)
        assert np.isfinite([v, w]).all()
        # The rescaling inside the artifact maps the [0, 1] outputs into the label range.
        assert card["label_low"][0] - 20 < v < card["label_high"][0] + 20
        obs, _, terminated, truncated, info = env.step(env.to_action(v, w))
    assert agent.last_inference_s > 0


@pytest.mark.parametrize("framework", ["torch", "tf"])
def test_interrupted_training_resumes_after_the_last_finished_epoch(tiny_data, tmp_path, capsys, framework):
    data = tiny_data
    args = ["--framework", framework, "--data", str(data), "--out", str(tmp_path / "out"), "--work", str(tmp_path / "w"),
            "--batch-size", "64", "--patience", "5", "--max-frames", str(TRAIN_FRAMES)]
    assert train_main([*args, "--epochs", "1"]) == 0  # as if stopped after epoch 1
    first = json.loads((tmp_path / "out" / "card.json").read_text())["training"]["history"]
    capsys.readouterr()
    assert train_main([*args, "--epochs", "2"]) == 0
    assert "resuming from" in capsys.readouterr().err
    history = json.loads((tmp_path / "out" / "card.json").read_text())["training"]["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[0] == first[0]  # epoch 1 was not run again


def test_corrupt_or_replaced_artifact_fails_with_one_line(tiny_models, tmp_path, monkeypatch):
    import shutil

    from simeval.agents import card

    shipped = tmp_path / "agents" / "torch-fp32"
    shutil.copytree(tiny_models["torch"], shipped)
    monkeypatch.setattr(card, "data_dir", lambda name: tmp_path / name)
    load_agent("torch-fp32")  # intact: loads
    artifact = shipped / "model.pt"
    artifact.write_bytes(artifact.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(AgentError, match=r"model\.pt: sha256 .* does not match its card.*make models"):
        load_agent("torch-fp32")
    artifact.unlink()
    with pytest.raises(AgentError, match=r"model\.pt: model file missing.*make models"):
        load_agent("torch-fp32")
    (shipped / "card.json").unlink()
    with pytest.raises(AgentError, match=r"card\.json: model card missing.*make models"):
        load_agent("pilotnet")


class _Exploit:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/simeval-pwned",))


def test_untrusted_torch_file_never_runs_code(tmp_path):
    import torch

    evil = tmp_path / "evil.pt"
    torch.save({"weights": _Exploit()}, evil, pickle_protocol=pickle.DEFAULT_PROTOCOL)
    with pytest.raises(AgentError, match="evil.pt: holds pickled Python objects .* simeval never unpickles code"):
        load_agent(str(evil))
    import os

    assert not os.path.exists("/tmp/simeval-pwned")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a model")
    with pytest.raises(AgentError, match="garbage.pt"):
        load_agent(str(garbage))


def test_untrusted_keras_file_with_code_is_refused(tmp_path):
    import keras

    inputs = keras.Input((66, 200, 3))
    outputs = keras.layers.Lambda(lambda x: x[:, 0, 0, :2])(inputs)
    path = tmp_path / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(AgentError, match="lambda.keras: not a loadable Keras model"):
        load_agent(str(path))
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(broken, "w") as z:
        z.writestr("config.json", "{not json")
    with pytest.raises(AgentError, match="broken.keras"):
        load_agent(str(broken))


def test_missing_model_file_by_path(tmp_path):
    with pytest.raises(AgentError, match="no such model file"):
        load_agent(str(tmp_path / "nothing.pt"))
