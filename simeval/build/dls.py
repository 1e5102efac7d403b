"""simeval's torch-fp32 written as JdeRobot DeepLearningStudio's models: the same network under
their conventions, to show (and test) that a model made elsewhere drives through its contract.

- ``dls_state_dict``: torch-fp32's weights under DLS's key names (``ln_1``, ``cn_1`` .. ``cn_5``,
  ``fc_1`` .. ``fc_5``), with simeval's label range folded into ``fc_5`` so that DLS's output
  convention holds (v = 17.5 p0 + 6.5, w = 14.2 p1 - 7.1) and the input BatchNorm's epsilon moved
  to theirs (1e-3): exactly the same function of the image.
- ``write_dls_models``: that network as a state dict (``.pth``), a TorchScript trace (``.pt``, as
  their optimisation script writes) and an ONNX graph (``.onnx``), each with the
  ``dls-pilotnet-torch`` contract (TorchScript: ``dls-torchscript``) beside it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from simeval.agents.contract import PRESETS, contract_path, write_contract
from simeval.agents.formats.torch_state_dict import DLSPilotNet, load_pilotnet
from simeval.agents.formats.torchscript import deprecated_apis
from simeval.agents.pilotnet import INPUT_SHAPE
from simeval.atomic import write_bytes_atomic
from simeval.build.optimize.onnx_export import quiet_exporter

DLS_EPS = 1e-3
"""DeepLearningStudio's BatchNorm2d epsilon."""


def dls_state_dict(torch_fp32: Path) -> dict[str, torch.Tensor]:
    """simeval's PilotNet state dict (``model.pt``) as DLS's PilotNet state dict, same function."""
    simeval = load_pilotnet(Path(torch_fp32))
    out = DLS_PRESET_OUTPUT
    a = torch.tensor([out.v.scale, out.w.scale], dtype=torch.float32)
    b = torch.tensor([out.v.offset, out.w.offset], dtype=torch.float32)
    state: dict[str, torch.Tensor] = {}
    norm = simeval.input_norm
    state |= {
        "ln_1.weight": norm.weight, "ln_1.bias": norm.bias, "ln_1.running_mean": norm.running_mean,
        "ln_1.running_var": norm.running_var + norm.eps - DLS_EPS, "ln_1.num_batches_tracked": norm.num_batches_tracked,
    }
    for i in range(1, 6):
        conv = getattr(simeval.features, f"conv{i}")
        state |= {f"cn_{i}.weight": conv.weight, f"cn_{i}.bias": conv.bias}
    for i in range(1, 5):
        linear = getattr(simeval.head, f"fc{i}")
        state |= {f"fc_{i}.weight": linear.weight, f"fc_{i}.bias": linear.bias}
    last, rescale = simeval.head.out, simeval.rescale  # SI = (W x + c) * scale + offset; DLS p = (SI - b) / a
    state |= {
        "fc_5.weight": last.weight * (rescale.scale / a)[:, None],
        "fc_5.bias": (last.bias * rescale.scale + rescale.offset - b) / a,
    }
    return {k: v.detach().clone().contiguous() for k, v in state.items()}


DLS_PRESET_OUTPUT = PRESETS["dls-pilotnet-torch"].output


def write_dls_models(torch_fp32: Path, out: Path, *, contracts: bool = True) -> dict[str, Path]:
    """The DLS-convention files of torch-fp32 in ``out``, each with its contract beside it (unless
    ``contracts`` is off: then they are bare files, as a user's export would be)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = dls_state_dict(torch_fp32)
    model = DLSPilotNet()
    model.load_state_dict(state)
    model.eval()
    paths = {"state-dict": out / "pilot_net_model_best.pth", "torchscript": out / "baseline.pt", "onnx": out / "pilot_net.onnx"}
    torch.save(state, paths["state-dict"])
    example = torch.zeros(1, INPUT_SHAPE[2], *INPUT_SHAPE[:2])
    with torch.no_grad(), deprecated_apis("jit"):  # their optimisation script writes TorchScript traces
        torch.jit.save(torch.jit.trace(model, example), str(paths["torchscript"]))
    with quiet_exporter():
        program = torch.onnx.export(model, (example,), dynamo=True, dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
                                    input_names=["input"], output_names=["output"], optimize=True, verbose=False)
    write_bytes_atomic(paths["onnx"], program.model_proto.SerializeToString())
    if not contracts:
        return paths
    presets = {"state-dict": "dls-pilotnet-torch", "torchscript": "dls-torchscript", "onnx": "dls-pilotnet-torch"}
    for kind, path in paths.items():
        base = PRESETS[presets[kind]]
        fmt = {"state-dict": "torch-state-dict", "torchscript": "torchscript", "onnx": "onnx"}[kind]
        artifact = dataclasses.replace(base.artifact, path=path.name, format=fmt,
                                       architecture="dls-pilotnet" if kind == "state-dict" else None)
        write_contract(contract_path(path), dataclasses.replace(base, artifact=artifact, preset=presets[kind],
                                                                notes=f"simeval's torch-fp32 in DeepLearningStudio's conventions ({kind})"))
    return paths


# ----------------------------------------------------------------------------- the Keras PilotNet
DLS_KERAS_PARAMETERS_APPROX = 17_000_000
"""DeepLearningStudio's Keras PilotNet has 'same' padding: flatten 9 x 25 x 64 = 14,400, about 17.0 M parameters."""


