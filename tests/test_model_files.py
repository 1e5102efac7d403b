"""Any model file drives through its contract: a user's ONNX export, DeepLearningStudio's PilotNet
(state dict, TorchScript, ONNX, Keras .h5, TFLite), in run, sweep, offline and `models check`; and
every way it can go wrong is one line with exit code 2."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simeval.agents import load_agent
from simeval.agents.card import model_dir, sha256_of
from simeval.env import EnvConfig, FollowLineEnv
from simeval.errors import EXIT_BAD_INPUT, AgentError
from simeval.models import EXIT_FINDINGS
from simeval.models import main as models_main
from simeval.paths import REPO_ROOT
from simeval.run import main as run_main
from simeval.sim.camera import CameraConfig
from tests.support import circuit

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")


def frames(count: int = 4) -> list[tuple[np.ndarray, dict]]:
    env = FollowLineEnv(circuit("montmelo"))
    obs, info = env.reset(seed=0)
    seen = [(obs, info)]
    for _ in range(count - 1):
        obs, *_, info = env.step(env.to_action(8.0, 0.2))
        seen.append((obs, info))
    return seen


@pytest.fixture
def user_onnx(tmp_path) -> Path:
    """onnx-fp32's graph as a user's own file, with no contract beside it."""
    path = tmp_path / "my_model.onnx"
    shutil.copy(model_dir("onnx-fp32") / "model.onnx", path)
    return path


def test_a_users_onnx_file_drives_like_the_shipped_one(user_onnx):
    mine, shipped = load_agent(str(user_onnx)), load_agent("onnx-fp32")
    for obs, info in frames():
        assert mine.act(obs, info) == shipped.act(obs, info)
    assert mine.info.artifact_sha256 == sha256_of(user_onnx) and mine.info.name == str(user_onnx)
    assert mine.info.settings["contract"]["preset"] == "simeval-pilotnet"  # no contract beside it: simeval's conventions


def test_run_names_the_file_and_its_sha256(user_onnx, tmp_path):
    out = tmp_path / "run"
    assert run_main(["--agent", str(user_onnx), "--circuit", "simple", "--max-time-s", "5", "--no-plot", "--out", str(out)]) == 0
    agent = json.loads((out / "config.json").read_text())["agent"]
    assert agent["artifact"] == str(user_onnx) and agent["artifact_sha256"] == sha256_of(user_onnx)
    assert agent["settings"]["contract"]["artifact"]["format"] == "onnx"


def test_shipped_agents_carry_their_contract_in_their_card():
    agent = load_agent("torch-static")
    contract = agent.info.settings["contract"]
    assert contract["artifact"]["format"] == "torchscript" and contract["input"]["image"] == "frame"
    assert load_agent("torch-dynamic").contract.runtime.batched is False


# ------------------------------------------------------------------------------ DeepLearningStudio
def test_the_dls_state_dict_is_the_same_network_as_torch_fp32(dls_models):
    """Mapped weights and folded labels: on the same 66x200 input, DLS's outputs through their
    convention give torch-fp32's commands."""
    import torch

    from simeval.agents.formats.torch_state_dict import DLSPilotNet, load_pilotnet
    from simeval.agents.pilotnet import preprocess

    dls = DLSPilotNet()
    dls.load_state_dict(torch.load(dls_models["state-dict"], weights_only=True))
    dls.eval()
    ours = load_pilotnet(model_dir("torch-fp32") / "model.pt")
    x = torch.from_numpy(preprocess(np.stack([obs for obs, _ in frames()])))
    with torch.inference_mode():
        p = dls(x.permute(0, 3, 1, 2)).numpy()
        expected = ours(x).numpy()
    np.testing.assert_allclose(np.stack([17.5 * p[:, 0] + 6.5, 14.2 * p[:, 1] - 7.1], axis=1), expected, atol=1e-3)


def test_the_three_dls_files_agree_frame_by_frame(dls_models):
    agents = {kind: load_agent(str(path), trust_model=True) for kind, path in dls_models.items()}
    assert {kind: a.camera.shape for kind, a in agents.items()} == dict.fromkeys(dls_models, (480, 640, 3))
    env = FollowLineEnv(circuit("montmelo"), EnvConfig(camera=CameraConfig.sensor()))
    obs, info = env.reset(seed=0)
    commands = {kind: agent.act(obs, info) for kind, agent in agents.items()}
    for kind in ("torchscript", "onnx"):
        np.testing.assert_allclose(commands[kind], commands["state-dict"], atol=1e-3)


