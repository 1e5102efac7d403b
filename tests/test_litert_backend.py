"""LiteRT variants: conversion (dynamic range, float16, full-integer int8) through the real code,
the shipped artifacts against their cards and the issue's targets, and agents that fail cleanly
and quietly."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

from simeval.agents import load_agent  # noqa: E402
from simeval.agents.card import model_dir  # noqa: E402
from simeval.agents.pilotnet import preprocess  # noqa: E402
from simeval.errors import AgentError, ContractError  # noqa: E402
from tests.support import rollout_frames  # noqa: E402

VARIANTS = ("tflite-dynamic", "tflite-fp16", "tflite-int8")


def needs_tensorflow() -> None:
    """Skip without TensorFlow; import it through simeval, which quiets its start-up log first."""
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("needs tensorflow (pip install 'simeval[tf]')")
    import simeval.agents.formats.keras_model  # noqa: F401


@pytest.fixture(scope="module")
def keras_parent(tmp_path_factory):
    """The shipped tf-fp32 model, or (before it is trained) a freshly initialised PilotNet."""
    needs_tensorflow()
    shipped = model_dir("tf-fp32") / "model.keras"
    if shipped.is_file():
        return shipped
    import warnings

    from simeval.agents.pilotnet import LabelRange
    from simeval.build.training.fit_keras import build_pilotnet

    model, _ = build_pilotnet(LabelRange((6.5, -4.0), (24.0, 4.0)))
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    with warnings.catch_warnings():  # Keras 3.15's saver calls np.array(copy=False) on variables (numpy 2)
        warnings.simplefilter("ignore", DeprecationWarning)
        model.save(path)
    return path


@pytest.fixture(scope="module")
def converted(keras_parent, tmp_path_factory):
    """Every conversion into tmp, int8 calibrated on a handful of training-circuit frames."""
    from simeval.agents import variants as v
    from simeval.build.optimize import litert_convert as lb

    work = tmp_path_factory.mktemp("litert")
    frames = rollout_frames(16)
    configs = {
        "dynamic": v.LiteRTDynamicRange(), "fp16": v.LiteRTFloat16(),
        "int8": v.LiteRTFullInt8(calibration_frames=16), "int8-no-tail": v.LiteRTFullInt8(calibration_frames=16, float_tail=0),
    }
    paths = {name: lb.convert(keras_parent, work / f"{name}.tflite", config, frames) for name, config in configs.items()}
    return paths | {"frames": frames}


def keras_outputs(path, batch):
    from simeval.agents.formats.keras_model import load_pilotnet

    return load_pilotnet(path)(batch, training=False).numpy()


def test_folding_the_input_norm_is_exact(keras_parent):
    from simeval.agents.formats.keras_model import load_pilotnet
    from simeval.build.optimize.folding import fold_input_norm_keras

    model = load_pilotnet(keras_parent)
    folded = fold_input_norm_keras(model)
    batch = preprocess(rollout_frames(4))
    assert np.allclose(folded(batch).numpy(), model(batch).numpy(), atol=1e-4)
    assert "input_norm" not in [layer.name for layer in folded.layers] and len(folded.layers) == len(model.layers) - 1


@pytest.mark.parametrize("variant, tolerance", [("dynamic", 0.3), ("fp16", 0.01), ("int8", 0.3), ("int8-no-tail", 0.3)])
def test_conversion_matches_keras_at_any_batch(converted, keras_parent, variant, tolerance):
    from simeval.agents.formats.litert import BatchRunner, load_interpreter

    batch = preprocess(converted["frames"])
    expected = keras_outputs(keras_parent, batch)
    run = BatchRunner(load_interpreter(converted[variant]))
    one = run(batch[:1])[0]
    assert one.dtype == np.float32 and one.shape == (1, 2)
    assert (np.abs(run(batch)[0] - expected).max(axis=0) / (np.abs(expected).max(axis=0) + 1) < tolerance).all()
    assert np.allclose(run(batch[:1])[0], one)  # resized back to batch 1


def dense_output_types(path) -> list[str]:
    """dtype of each FULLY_CONNECTED op's output, in graph order."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(path.read_bytes(), 0)
    graph = model.subgraphs[0]
    names = {getattr(schema.TensorType, k): k for k in dir(schema.TensorType) if not k.startswith("_")}
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    dense = [op for op in graph.operators if codes[op.opcodeIndex] == schema.BuiltinOperator.FULLY_CONNECTED]
    return [names[graph.tensors[op.outputs[0]].type] for op in dense]


