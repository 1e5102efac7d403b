"""The int8 PyTorch PilotNets (torch-dynamic, torch-static, torch-qat): the shipped artifacts load
without the PilotNet class and without a warning, meet their cards' size and MSE bounds, fail on a
bad file with one line; and a tiny build of each variant runs the real builders end to end."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if "x86" not in torch.backends.quantized.supported_engines:
    pytest.skip("the int8 torch agents need PyTorch's x86 quantized engine", allow_module_level=True)

from simeval.agents import load_agent  # noqa: E402
from simeval.agents.card import ModelCard, model_dir, read_card, sha256_of  # noqa: E402
from simeval.agents.formats.torchscript import ARTIFACT  # noqa: E402
from simeval.agents.pilotnet import preprocess  # noqa: E402
from simeval.agents.variants import BY_NAME, TorchDynamicInt8, TorchQAT, TorchStaticInt8  # noqa: E402
from simeval.build.optimize.torch_int8 import fold_pilotnet  # noqa: E402
from simeval.env import FollowLineEnv  # noqa: E402
from simeval.errors import AgentError, ContractError  # noqa: E402
from simeval.paths import REPO_ROOT  # noqa: E402
from tests.support import circuit  # noqa: E402

VARIANTS = ("torch-dynamic", "torch-static", "torch-qat")
MIN_SIZE_RATIO = 3.8
"""Every int8 artifact is at least this many times smaller than torch-fp32."""


def _frames(count: int = 4) -> np.ndarray:
    """Real camera frames from the start of a lap of SimpleCircuit."""
    env = FollowLineEnv(circuit("simple"))
    obs, _ = env.reset(seed=0)
    frames = [obs]
    for _ in range(count - 1):
        obs, *_ = env.step(env.to_action(8.0, 0.0))
        frames.append(obs)
    return np.stack(frames)


# ------------------------------------------------------------------------------ shipped artifacts
LOAD_WITHOUT_PILOTNET = r"""
import importlib.abc, json, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "simeval.agents.formats.torch_state_dict":
            raise ImportError("blocked: the int8 artifacts must load without the PilotNet class")
        return None

sys.meta_path.insert(0, Block())
import numpy as np
from simeval.agents import load_agent
from simeval.env import FollowLineEnv
from simeval.track.circuit import Circuit

env = FollowLineEnv(Circuit.from_name("simple"))
obs, info = env.reset(seed=0)
out = {}
for name in sys.argv[1:]:
    agent = load_agent(name)
    out[name] = [agent.act(obs, info) for _ in range(3)]