def test_batchnorm_in_training_mode_normalises_each_frame_by_itself(dls_models, tmp_path):
    """DLS's driving code never calls eval(): ``batchnorm = "train"`` reproduces it, frame by frame
    even offline (a batch would share its statistics), and leaves the default eval() alone."""
    import torch

    from simeval.agents.formats.torch_state_dict import DLSPilotNet

    model = tmp_path / "m.pth"
    shutil.copy(dls_models["state-dict"], model)
    contract = Path(str(dls_models["state-dict"]).replace(".pth", ".simeval.toml")).read_text()
    (tmp_path / "m.simeval.toml").write_text(contract.replace('path = "pilot_net_model_best.pth"', 'path = "m.pth"')
                                             .replace('batchnorm = "eval"', 'batchnorm = "train"'))
    train, default = load_agent(str(model)), load_agent(str(dls_models["state-dict"]))
    assert not train.batched and default.batched
    env = FollowLineEnv(circuit("montmelo"), EnvConfig(camera=CameraConfig.sensor()))
    obs, info = env.reset(seed=0)
    images = [obs]
    for _ in range(3):
        obs, *_, info = env.step(env.to_action(8.0, 0.1))
        images.append(obs)
    commands = np.array([train.act(image, {}) for image in images])
    assert np.abs(commands - np.array([default.act(image, {}) for image in images])).max() > 1e-3
    reference = DLSPilotNet()
    reference.load_state_dict(torch.load(dls_models["state-dict"], weights_only=True))
    reference.train()  # every layer in training mode: only BatchNorm differs, and there is no dropout
    with torch.no_grad():
        p = reference(torch.from_numpy(train.pipeline.prepare(np.stack(images[:1])))).numpy()[0]
    np.testing.assert_allclose(commands[0], [17.5 * p[0] + 6.5, 14.2 * p[1] - 7.1], atol=1e-4)
    np.testing.assert_allclose(train.predict([np.stack(images)])[0], commands, atol=1e-4)


def test_torch_export_and_savedmodel_files_drive_like_their_source(dls_models, tmp_path):
    """The two other code-carrying formats: DLS's network as a ``torch.export`` program (.pt2) and
    tf-fp32 as a SavedModel folder each give their source's commands, and load only when trusted."""
    import torch

    from simeval.agents.formats.keras_model import load_keras
    from simeval.agents.formats.torch_state_dict import load_pilotnet

    network = load_pilotnet(dls_models["state-dict"], "dls-pilotnet")
    program = torch.export.export(network, (torch.zeros(2, 3, 66, 200),),
                                  dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},))
    pt2 = tmp_path / "pilot_net.pt2"
    torch.export.save(program, str(pt2))
    assert models_main(["init", str(pt2), "--preset", "dls-pilotnet-torch"]) == 0
    saved = tmp_path / "tf_pilotnet"
    load_keras(model_dir("tf-fp32") / "model.keras").export(str(saved), format="tf_saved_model", verbose=False)
    sensor_env = FollowLineEnv(circuit("montmelo"), EnvConfig(camera=CameraConfig.sensor()))
    sensor, _ = sensor_env.reset(seed=0)
    frame, _ = FollowLineEnv(circuit("montmelo")).reset(seed=0)
    for path, source, image in ((pt2, str(dls_models["state-dict"]), sensor), (saved, "tf-fp32", frame)):
        with pytest.raises(AgentError, match="pass --trust-model"):
            load_agent(str(path))
        agent = load_agent(str(path), trust_model=True)
        np.testing.assert_allclose(agent.act(image, {}), load_agent(source).act(image, {}), atol=1e-4)
    assert load_agent(str(saved), trust_model=True).info.settings["contract"]["artifact"]["format"] == "tf-savedmodel"


def test_torchscript_by_path_needs_trust_with_one_line(dls_models, tmp_path, capsys):
    args = ["--agent", str(dls_models["torchscript"]), "--circuit", "simple", "--no-plot", "--out", str(tmp_path / "run")]
    assert run_main(args) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "refused: a TorchScript file is a program" in err and "--trust-model" in err and err.count("\n") == 1
    assert not (tmp_path / "run").exists()
    assert run_main([*args, "--trust-model", "--max-time-s", "3"]) == 0


