"""TensorRT variants (tftrt-fp32/fp16/int8): every step that runs on a CPU is tested here for real
(the ONNX export of the Keras model against Keras, the strong-typing FP16 and INT8 graphs through
ONNX Runtime, the calibration batches, the cache keys, the one-line failure at load); building and
running engines needs TensorRT and a CUDA GPU, and those tests skip, saying which is missing."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from simeval.agents import load_agent
from simeval.agents.card import ModelCard, model_dir, sha256_of
from simeval.agents.formats import tensorrt_engine as te
from simeval.agents.pilotnet import PARAMETERS, LabelRange, preprocess
from simeval.agents.registry import registered, runnable_agents
from simeval.agents.variants import BY_NAME, PRECISIONS, TensorRTEngine
from simeval.build.optimize.context import BuildContext
from simeval.env import EnvConfig, FollowLineEnv
from simeval.errors import AgentError
from simeval.track.catalogue import evaluation_circuits

LABELS = LabelRange((6.5, -3.84), (24.0, 3.9))
TRAINING_CIRCUIT = "austin"


@pytest.fixture(scope="module")
def tb():
    """The build half (tf2onnx export, calibration, strong-typing graphs): it needs TensorFlow."""
    pytest.importorskip("tensorflow")
    from simeval.build.optimize import tensorrt_build

    return tensorrt_build


def _render(circuit: str, count: int) -> np.ndarray:
    """Real camera frames: the car at seeded random points of ``circuit``."""
    env = FollowLineEnv(circuit, EnvConfig(start="random"))
    return np.stack([env.reset(seed=seed)[0] for seed in range(count)])


@pytest.fixture(scope="module")
def frames() -> np.ndarray:
    """48 frames of the three test circuits (what the agreement checks run on)."""
    return np.concatenate([_render(name, 16) for name in evaluation_circuits()])


@pytest.fixture(scope="module", params=["shipped", "fresh"])
def parent(request, tmp_path_factory):
    """A tf-fp32 parent folder (model.keras + card.json): the shipped one, and a freshly built one
    so that the export is checked even where agents/tf-fp32 is not shipped yet."""
    pytest.importorskip("tensorflow")
    if request.param == "shipped":
        folder = model_dir("tf-fp32")
        if not (folder / "card.json").is_file():
            pytest.skip("agents/tf-fp32 is not shipped yet (python -m simeval.train --framework tf)")
        return folder
    import keras

    from simeval.build.training.fit_keras import build_pilotnet

    keras.utils.set_random_seed(0)
    model, _ = build_pilotnet(LABELS)
    folder = tmp_path_factory.mktemp("tf-fp32")
    model.save(folder / "model.keras")
    ModelCard(
        name="tf-fp32", framework="tensorflow", precision="fp32", artifact="model.keras",
        sha256=sha256_of(folder / "model.keras"), size_bytes=(folder / "model.keras").stat().st_size,
        parameters=PARAMETERS, label_low=LABELS.low, label_high=LABELS.high,
    ).write(folder)
    return folder


@pytest.fixture(scope="module")
def keras_predict(parent):
    from simeval.agents.formats.keras_model import load_pilotnet

    model = load_pilotnet(parent / "model.keras")
    return lambda batch: model(batch, training=False).numpy()


@pytest.fixture(scope="module")
def exported(parent, tb) -> bytes:
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    return tb.export_onnx(parent / "model.keras")


def _normalized_error(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.abs(LABELS.normalize(got) - LABELS.normalize(want))


# --------------------------------------------------------------------------- config and platform


def test_config_refuses_bad_values():
    assert TensorRTEngine("int8").calibration_frames == 512
    with pytest.raises(ValueError, match="precision must be one of"):
        TensorRTEngine("int4")
    with pytest.raises(ValueError, match="max_batch must be an integer >= 1, got 0"):
        TensorRTEngine("fp32", max_batch=0)
    with pytest.raises(ValueError, match="calibration_batch must be <= calibration_frames"):
        TensorRTEngine("int8", calibration_frames=16, calibration_batch=32)


def test_the_three_variants_are_tensorrt_engines_of_tf_fp32():
    for precision in PRECISIONS:
        variant = BY_NAME[f"tftrt-{precision}"]
        assert variant.format == "tensorrt" and variant.parent == "tf-fp32" and variant.precision == precision
        assert variant.recipe == TensorRTEngine(precision)


def test_runnable_agents_are_the_registry_minus_tensorrt():
    runnable = runnable_agents()
    assert {"expert", "pure-pursuit", "torch-fp32", "tf-fp32"} <= set(runnable)
    assert not [name for name in runnable if name.startswith("tftrt-")]
    assert set(runnable) | {f"tftrt-{p}" for p in PRECISIONS} == set(registered())


def test_agent_without_tensorrt_or_gpu_fails_at_load_with_one_line():
    platform = te.probe()
    if platform.ready:
        pytest.skip(f"this machine has TensorRT {platform.tensorrt} and {platform.gpu}")
    for precision in PRECISIONS:
        with pytest.raises(AgentError) as caught:
            load_agent(f"tftrt-{precision}")
        message = str(caught.value)
        assert "\n" not in message
        assert message.startswith(f"tftrt-{precision} needs NVIDIA TensorRT and a CUDA GPU (found: ")
        assert all(missing in message for missing in platform.missing)
        assert "agents that run here: expert, " in message and "torch-fp32" in message
        assert "tftrt-" not in message.split("agents that run here:")[1]


# --------------------------------------------------------------------------- ONNX export


def test_onnx_export_agrees_with_keras(tb, exported, keras_predict, frames):
    batch = preprocess(frames)
    got = tb.onnx_predict(exported)(batch)
    want = keras_predict(batch)
    assert got.shape == want.shape == (len(frames), 2)
    assert np.abs(got - want).max() < 1e-4  # m/s and rad/s


def test_onnx_export_is_reproducible_and_named(tb, parent, exported):
    import onnx

    assert tb.export_onnx(parent / "model.keras") == exported  # same bytes: same engine cache key
    graph = onnx.load_from_string(exported).graph
    assert [i.name for i in graph.input] == [te.INPUT_NAME] and [o.name for o in graph.output] == [te.OUTPUT_NAME]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [66, 200, 3]
    assert {"Conv", "MatMul", "Relu"} <= {node.op_type for node in graph.node}


def test_onnx_export_names_a_bad_model_file(tb, tmp_path):
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(AgentError, match="model.keras: not a loadable Keras model"):
        tb.export_onnx(bad)


# --------------------------------------------------------------------------- strong typing (TensorRT 11)


def test_fp16_graph_keeps_float32_io_and_agrees(tb, exported, keras_predict, frames):
    import onnx

    fp16 = tb.to_fp16_onnx(exported)
    graph = onnx.load_from_string(fp16).graph
    float32, float16 = onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16
    assert graph.input[0].type.tensor_type.elem_type == float32 == graph.output[0].type.tensor_type.elem_type
    weights = [t for t in graph.initializer if len(t.dims) >= 2]
    assert weights and all(t.data_type == float16 for t in weights)
    batch = preprocess(frames)
    assert _normalized_error(tb.onnx_predict(fp16)(batch), keras_predict(batch)).max() < 2e-3


def test_int8_graph_is_symmetric_qdq_and_stays_close(tb, tiny_data, exported, keras_predict, frames):
    import onnx
    from onnx import numpy_helper

    calibration = tb.calibration_set(BuildContext(tiny_data).calibration_frames(128), 32)
    qdq = tb.to_qdq_onnx(exported, calibration)
    graph = onnx.load_from_string(qdq).graph
    ops = [node.op_type for node in graph.node]
    assert ops.count("QuantizeLinear") >= 5 and ops.count("DequantizeLinear") >= 10
    initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    zero_points = [initializers[n.input[2]] for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert all(z.dtype == np.int8 and not z.any() for z in zero_points)  # symmetric INT8: what TensorRT accepts
    per_channel = [n for n in graph.node if n.op_type == "DequantizeLinear" and initializers[n.input[1]].size > 1]
    assert len(per_channel) >= 5  # conv and dense weights, one scale per output channel
    batch = preprocess(frames)
    error = _normalized_error(tb.onnx_predict(qdq)(batch), keras_predict(batch))
    assert error.mean() < 0.02 and error.max() < 0.08  # measured: 0.009 and 0.034 (shipped tf-fp32)


# --------------------------------------------------------------------------- calibration set


def test_calibration_batches_are_preprocessed_whole_batches(tb):
    raw = _render(TRAINING_CIRCUIT, 40)
    calibration = tb.calibration_set(raw, 16)
    assert len(calibration.batches) == 2 and calibration.frames == 32  # the partial batch is dropped
    assert all(b.shape == (16, 66, 200, 3) and b.dtype == np.float32 and b.flags.c_contiguous for b in calibration.batches)
    np.testing.assert_array_equal(np.concatenate(calibration.batches), preprocess(raw[:32]))
    assert tb.calibration_set(raw, 16).sha256 == calibration.sha256
    assert tb.calibration_set(raw[1:], 16).sha256 != calibration.sha256
    with pytest.raises(ValueError, match="at least one batch of 64, got 40"):
        tb.calibration_set(raw, 64)
    with pytest.raises(ValueError, match="frames must be uint8"):
        tb.calibration_set(raw.astype(np.float32), 16)


def test_calibration_frames_come_from_training_circuits_only(tb, tiny_data):
    from simeval.build.dataset import load_manifest, load_split, load_test_set

    config = TensorRTEngine("int8")
    raw = BuildContext(tiny_data).calibration_frames(config.calibration_frames)
    calibration = tb.calibration_set(raw, config.calibration_batch)
    assert len(calibration.batches) == 16 and calibration.frames == 512
    assert calibration.describe() | {"sha256": None} == {
        "sha256": None, "frames": 512, "batches": 16, "batch": 32, "source": "train split (training circuits only)",
    }
    manifest = load_manifest(tiny_data)
    roles = {c["index"]: c["role"] for c in manifest.circuits}
    train = load_split(tiny_data, "train", ("frames", "circuit"))
    where = {frame.tobytes(): int(c) for frame, c in zip(train["frames"], train["circuit"], strict=True)}
    assert all(frame.tobytes() in where for frame in raw)
    assert {roles[where[frame.tobytes()]] for frame in raw} == {"train"}
    test_frames = {f.tobytes() for name in manifest.test_sets for f in load_test_set(tiny_data, name, ("frames",))["frames"]}
    assert not any(frame.tobytes() in test_frames for frame in raw)


# --------------------------------------------------------------------------- cache keys


def test_engine_key_is_stable_and_changes_with_each_input():
    config = TensorRTEngine("int8")
    args = ("a" * 64, config, "c" * 64, "10.3.0", "NVIDIA H100 80GB HBM3 (sm_90)")
    key = te.engine_key(*args)
    assert key == te.engine_key(*args) and len(key) == 64
    # Pinned: the key must not depend on the process (no hash(), no dict order) or silently change.
    assert key == "81b3b06b894840503d40ee1698bcaf114acc991aeb699a7b48c0a1094c3c5d9b"
    variants = [
        ("b" * 64, *args[1:]), (args[0], TensorRTEngine("fp16"), *args[2:]),
        (args[0], dataclasses.replace(config, max_batch=32), *args[2:]),
        (args[0], dataclasses.replace(config, workspace_bytes=1 << 28), *args[2:]),
        (args[0], dataclasses.replace(config, calibration_frames=256), *args[2:]),
        (*args[:2], "d" * 64, *args[3:]), (*args[:2], None, *args[3:]),
        (*args[:3], "10.4.0", args[4]), (*args[:4], "NVIDIA H200 (sm_90)"), (*args[:4], "NVIDIA H100 80GB HBM3 (sm_89)"),
    ]
    keys = {te.engine_key(*v) for v in variants}
    assert key not in keys and len(keys) == len(variants)


def test_calibration_key_ignores_the_gpu_but_not_the_rest():
    key = te.calibration_key("a" * 64, "c" * 64, "10.3.0")
    assert key == te.calibration_key("a" * 64, "c" * 64, "10.3.0")
    others = {te.calibration_key("b" * 64, "c" * 64, "10.3.0"), te.calibration_key("a" * 64, "d" * 64, "10.3.0"),
              te.calibration_key("a" * 64, "c" * 64, "10.4.0")}
    assert key not in others and len(others) == 3


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(te.CACHE_ENV, str(tmp_path / "trt"))
    assert te.cache_dir() == tmp_path / "trt"
    monkeypatch.delenv(te.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert te.cache_dir() == tmp_path / "xdg" / "simeval" / "trt"


# --------------------------------------------------------------------------- builders without TensorRT


def _skip_if_ready() -> te.Platform:
    platform = te.probe()
    if platform.ready:
        pytest.skip(f"this machine builds engines (TensorRT {platform.tensorrt}, {platform.gpu}): see the GPU tests")
    return platform


def test_fp32_builder_exports_then_stops_with_one_line(tb, parent, exported, tmp_path, monkeypatch):
    _skip_if_ready()
    monkeypatch.setenv(te.CACHE_ENV, str(tmp_path / "cache"))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(AgentError) as caught:
        tb.build(TensorRTEngine("fp32"), parent, out, BuildContext(tmp_path / "no-data-set"))  # fp32 needs no frames
    message = str(caught.value)
    assert "\n" not in message and message.startswith("tftrt-fp32 needs NVIDIA TensorRT and a CUDA GPU")
    assert "CPU steps done" in message
    assert (tmp_path / "cache" / "build" / "tftrt-fp32" / te.ONNX_ARTIFACT).read_bytes() == exported
    assert not list(out.iterdir())  # nothing half-built where the shipped variant goes


def test_int8_builder_writes_onnx_and_calibration_hash_then_stops(tb, tiny_data, parent, exported, tmp_path, monkeypatch):
    _skip_if_ready()
    monkeypatch.setenv(te.CACHE_ENV, str(tmp_path / "cache"))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(AgentError, match="^tftrt-int8 needs NVIDIA TensorRT and a CUDA GPU"):
        tb.build(TensorRTEngine("int8"), parent, out, BuildContext(tiny_data))
    work = tmp_path / "cache" / "build" / "tftrt-int8"
    assert (work / te.ONNX_ARTIFACT).read_bytes() == exported
    described = json.loads((work / tb.CALIBRATION_SET).read_text())
    assert described["frames"] == 512 and described["batch"] == 32 and len(described["sha256"]) == 64
    assert not list(out.iterdir())


def test_a_users_engine_file_says_what_is_missing_in_one_line(tmp_path, capsys):
    """A serialized engine given by path, on a machine without TensorRT or a GPU: one line naming
    the file and what is missing, exit 2, with or without --trust-model."""
    from simeval.agents.formats import format_of
    from simeval.run import main as run_main

    _skip_if_ready()
    engine = tmp_path / "pilotnet.engine"
    engine.write_bytes(b"not built here")
    assert format_of(engine) == "tensorrt-engine"
    for extra in ([], ["--trust-model"]):
        assert run_main(["--agent", str(engine), "--out", str(tmp_path / "run"), *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {engine} needs NVIDIA TensorRT and a CUDA GPU") and err.count("\n") == 1
    assert not (tmp_path / "run").exists()


# --------------------------------------------------------------------------- on a GPU with TensorRT


@pytest.fixture(scope="module")
def gpu() -> te.Platform:
    pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    torch = pytest.importorskip("torch", reason="torch is not installed (it holds the engine's CUDA memory)")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    return te.probe()


@pytest.mark.parametrize(("precision", "tolerance"), [("fp32", 1e-3), ("fp16", 5e-3), ("int8", 0.05)])
def test_engine_builds_agrees_and_is_cached(tb, gpu, exported, keras_predict, frames, precision, tolerance, tmp_path, monkeypatch):
    import tensorrt as trt

    monkeypatch.setenv(te.CACHE_ENV, str(tmp_path))
    config = TensorRTEngine(precision, max_batch=32, calibration_frames=64, calibration_batch=16)
    calibration = tb.calibration_set(_render(TRAINING_CIRCUIT, 64), 16) if precision == "int8" else None
    weak = te.uses_weak_typing(trt)
    onnx_bytes = tb.precision_onnx(exported, config, calibration, weak)
    batches, sha = (calibration.batches, calibration.sha256) if calibration else (None, None)
    engine, calib_cache = te.ensure_engine(onnx_bytes, config, gpu, batches, None, sha)
    runner = te.EngineRunner(engine.read_bytes(), config.max_batch)
    batch = preprocess(frames)
    got = runner(batch)  # 48 frames: a batch of 32, then one of 16
    assert got.shape == (48, 2) and _normalized_error(got, keras_predict(batch)).max() < tolerance
    np.testing.assert_allclose(runner(batch[:1]), got[:1], atol=1e-3)
    stamp = engine.stat().st_mtime_ns
    assert te.ensure_engine(onnx_bytes, config, gpu, batches, None, sha)[0] == engine
    assert engine.stat().st_mtime_ns == stamp  # a cache hit builds nothing
    if precision == "int8" and weak:
        shipped = tmp_path / "shipped.calibration"
        shipped.write_bytes(calib_cache.read_bytes())
        engine.unlink()
        calib_cache.unlink()
        replayed, _ = te.ensure_engine(onnx_bytes, config, gpu, None, shipped, calibration.sha256)
        assert replayed == engine  # same key: rebuilt from the shipped calibration cache, no frames
        assert _normalized_error(te.EngineRunner(replayed.read_bytes(), 32)(batch), got).max() < 0.01
    runner.close()


@pytest.mark.parametrize("precision", PRECISIONS)
def test_shipped_tensorrt_agent_drives_a_frame(gpu, frames, precision):
    name = f"tftrt-{precision}"
    if not (model_dir(name) / "card.json").is_file():
        pytest.skip(f"agents/{name} is not shipped (built with python -m simeval.optimize {name} on a GPU machine)")
    agent = load_agent(name)
    v, w = agent.act(frames[0], {})
    assert np.isfinite([v, w]).all() and agent.last_inference_s > 0 and agent.info.framework == "tensorrt"
    agent.close()


def test_a_users_engine_file_drives_through_its_contract(tb, gpu, exported, keras_predict, frames, tmp_path, monkeypatch):
    """An engine built elsewhere and given by path (simeval's conventions: no contract beside it)
    loads only when trusted and gives the Keras model's commands."""
    import shutil

    import tensorrt as trt

    monkeypatch.setenv(te.CACHE_ENV, str(tmp_path / "cache"))
    config = TensorRTEngine("fp32", max_batch=32)
    engine, _ = te.ensure_engine(tb.precision_onnx(exported, config, None, te.uses_weak_typing(trt)), config, gpu, None, None, None)
    mine = tmp_path / "pilotnet.engine"
    shutil.copy(engine, mine)
    with pytest.raises(AgentError, match="pass --trust-model"):
        load_agent(str(mine))
    agent = load_agent(str(mine), trust_model=True)
    got = np.array([agent.act(frame, {}) for frame in frames[:8]])
    assert _normalized_error(got, keras_predict(preprocess(frames[:8]))).max() < 1e-3
    agent.close()