assert "simeval.agents.formats.torch_state_dict" not in sys.modules
print(json.dumps(out))
"""


def test_shipped_variants_load_without_the_pilotnet_class_and_print_nothing():
    """A fresh process, DeprecationWarnings as errors, PilotNet's module blocked: every variant loads
    and drives, and nothing at all reaches stderr (C++ warnings included)."""
    result = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-c", LOAD_WITHOUT_PILOTNET, *VARIANTS],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr == "", result.stderr[-3000:]
    commands = json.loads(result.stdout.strip().splitlines()[-1])
    parent = read_card(model_dir("torch-fp32"))
    for name, steps in commands.items():
        assert steps[0] == steps[1] == steps[2], f"{name} is not deterministic: {steps}"
        v, w = steps[0]
        assert parent.label_low[0] - 2 < v < parent.label_high[0] + 2, (name, v)
        assert abs(w) < 8.0, (name, w)


@pytest.mark.parametrize("name", VARIANTS)
def test_loading_and_acting_raise_no_warning(name):
    frames = _frames(2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        agent = load_agent(name)
        for frame in frames:
            v, w = agent.act(frame, {})
    assert np.isfinite([v, w]).all()
    assert agent.info.precision == "int8" and agent.info.framework == "torch"
    assert agent.info.artifact_bytes == read_card(model_dir(name)).size_bytes
    assert agent.last_inference_s > 0


@pytest.mark.parametrize("name", VARIANTS)
def test_a_batch_gives_what_the_frames_give_alone(name):
    agent = load_agent(name)
    batch = preprocess(_frames(8))
    alone = np.concatenate([agent.infer(batch[i : i + 1]) for i in range(len(batch))])
    np.testing.assert_allclose(agent.infer_batch(batch), alone, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", VARIANTS)
def test_card_records_the_path_and_why(name):
    method = read_card(model_dir(name)).training["method"]
    assert method["path"] and method["why"] and method["deprecated_apis_filtered"]


def test_qat_history_is_recorded():
    history = read_card(model_dir("torch-qat")).training["method"]["history"]
    assert [h["epoch"] for h in history] == list(range(len(history)))


@pytest.mark.parametrize("name", VARIANTS)
def test_shipped_artifact_reproduces_its_card(name, tiny_data):
    """The agent's own inference, frame by frame on the test laps (the same noise-free expert laps
    in every data set), gives the MSE its card states."""
    from simeval.agents.formats import one_by_one
    from simeval.build.evaluate import offline_mse

    card = read_card(model_dir(name))
    agent = load_agent(name)
    report = offline_mse(lambda b: one_by_one(agent.infer, b), tiny_data, card.labels)
    assert report["all"]["mse_normalized"] == pytest.approx(card.test["all"]["mse_normalized"], rel=1e-4)


# ---------------------------------------------------------------------------------- bad files
def test_corrupt_or_foreign_file_fails_with_one_line(tmp_path, monkeypatch):
    from simeval.agents import card as cards

    shipped = tmp_path / "agents" / "torch-static"
    shutil.copytree(model_dir("torch-static"), shipped)
    monkeypatch.setattr(cards, "data_dir", lambda name: tmp_path / name)
    artifact = shipped / ARTIFACT
    data = artifact.read_bytes()
    artifact.write_bytes(data[: len(data) // 2])
    with pytest.raises(AgentError, match=r"model\.torchscript: sha256 .* does not match its card.*make models") as info:
        load_agent("torch-static")
    assert "\n" not in str(info.value)
    # Corrupt, but with a card that matches: the TorchScript reader's error becomes one line.
    card = read_card(shipped)
    dataclasses.replace(card, sha256=sha256_of(artifact)).write(shipped)
    with pytest.raises(AgentError, match=r"model\.torchscript: not a loadable TorchScript file") as info:
        load_agent("torch-static")
    assert "\n" not in str(info.value)
    artifact.write_bytes(b"not a model")
    with pytest.raises(AgentError, match="not a loadable TorchScript file") as info:
        load_agent(str(artifact), trust_model=True)
    assert "\n" not in str(info.value)
    with pytest.raises(AgentError, match="no such model file"):
        load_agent(str(tmp_path / "missing.torchscript"), trust_model=True)


def test_a_torchscript_file_that_is_not_ours_is_refused(tmp_path):
    from simeval.agents.formats.torchscript import deprecated_apis

    with deprecated_apis("jit"):
        scripted = torch.jit.script(torch.nn.Linear(2, 2))
        torch.jit.save(scripted, str(tmp_path / "other.torchscript"))
    with pytest.raises(AgentError, match=r"other\.torchscript: refused: a TorchScript file is a program.*--trust-model"):
        load_agent(str(tmp_path / "other.torchscript"))
    with pytest.raises(ContractError, match="the model refused the contract's input"):
        load_agent(str(tmp_path / "other.torchscript"), trust_model=True)


def test_configs_refuse_bad_values():
    with pytest.raises(ValueError, match="calibration_frames must be an integer >= 1, got 0"):
        TorchStaticInt8(calibration_frames=0)
    with pytest.raises(ValueError, match="backend must be 'x86'"):
        TorchStaticInt8(backend="qnnpack")
    with pytest.raises(ValueError, match="learning_rate must be > 0"):
        TorchQAT(learning_rate=0.0)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        TorchQAT(epochs=0)
    with pytest.raises(ValueError, match="linear_qconfig must be"):
        TorchDynamicInt8(linear_qconfig="per_row")


# ---------------------------------------------------------------------------------- the builders
def test_folding_is_exact():
    from simeval.agents.formats.torch_state_dict import load_pilotnet

    parent = load_pilotnet(model_dir("torch-fp32") / "model.pt")
    x = torch.from_numpy(preprocess(_frames(4)))
    with torch.inference_mode():
        assert torch.allclose(fold_pilotnet(parent)(x), parent(x), atol=1e-4)


TINY = {
    "torch-dynamic": TorchDynamicInt8(),
    "torch-static": TorchStaticInt8(calibration_frames=16, calibration_batch=8),
    "torch-qat": TorchQAT(epochs=1, frames_per_epoch=64, batch_size=32, calibration_frames=16, val_frames=32, threads=1),
}


@pytest.mark.parametrize("name", TINY)
def test_tiny_build_of_each_variant(name, tiny_data, tmp_path):
    """The real builder, from the shipped torch-fp32, on the shared tiny data set (conftest) with a
    handful of calibration frames: the artifact is small, loads as an agent and drives close to its parent."""
    from simeval.agents.formats.torch_state_dict import load_pilotnet
    from simeval.build.optimize.builder import handler, write_card
    from simeval.build.optimize.context import BuildContext

    config = TINY[name]
    parent_dir = model_dir("torch-fp32")
    parent = read_card(parent_dir)
    context = BuildContext(data=tiny_data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        result = handler(config)(config, parent_dir, tmp_path, context)
    card = write_card(BY_NAME[name], parent, result, context, 0.0)
    assert ModelCard(**json.loads((tmp_path / "card.json").read_text())) == card
    assert parent.size_bytes / card.size_bytes >= MIN_SIZE_RATIO
    assert card.training["method"]["config"] == dataclasses.asdict(config)
    frames = _frames(4)
    agent = load_agent(str(result.artifact), trust_model=True)
    with torch.inference_mode():
        reference = load_pilotnet(parent_dir / parent.artifact)(torch.from_numpy(preprocess(frames))).numpy()
    commands = np.array([agent.act(frame, {}) for frame in frames])
    assert np.abs(commands - reference).max(axis=0)[0] < 1.5, (commands, reference)  # v, m/s
    assert np.abs(commands - reference).max(axis=0)[1] < 0.5, (commands, reference)  # w, rad/s
    assert np.isfinite(card.test["all"]["mse_normalized"]) and card.test["all"]["frames"] > 1000
