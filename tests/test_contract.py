"""The model contract file: presets, overrides, every bad value refused with one line naming the
file and the key, and a property-based run of generated files (each reads, or raises ContractError)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simeval.agents.contract import (
    CONTRACT_FORMAT,
    PRESETS,
    ModelContract,
    contract_path,
    read_contract,
    write_contract,
)
from simeval.agents.tensors import InputPipeline
from simeval.errors import ContractError, SimevalError
from simeval.sim.camera import CameraConfig

HEADER = f'format = "{CONTRACT_FORMAT}"\n'


def write(tmp_path: Path, body: str, name: str = "model.simeval.toml") -> Path:
    path = tmp_path / name
    path.write_text(HEADER + body)
    return path


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_a_file(tmp_path, name):
    contract = dataclasses.replace(PRESETS[name], artifact=dataclasses.replace(PRESETS[name].artifact, path="m.bin"), preset=name)
    path = write_contract(tmp_path / "m.simeval.toml", contract)
    assert read_contract(path) == contract.resolved(tmp_path)
    assert ModelContract.from_dict(contract.as_dict()) == contract


def test_a_file_extends_and_overrides_its_preset(tmp_path):
    path = write(tmp_path, 'preset = "dls-pilotnet-torch"\n[artifact]\npath = "best.pth"\n[output.v]\nscale = 20.0\n')
    contract = read_contract(path)
    assert contract.artifact.path == str(tmp_path / "best.pth") and contract.artifact.architecture == "dls-pilotnet"
    assert contract.output.v.scale == 20.0 and contract.output.v.offset == 6.5  # the rest of [output.v] stays the preset's
    assert contract.input.crop_rows == (240, 480) and contract.input.layout == "NCHW"


def test_the_dls_presets_say_what_their_source_code_does():
    torch_preset, keras_preset = PRESETS["dls-pilotnet-torch"], PRESETS["dls-pilotnet-keras"]
    assert torch_preset.input.image == "sensor" and torch_preset.input.crop_rows == (240, 480)
    assert torch_preset.input.resize == (200, 66) and torch_preset.input.interpolation == "linear"
    assert (torch_preset.output.v.scale, torch_preset.output.v.offset) == (17.5, 6.5)
    assert (torch_preset.output.w.scale, torch_preset.output.w.offset) == (14.2, -7.1)
    assert keras_preset.input.crop_rows is None and keras_preset.input.mean == (0.485, 0.456, 0.406)
    assert keras_preset.input.std == (0.229, 0.224, 0.225) and keras_preset.input.layout == "NHWC"


@pytest.mark.parametrize(("body", "message"), [
    ('[artifact]\npath = "m"\n[input]\nlayout = "NWHC"\n', "'input.layout' must be one of NHWC, NCHW, got 'NWHC'"),
    ('[artifact]\npath = "m"\n[inptu]\nimage = "frame"\n', "unknown key 'inptu'. Did you mean 'input'"),
    ('[artifact]\npath = "m"\n[input]\ncrop_rows = [240]\n', r"\[input\]: 'crop_rows' must have 2 values, got 1"),
    ('[artifact]\npath = "m"\n[input]\ncrop_rows = [480, 240]\n', r"'input.crop_rows' must be \[first, end\)"),
    ('[artifact]\npath = "m"\n[output.v]\nscale = "a"\n', r"\[output.v\]: 'scale' must be a number, got 'a'"),
    ('[artifact]\npath = "m"\n[output.w]\nscale = 0\n', "'output.w.scale' must not be 0"),
    ('[artifact]\npath = "m"\n[runtime]\nthreads = 0\n', "'runtime.threads' must be >= 1, got 0"),
    ('[artifact]\npath = "m"\nsha256 = "abc"\n', "'artifact.sha256' must be 64 hexadecimal digits"),
    ('preset = "dls-torch"\n[artifact]\npath = "m"\n', "unknown preset 'dls-torch'. Did you mean"),
    ('[artifact]\nformat = "onnx"\n', r"\[artifact\] path is missing"),
    ('[artifact]\npath = "m"\n[input]\nmean = [0, 0, "x"]\n', "'mean' must be a number"),
    ('[artifact]\npath = "m"\n[input]\nscale = nan\n', "'scale' must be finite"),
    ('[artifact\npath = "m"\n', "not valid TOML"),
])
def test_bad_contracts_fail_with_one_line_naming_the_file(tmp_path, body, message):
    path = write(tmp_path, body)
    with pytest.raises(SimevalError, match=message) as caught:
        read_contract(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_the_format_line_is_required(tmp_path):
    path = tmp_path / "m.simeval.toml"
    path.write_text('[artifact]\npath = "m"\n')
    with pytest.raises(ContractError, match="'format' must be 'simeval-model-contract/1', got None"):
        read_contract(path)


def test_a_contract_lives_beside_its_model(tmp_path):
    assert contract_path(tmp_path / "model.onnx") == tmp_path / "model.simeval.toml"
    (tmp_path / "saved").mkdir()
    assert contract_path(tmp_path / "saved") == tmp_path / "saved.simeval.toml"


def test_the_dls_input_pipeline_crops_resizes_and_puts_channels_first():
    import cv2

    pipeline = InputPipeline(PRESETS["dls-pilotnet-torch"].input)
    image = np.random.default_rng(0).integers(0, 256, (1, 480, 640, 3), dtype=np.uint8)
    x = pipeline.prepare(image)
    expected = cv2.resize(image[0, 240:480], (200, 66), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255
    assert x.shape == (1, 3, 66, 200) == (1, *pipeline.shape)
    np.testing.assert_allclose(x[0].transpose(1, 2, 0), expected, rtol=1e-6)


def test_simeval_frames_prepare_exactly_as_preprocess():
    from simeval.agents.pilotnet import preprocess

    frames = np.random.default_rng(1).integers(0, 256, (3, 66, 200, 3), dtype=np.uint8)
    x = InputPipeline(PRESETS["simeval-pilotnet"].input).prepare(frames)
    assert x.tobytes() == preprocess(frames).tobytes()


def test_history_stacks_the_last_frames_oldest_first():
    spec = dataclasses.replace(PRESETS["simeval-pilotnet"].input, history=3, history_stride=2)
    pipeline = InputPipeline(spec)
    frames = [np.full((66, 200, 3), v, np.uint8) for v in range(6)]
    inputs = [pipeline.step(f) for f in frames]
    assert inputs[0].shape == (1, 66, 200, 9) and pipeline.shape == (66, 200, 9)
    channel_values = [round(float(inputs[-1][0, 0, 0, c]) * 255) for c in (0, 3, 6)]
    assert channel_values == [1, 3, 5]  # frames t-4, t-2, t
    assert [round(float(inputs[0][0, 0, 0, c]) * 255) for c in (0, 3, 6)] == [0, 0, 0]  # the lap starts repeated
    sequence = pipeline.sequence([np.stack(frames)])
    np.testing.assert_array_equal(sequence[-1], inputs[-1][0])


def test_a_quantized_input_uses_the_models_parameters():
    spec = dataclasses.replace(PRESETS["simeval-pilotnet"].input, dtype="int8")
    with pytest.raises(ContractError, match="needs \\[input\\] quantization"):
        InputPipeline(spec)
    x = InputPipeline(spec, quantization=(1 / 255, -128)).prepare(np.full((1, 66, 200, 3), 255, np.uint8))
    assert x.dtype == np.int8 and int(x.max()) == 127


def test_the_sensor_camera_is_the_whole_image_the_frame_was_cropped_from():
    sensor, frame = CameraConfig.sensor(), CameraConfig()
    assert sensor.shape == (480, 640, 3) and frame.shape == (66, 200, 3)
    assert sensor.intrinsics()[0] == pytest.approx(frame.intrinsics()[0] * 640 / 200)


# --------------------------------------------------------------------------------- property-based
KEYS = {
    "artifact": {"path": st.text(max_size=8), "format": st.sampled_from(["onnx", "tflite", "x", ""]), "sha256": st.text(max_size=70)},
    "input": {
        "image": st.sampled_from(["frame", "sensor", "fish"]), "crop_rows": st.lists(st.integers(-5, 600), max_size=3),
        "resize": st.lists(st.integers(-1, 300), max_size=3), "scale": st.floats(allow_nan=True), "layout": st.text(max_size=5),
        "mean": st.lists(st.floats(-2, 2), max_size=4), "history": st.integers(-1, 4), "dtype": st.sampled_from(["float32", "int8", "float64"]),
    },
    "runtime": {"threads": st.integers(-1, 4), "batchnorm": st.sampled_from(["eval", "train", "test"]), "batched": st.booleans()},
}


def value_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value != value:
        return "nan"
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return repr(value)


@st.composite
def contract_files(draw) -> str:
    lines = [HEADER.strip()]
    if draw(st.booleans()):
        lines.append(f"preset = {value_text(draw(st.sampled_from(sorted(PRESETS) + ['nope'])))}")
    for table, keys in KEYS.items():
        chosen = draw(st.lists(st.sampled_from(sorted(keys)), unique=True, max_size=len(keys)))
        lines.append(f"[{table}]")
        lines += [f"{key} = {value_text(draw(keys[key]))}" for key in chosen]
    if draw(st.booleans()):
        lines.append(f"[output.{draw(st.sampled_from(['v', 'w', 'x']))}]")
        lines.append(f"{draw(st.sampled_from(['index', 'tensor', 'scale', 'clip', 'bogus']))} = "
                     f"{value_text(draw(st.one_of(st.integers(-2, 3), st.floats(allow_nan=True), st.text(max_size=3), st.lists(st.floats(-5, 5), max_size=3))))}")
    return "\n".join(lines) + "\n"


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(text=contract_files())
def test_any_contract_file_reads_or_fails_with_the_projects_error(tmp_path, text):
    path = tmp_path / "fuzz.simeval.toml"
    path.write_text(text)
    try:
        contract = read_contract(path)
    except SimevalError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(contract, ModelContract)
    assert ModelContract.from_dict(contract.as_dict()) == contract