def dls_keras_pilotnet() -> Any:
    """DeepLearningStudio's Keras PilotNet: BatchNormalization(eps=1e-3), the five convolutions with
    'same' padding, flatten 14,400, dense 1164-100-50-10-2; outputs the two normalised labels."""
    from simeval.agents.formats.keras_model import keras
    from simeval.agents.pilotnet import CONV_LAYERS, DENSE_LAYERS

    layers = keras.layers
    frame = keras.Input(INPUT_SHAPE, name="frame")
    x = layers.BatchNormalization(epsilon=DLS_EPS)(frame)
    for filters, kernel, stride in CONV_LAYERS:
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    for units in DENSE_LAYERS:
        x = layers.Dense(units, activation="relu")(x)
    return keras.Model(frame, layers.Dense(2)(x), name="dls_pilotnet")


def sensor_inputs(root: Path, split: str, count: int, pipeline: Any, seed: int = 0) -> tuple[Any, Any]:
    """``count`` frames of a data-set split seen as the camera's whole 640x480 image (rendered again
    at their recorded poses: DeepLearningStudio's models train on those) and put through
    ``pipeline`` one by one, so only the model-sized inputs are kept; and their labels."""
    import numpy as np

    from simeval.build.dataset import load_manifest, load_split
    from simeval.sim.camera import CameraConfig
    from simeval.sim.renderer import make_renderer
    from simeval.track.circuit import Circuit

    manifest = load_manifest(root)
    data = load_split(root, split, ("pose", "labels", "circuit"))
    chosen = np.sort(np.random.default_rng(seed).choice(len(data["pose"]), size=min(count, len(data["pose"])), replace=False))
    inputs = np.empty((len(chosen), *pipeline.shape), np.float32)
    renderers: dict[int, Any] = {}
    for k, i in enumerate(chosen):
        index = int(data["circuit"][i])
        if index not in renderers:
            entry = manifest.circuits[index]
            circuit = Circuit.from_name(entry["base"])
            renderers[index] = make_renderer("raster", circuit.reversed() if entry["direction"] == "reverse" else circuit,
                                             CameraConfig.sensor())
        inputs[k] = pipeline.prepare(renderers[index].render(*data["pose"][i].astype(np.float64))[None])[0]
    return inputs, data["labels"][chosen].astype(np.float64)


def train_dls_keras(root: Path, out: Path, *, frames: int = 1024, epochs: int = 1, seed: int = 0,
                    contracts: bool = True) -> dict[str, Path]:
    """Train DeepLearningStudio's Keras PilotNet briefly under its own conventions (the whole image
    resized to 200x66, ImageNet mean and std, labels mapped to [0, 1] and clipped), save it as one
    ``.h5`` and as its TFLite conversion (float32 I/O), each with its contract (``dls-pilotnet-keras``,
    ``dls-tflite``) beside it."""
    import numpy as np

    from simeval.agents.formats.keras_model import keras, tf
    from simeval.agents.tensors import InputPipeline

    keras.utils.set_random_seed(seed)
    contract = PRESETS["dls-pilotnet-keras"]
    inputs, labels = sensor_inputs(root, "train", frames, InputPipeline(contract.input), seed)
    out_spec = contract.output
    targets = np.clip((labels - [out_spec.v.offset, out_spec.w.offset]) / [out_spec.v.scale, out_spec.w.scale], 0.0, 1.0)
    model = dls_keras_pilotnet()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.fit(inputs, targets.astype(np.float32), batch_size=32, epochs=epochs, verbose=0, shuffle=True)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"keras": out / "pilotnet_dls_keras.h5", "tflite": out / "pilotnet_dls_tflite.tflite"}
    with _quiet_absl():
        model.save(paths["keras"])  # DLS's scripts save one .h5 (Keras warns that the format is legacy)
    write_bytes_atomic(paths["tflite"], _tflite(model, tf))
    if not contracts:
        return paths
    for kind, name in (("keras", "dls-pilotnet-keras"), ("tflite", "dls-tflite")):
        base = PRESETS[name]
        artifact = dataclasses.replace(base.artifact, path=paths[kind].name)
        write_contract(contract_path(paths[kind]), dataclasses.replace(
            base, artifact=artifact, preset=name, notes=f"DeepLearningStudio's Keras PilotNet, {frames} frames x {epochs} epoch(s) here"))
    return paths


def _tflite(model: Any, tf: Any) -> bytes:
    """The Keras model as a float32 TFLite flatbuffer (through a SavedModel, with the converter's
    notes kept off the terminal)."""
    import tempfile

    from simeval.agents.native_stderr import LITERT_NOTES, filtered

    with tempfile.TemporaryDirectory() as work, filtered(LITERT_NOTES):
        model.export(work, format="tf_saved_model", verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(work).convert()


def _quiet_absl() -> Any:
    """Keras's absl warning about saving .h5 (what DLS does on purpose) kept off the terminal."""
    import contextlib
    import logging

    @contextlib.contextmanager
    def quiet() -> Any:
        logger = logging.getLogger("absl")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            yield
        finally:
            logger.setLevel(level)

    return quiet()