def test_a_contract_that_does_not_fit_the_model_fails_at_load_with_one_line(dls_models, tmp_path, capsys):
    onnx = tmp_path / "bare.onnx"
    shutil.copy(dls_models["onnx"], onnx)  # no contract beside it: simeval's NHWC frame is assumed
    assert run_main(["--agent", str(onnx), "--out", str(tmp_path / "run")]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "the contract gives the model input (1, 66, 200, 3) (NHWC float32), the model takes input (N, 3, 66, 200) float32" in err
    state = tmp_path / "bare.pth"
    shutil.copy(dls_models["state-dict"], state)
    assert run_main(["--agent", str(state), "--out", str(tmp_path / "run")]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "weights do not fit the simeval-pilotnet architecture (missing: input_norm.weight" in err and err.count("\n") == 1


def test_a_missing_runtime_names_the_extra(user_onnx):
    code = (
        "import sys\n"
        "sys.modules['onnxruntime'] = None  # as if it were not installed\n"
        "from simeval.run import main\n"
        f"sys.exit(main(['--agent', {str(user_onnx)!r}, '--out', {str(user_onnx.parent / 'run')!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == EXIT_BAD_INPUT
    assert "onnx models need onnxruntime; install it with `pip install 'simeval[onnx]'`" in done.stderr
    assert done.stderr.count("\n") == 1


# ------------------------------------------------------------------------------ simeval.models
def test_init_writes_a_contract_that_check_accepts(dls_models, tmp_path, capsys):
    model = tmp_path / "pilot_net_model_best_7.pth"
    shutil.copy(dls_models["state-dict"], model)
    assert models_main(["init", str(model), "--preset", "dls-pilotnet-torch", "--pin"]) == 0
    contract = (tmp_path / "pilot_net_model_best_7.simeval.toml").read_text()
    assert 'preset = "dls-pilotnet-torch"' in contract and sha256_of(model) in contract
    assert models_main(["init", str(model), "--preset", "dls-pilotnet-torch"]) == 2  # exists: --force to replace
    capsys.readouterr()
    assert models_main(["check", str(model), "--frames", "200"]) == 0
    out = capsys.readouterr().out
    assert "inputs:  input (N, 3, 66, 200) float32" in out and "nothing looks wrong" in out


def test_init_takes_the_format_from_the_file_and_the_rest_from_the_preset(dls_models, tmp_path):
    """A preset names the pipeline, the file names its format: DLS's ONNX export and TorchScript
    trace (a .pt, like a state dict, told apart by its content) under the dls-pilotnet-torch preset."""
    from simeval.agents.contract import read_contract
    from simeval.agents.formats import format_of

    for kind, expected in (("onnx", "onnx"), ("torchscript", "torchscript"), ("state-dict", "torch-state-dict")):
        model = tmp_path / dls_models[kind].name
        shutil.copy(dls_models[kind], model)
        assert format_of(model) == expected
        assert models_main(["init", str(model), "--preset", "dls-pilotnet-torch"]) == 0
        contract = read_contract(tmp_path / f"{model.stem}.simeval.toml")
        assert contract.artifact.format == expected and contract.input.layout == "NCHW" and contract.output.v.scale == 17.5
        assert contract.artifact.architecture == ("dls-pilotnet" if kind == "state-dict" else None)


def line_follower_onnx(path: Path) -> Path:
    """A tiny ONNX model that needs the colour order right: it steers towards the red pixels
    (R - 0.7 (G + B) > 0) of a 66x200 RGB frame at a constant 15 m/s; in BGR order the red line
    looks blue, and it steers away from it."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    columns = np.linspace(1.0, -1.0, 200, dtype=np.float32).reshape(1, 1, 200, 1)  # left of the image: turn left (+)
    tensors = {
        "redness": np.array([[1.0], [-0.7], [-0.7]], np.float32), "columns": columns,
        "gain": np.array(7.0, np.float32), "eps": np.array(1e-3, np.float32), "speed": np.array([[15.0]], np.float32),
    }
    nodes = [
        helper.make_node("MatMul", ["image", "redness"], ["red"]),
        helper.make_node("Relu", ["red"], ["line"]),
        helper.make_node("Mul", ["line", "columns"], ["pull"]),
        helper.make_node("ReduceSum", ["pull", "axes"], ["pull_sum"], keepdims=0),
        helper.make_node("ReduceSum", ["line", "axes"], ["line_sum"], keepdims=0),
        helper.make_node("Add", ["line_sum", "eps"], ["weight"]),
        helper.make_node("Div", ["pull_sum", "weight"], ["offset"]),
        helper.make_node("Mul", ["offset", "gain"], ["w"]),
        helper.make_node("Unsqueeze", ["w", "one"], ["w_column"]),
        helper.make_node("Mul", ["w_column", "zero"], ["zeros"]),
        helper.make_node("Add", ["zeros", "speed"], ["v_column"]),
        helper.make_node("Concat", ["v_column", "w_column"], ["command"], axis=1),
    ]
    tensors |= {"axes": np.array([1, 2, 3], np.int64), "one": np.array([1], np.int64), "zero": np.array(0.0, np.float32)}
    graph = helper.make_graph(
        nodes, "line_follower", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 66, 200, 3])],
        [helper.make_tensor_value_info("command", TensorProto.FLOAT, ["N", 2])],
        [numpy_helper.from_array(v, k) for k, v in tensors.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def test_check_names_a_swapped_colour_order(tmp_path, capsys):
    model = line_follower_onnx(tmp_path / "red.onnx")
    (tmp_path / "red.simeval.toml").write_text(
        'format = "simeval-model-contract/1"\npreset = "simeval-pilotnet"\n[artifact]\npath = "red.onnx"\nformat = "onnx"\n'
        '[input]\ncolour = "BGR"\n'
    )
    assert models_main(["check", str(model)]) == EXIT_FINDINGS
    assert "with [input] colour = RGB the model follows the expert much more closely" in capsys.readouterr().out


def test_check_names_normalised_outputs(dls_models, tmp_path, capsys):
    model = tmp_path / "m.pth"
    shutil.copy(dls_models["state-dict"], model)
    contract = Path(str(dls_models["state-dict"]).replace(".pth", ".simeval.toml")).read_text()
    (tmp_path / "m.simeval.toml").write_text(contract.replace('path = "pilot_net_model_best.pth"', 'path = "m.pth"')
                                             .replace("scale = 17.5", "scale = 1.0").replace("offset = 6.5", "offset = 0.0"))
    assert models_main(["check", str(model), "--frames", "200"]) == EXIT_FINDINGS
    assert "the outputs look normalised" in capsys.readouterr().out


def test_a_contract_file_beside_another_model_is_not_taken(dls_models, tmp_path, capsys):
    other = tmp_path / "pilot_net_model_best.onnx"
    shutil.copy(dls_models["onnx"], other)
    shutil.copy(Path(str(dls_models["state-dict"]).replace(".pth", ".simeval.toml")), tmp_path / "pilot_net_model_best.simeval.toml")
    assert run_main(["--agent", str(other), "--out", str(tmp_path / "run")]) == EXIT_BAD_INPUT
    assert "describes pilot_net_model_best.pth, not pilot_net_model_best.onnx" in capsys.readouterr().err


# ------------------------------------------------------------------------------ offline, sweep
def test_offline_and_sweep_take_model_files_and_refuse_bad_ones_with_one_line_each(dls_models, user_onnx, tmp_path):
    """A good model file is a row of the offline table and an agent of the sweep; a contract that
    does not fit, a format that carries code without --trust-model and a missing runtime are one
    line each and exit 2, while the other agents still run."""
    import os

    nhwc = tmp_path / "nhwc.pth"
    shutil.copy(dls_models["state-dict"], nhwc)
    contract = Path(str(dls_models["state-dict"]).replace(".pth", ".simeval.toml")).read_text()
    (tmp_path / "nhwc.simeval.toml").write_text(contract.replace('path = "pilot_net_model_best.pth"', 'path = "nhwc.pth"')
                                                .replace('layout = "NCHW"', 'layout = "NHWC"'))
    fake = tmp_path / "site" / "onnxruntime"  # onnxruntime as a machine without it sees it, in the workers too
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'onnxruntime'\", name='onnxruntime')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), str(REPO_ROOT)])}
    good = str(dls_models["state-dict"])
    bad = {str(nhwc): "the model takes input (N, 3, 66, 200)", str(dls_models["torchscript"]): "pass --trust-model",
           str(user_onnx): "install it with `pip install 'simeval[onnx]'`"}
    out = {"sweep": tmp_path / "sweep", "offline": tmp_path / "offline"}
    commands = {
        "sweep": ["--agents", ",".join(["expert", good, *bad]), "--circuits", "simple", "--max-time-s", "3", "--no-plot",
                  "--no-progress", "--jobs", "1", "--out", str(out["sweep"])],
        "offline": ["--agents", ",".join(["torch-fp32", good, *bad]), "--circuits", "simple", "--calls", "20", "--out", str(out["offline"])],
    }
    for command, args in commands.items():
        done = subprocess.run([sys.executable, "-m", f"simeval.{command}", *args], capture_output=True, text=True,
                              cwd=REPO_ROOT, env=env, timeout=300)
        assert done.returncode == EXIT_BAD_INPUT, done.stderr
        lines = [line for line in done.stderr.splitlines() if line.startswith(("error:", "skipped agent"))]
        assert len(lines) == 3, done.stderr
        for path, why in bad.items():
            assert [line for line in lines if f"{path}:" in line and why in line], (path, lines)
    assert {row["agent"] for row in csv.DictReader((out["sweep"] / "summary.csv").open())} == {"expert", good}
    size = dls_models["state-dict"].stat().st_size / 1e6
    assert f"| {good} | - | {size:.2f} | - |" in (out["sweep"] / "report.md").read_text()  # its size, from its run
    rows = {r["agent"]: r for r in csv.DictReader((out["offline"] / "offline.csv").open())}
    assert rows[good]["sha256"] == sha256_of(dls_models["state-dict"]) and not rows[good]["reason"]
    assert "mse_montreal" not in rows[good]
    for key in ("mse_simple", "mse_simple_v_mps2", "mse_simple_contract", "mse_all", "mse_all_w_radps2", "latency_p50_ms"):
        assert float(rows[good][key]) >= 0
    assert float(rows[good]["mse_all"]) < 3 * float(rows["torch-fp32"]["mse_all"])  # the same network, through DLS's input
    assert float(rows[good]["mse_all_contract"]) < float(rows["torch-fp32"]["mse_all_contract"])  # outputs in DLS's [0, 1]


# ------------------------------------------------------------------------------ DLS Keras, data export
def test_dls_keras_model_from_h5_and_tflite(tiny_data, tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("ai_edge_litert")
    from simeval.build.dls import dls_keras_pilotnet, train_dls_keras
    from simeval.build.offline import evaluate
    from simeval.eval.expert_laps import expert_lap

    assert abs(dls_keras_pilotnet().count_params() - 17_000_000) < 100_000
    paths = train_dls_keras(tiny_data, tmp_path / "dls-keras", frames=64, epochs=1)
    keras_agent, tflite_agent = load_agent(str(paths["keras"])), load_agent(str(paths["tflite"]))
    lap = expert_lap("simple").first(120)
    images = next(lap.images(keras_agent.camera, chunk=8))
    np.testing.assert_allclose(keras_agent.predict([images])[0], tflite_agent.predict([images])[0], atol=1e-2)
    row = evaluate(str(paths["tflite"]), [lap], calls=10)
    assert not row.reason and np.isfinite(row.mse["simple"]) and row.size_mb > 60
    out = tmp_path / "run"
    assert run_main(["--agent", str(paths["keras"]), "--circuit", "simple", "--max-time-s", "3", "--no-plot", "--out", str(out)]) == 0
    assert json.loads((out / "metrics.json").read_text())["steps"] > 0


def test_dataset_export_in_deeplearningstudios_layout(tiny_data, tmp_path):
    import cv2

    from simeval.build.dataset import load_split
    from simeval.dataset import main as dataset_main

    out = tmp_path / "dls-data"
    assert dataset_main(["export", "--format", "dls", str(out), "--splits", "val", "--data", str(tiny_data), "--no-progress"]) == 0
    folders = sorted(p.name for p in (out / "val").iterdir())
    assert folders == ["gen-002", "gen-002-reverse"]
    rows = list(csv.DictReader((out / "val" / "gen-002" / "data.csv").open()))
    images = sorted((out / "val" / "gen-002").glob("*.png"), key=lambda p: int(p.stem))
    assert len(rows) == len(images) > 0 and images[0].name == "0.png"
    image = cv2.cvtColor(cv2.imread(str(images[0])), cv2.COLOR_BGR2RGB)  # as their scripts read it
    assert image.shape == (480, 640, 3)
    stored = load_split(tiny_data, "val", ("frames", "labels", "circuit"))
    assert float(rows[0]["v"]) == pytest.approx(float(stored["labels"][0, 0]), abs=1e-5)
    crop = cv2.resize(image[240:480], (200, 66), interpolation=cv2.INTER_AREA)
    assert np.abs(crop.astype(int) - stored["frames"][0].astype(int)).mean() < 4  # the same view, resized
    assert dataset_main(["export", str(out), "--splits", "val", "--data", str(tiny_data), "--no-progress"]) == 0  # kept, not redone