def test_sizes_and_types_of_the_conversions(converted, keras_parent):
    from simeval.agents.formats.litert import load_interpreter

    fp32_bytes = keras_parent.stat().st_size
    assert fp32_bytes / converted["dynamic"].stat().st_size > 3.5
    assert fp32_bytes / converted["int8"].stat().st_size > 3.5
    assert 1.8 < fp32_bytes / converted["fp16"].stat().st_size < 2.2
    int8 = load_interpreter(converted["int8"])
    assert int8.get_input_details()[0]["dtype"] == np.float32 and int8.get_output_details()[0]["dtype"] == np.float32
    kinds = {d["dtype"] for d in int8.get_tensor_details()}
    assert np.int8 in kinds and np.int32 in kinds  # int8 activations and weights, int32 biases
    # The float tail: fc1-fc3 int8, fc4 and the output layer float; without it, all five int8.
    assert dense_output_types(converted["int8"]) == ["INT8", "INT8", "INT8", "FLOAT32", "FLOAT32"]
    assert dense_output_types(converted["int8-no-tail"]) == ["INT8"] * 5
    assert dense_output_types(converted["dynamic"]) == ["FLOAT32"] * 5


def test_a_model_with_int8_input_is_refused(keras_parent, tmp_path):
    """Without a contract saying so, simeval feeds float frames: an int8-input model is refused at load."""
    from simeval.agents.formats.keras_model import load_pilotnet, tf

    frames = rollout_frames(4)
    load_pilotnet(keras_parent).export(tmp_path / "sm", format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([preprocess(f[None])] for f in frames)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    path = tmp_path / "int8-io.tflite"
    path.write_bytes(converter.convert())
    with pytest.raises(ContractError, match=r"int8-io\.tflite: the contract gives a float32 input, the model takes .* int8"):
        load_agent(str(path))


def test_configs_are_validated():
    from simeval.agents.variants import LiteRTFullInt8

    with pytest.raises(ValueError, match="float_tail must be in 0..5, got 6"):
        LiteRTFullInt8(float_tail=6)
    with pytest.raises(ValueError, match="calibration_frames must be an integer >= 1, got 0"):
        LiteRTFullInt8(calibration_frames=0)


def test_int8_needs_calibration_frames(keras_parent, tmp_path):
    from simeval.agents.variants import LiteRTFullInt8
    from simeval.build.optimize.litert_convert import convert

    with pytest.raises(ValueError, match="frames must hold calibration frames"):
        convert(keras_parent, tmp_path / "x.tflite", LiteRTFullInt8(), None)


def test_builder_calibrates_on_training_frames(tmp_path, tiny_data):
    needs_tensorflow()
    from simeval.agents.variants import LiteRTFullInt8
    from simeval.build.optimize.context import BuildContext
    from simeval.build.optimize.litert_convert import build

    result = build(LiteRTFullInt8(), model_dir("tf-fp32"), tmp_path, BuildContext(tiny_data))
    assert result.artifact == tmp_path / "model.tflite"
    assert result.method["calibration"] == {"split": "train", "frames": 512, "seed": 0}
    assert result.predict(np.zeros((3, 66, 200, 3), np.float32)).shape == (3, 2)



def test_bad_artifact_fails_with_one_line(tmp_path):
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a model" * 10)
    with pytest.raises(AgentError, match=r"garbage\.tflite: not a loadable LiteRT model") as caught:
        load_agent(str(garbage))
    assert "\n" not in str(caught.value)
    with pytest.raises(AgentError, match="no such model file"):
        load_agent(str(tmp_path / "nothing.tflite"))
