"""ONNX Runtime variants: export and static int8 quantization through the real code, the shipped
artifacts against their cards and the issue's targets, and agents that fail cleanly and quietly."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from simeval.agents import load_agent  # noqa: E402
from simeval.agents.card import model_dir  # noqa: E402
from simeval.agents.pilotnet import preprocess  # noqa: E402
from simeval.errors import AgentError, ContractError  # noqa: E402
from tests.support import rollout_frames  # noqa: E402

VARIANTS = ("onnx-fp32", "onnx-int8")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The shipped torch-fp32 model exported and quantized into tmp on a handful of frames."""
    pytest.importorskip("torch")
    pytest.importorskip("onnxscript")
    from simeval.agents.variants import OnnxStaticInt8
    from simeval.build.optimize import onnx_export as ob

    work = tmp_path_factory.mktemp("onnx")
    frames = rollout_frames(16)
    fp32 = ob.export_onnx(model_dir("torch-fp32") / "model.pt", work / "fp32.onnx")
    int8 = ob.quantize_int8(fp32, work / "int8.onnx", frames, OnnxStaticInt8(calibration_frames=16))
    return {"fp32": fp32, "int8": int8, "frames": frames}


def test_folding_the_input_norm_is_exact():
    torch = pytest.importorskip("torch")
    from simeval.agents.formats.torch_state_dict import load_pilotnet
    from simeval.build.optimize.folding import fold_input_norm_torch

    model = load_pilotnet(model_dir("torch-fp32") / "model.pt")
    folded = fold_input_norm_torch(model)
    x = torch.from_numpy(preprocess(rollout_frames(4)))
    with torch.inference_mode():
        assert torch.allclose(folded(x), model(x), atol=1e-4)
    assert isinstance(folded.input_norm, torch.nn.Identity) and not isinstance(model.input_norm, torch.nn.Identity)


def test_export_matches_torch_at_any_batch(exported):
    import torch

    from simeval.agents.formats.torch_state_dict import load_pilotnet

    batch = preprocess(exported["frames"])
    with torch.inference_mode():
        expected = load_pilotnet(model_dir("torch-fp32") / "model.pt")(torch.from_numpy(batch)).numpy()
    predict = session(exported["fp32"])
    assert np.allclose(predict(batch), expected, atol=1e-3)  # (v m/s, w rad/s): the rescaling is inside
    assert np.allclose(predict(batch[:1]), expected[:1], atol=1e-3)


def test_int8_is_static_qdq_per_channel_with_an_exact_input_and_a_float_tail(exported):
    import onnx

    graph = onnx.load(str(exported["int8"]))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in graph.graph.initializer}
    ops = [n.op_type for n in graph.graph.node]
    assert "DynamicQuantizeLinear" not in ops and ops.count("QuantizeLinear") >= 9  # static: every activation
    weights = [n for n in graph.graph.node if n.op_type == "DequantizeLinear" and n.input[0].endswith("weight_quantized")]
    assert len(weights) == 9  # 5 conv + 4 dense; the output layer stays float
    assert all(inits[n.input[0]].dtype == np.int8 and inits[n.input[1]].size == inits[n.input[0]].shape[0] for n in weights)
    first_q = next(n for n in graph.graph.node if n.op_type == "QuantizeLinear")
    assert inits[first_q.input[1]] == pytest.approx(1 / 255) and inits[first_q.input[2]] == 0
    assert ops[-2:] == ["Mul", "Add"]  # the rescaling to SI units runs in float
    assert exported["fp32"].stat().st_size / exported["int8"].stat().st_size > 3.5
    batch = preprocess(exported["frames"])
    fp32 = session(exported["fp32"])(batch)
    int8 = session(exported["int8"])(batch)
    assert np.abs(int8 - fp32).max(axis=0) == pytest.approx([0, 0], abs=0.5)


def session(path):
    """The graph at ``path`` on ONNX Runtime, as the agents run it."""
    from simeval.agents.contract import Artifact, RuntimeSpec
    from simeval.agents.formats.onnx_model import OnnxRuntime

    runtime = OnnxRuntime(Artifact(path=str(path), format="onnx"), spec=RuntimeSpec(), card=None, name=str(path))
    return lambda batch: runtime.run(batch)[0]


def test_int8_config_is_validated():
    from simeval.agents.variants import OnnxExport, OnnxStaticInt8

    with pytest.raises(ValueError, match="calibrate_method must be one of"):
        OnnxStaticInt8(calibrate_method="Histogram")
    with pytest.raises(ValueError, match="calibration_frames must be an integer >= 1, got 0"):
        OnnxStaticInt8(calibration_frames=0)
    with pytest.raises(ValueError, match="opset must be"):
        OnnxExport(opset=9)


def test_builder_calibrates_on_training_frames(tmp_path, tiny_data):
    pytest.importorskip("torch")
    from simeval.agents.variants import OnnxStaticInt8
    from simeval.build.optimize.context import BuildContext
    from simeval.build.optimize.onnx_export import build_int8

    result = build_int8(OnnxStaticInt8(), model_dir("torch-fp32"), tmp_path, BuildContext(tiny_data))
    assert result.artifact == tmp_path / "model.onnx"
    assert result.method["calibration"] == {"split": "train", "frames": 512, "seed": 0}
    assert result.predict(np.zeros((3, 66, 200, 3), np.float32)).shape == (3, 2)


def test_bad_artifact_fails_with_one_line(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(AgentError, match=r"garbage\.onnx: not a loadable ONNX model") as caught:
        load_agent(str(garbage))
    assert "\n" not in str(caught.value)
    with pytest.raises(AgentError, match="no such model file"):
        load_agent(str(tmp_path / "nothing.onnx"))


def test_wrong_graph_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])])
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), str(path))
    with pytest.raises(ContractError, match=r"relu\.onnx: the contract gives the model input \(1, 66, 200, 3\) \(NHWC float32\), the model takes x \(1, 3\) float32") as caught:
        load_agent(str(path))
    assert "\n" not in str(caught.value)
