"""The model contract: what a model file's tensors mean, declared beside it, so any model drives.

A contract says which file to load and how (``Artifact``), how a camera image becomes the
model's input tensor (``InputSpec``), which outputs are the speed and the yaw rate and how they
become m/s and rad/s (``OutputSpec``), and how to run it (``RuntimeSpec``). It is a small TOML
file beside the model (``model.onnx`` + ``model.simeval.toml``), or a named preset (``PRESETS``)
that such a file extends and overrides::

    format = "simeval-model-contract/1"
    preset = "dls-pilotnet-torch"          # optional: start from a preset
    notes = "trained with DeepLearningStudio's train.py"

    [artifact]
    path = "pilot_net_model_best_123.pth"  # relative to this file
    sha256 = "..."                         # optional: checked before loading

    [input]
    image = "sensor"      # "frame": the env's 66x200 frame; "sensor": the whole 640x480 image
    crop_rows = [240, 480]
    resize = [200, 66]    # width, height (as OpenCV takes them)

    [output.v]
    scale = 17.5          # v = scale * output + offset (m/s)
    offset = 6.5

Every shipped model's card carries its contract, and shipped models and a user's files load
through the same code (``simeval.agents.model``). Reading is strict: an unknown key, a wrong
type or an impossible value is one ``ContractError`` line naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simeval.errors import ContractError, UnknownNameError
from simeval.sim.actions import ACTION_MODES, ActionMapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONTRACT_FORMAT = "simeval-model-contract/1"
SUFFIX = ".simeval.toml"
IMAGES = ("frame", "sensor")
"""'frame': the env's observation (the published 200x66 crop, rendered at that size); 'sensor':
the camera's whole 640x480 image, which the env then renders instead."""
INTERPOLATIONS = ("linear", "area", "nearest", "cubic")
"""OpenCV's INTER_LINEAR (``cv2.resize``'s default), INTER_AREA, INTER_NEAREST, INTER_CUBIC."""
COLOURS = ("RGB", "BGR")
LAYOUTS = ("NHWC", "NCHW")
DTYPES = ("float32", "uint8", "int8")
BATCHNORM_MODES = ("eval", "train")
DEVICES = ("cpu", "cuda")


# ------------------------------------------------------------------------------------ records
@dataclass(frozen=True)
class Artifact:
    """The model file and how to read it."""

    path: str = ""
    """The file (or SavedModel folder), relative to the contract file."""
    format: str = ""
    """A key of ``simeval.agents.formats.FORMATS``: onnx, tflite, torchscript, torch-export,
    torch-state-dict, keras, tf-savedmodel, tensorrt-engine, sb3 (and simeval's own tensorrt)."""
    architecture: str | None = None
    """For torch-state-dict: the network class the weights fill ('simeval-pilotnet', 'dls-pilotnet')."""
    sha256: str | None = None
    """If given, the file must have it (checked before loading)."""


@dataclass(frozen=True)
class InputSpec:
    """How a camera image (RGB uint8) becomes the model's input tensor, step by step in this order."""

    image: str = "frame"
    """'frame' (the env's 66x200 observation) or 'sensor' (the whole 640x480 camera image)."""
    crop_rows: tuple[int, int] | None = None
    """Rows [first, end) of the image to keep."""
    crop_cols: tuple[int, int] | None = None
    """Columns [first, end) of the image to keep."""
    resize: tuple[int, int] | None = None
    """(width, height) after ``cv2.resize``."""
    interpolation: str = "linear"
    """OpenCV interpolation of the resize: 'linear' (INTER_LINEAR), 'area', 'nearest', 'cubic'."""
    colour: str = "RGB"
    """Channel order the model expects."""
    scale: float = 1.0 / 255.0
    """Pixel values are multiplied by this (1/255: [0, 1])."""
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Subtracted per channel after scaling (in the model's channel order)."""
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Divided by per channel after the mean."""
    layout: str = "NHWC"
    """'NHWC' or 'NCHW'."""
    dtype: str = "float32"
    """'float32', or 'uint8'/'int8' for a model with a quantized input."""
    quantization: tuple[float, int] | None = None
    """(scale, zero point) of a uint8/int8 input; None takes the model's own (TFLite records it)."""
    history: int = 1
    """Frames stacked for a temporal model: the last ``history`` frames, every ``history_stride``-th,
    oldest first, along the channel axis (a lap starts with its first frame repeated)."""
    history_stride: int = 1

    @property
    def identity_normalisation(self) -> bool:
        return self.mean == (0.0, 0.0, 0.0) and self.std == (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class OutputChannel:
    """Where one command comes from in the model's outputs, and its unit."""

    tensor: int | str = 0
    """The output tensor: its position among the model's outputs, or its name."""
    index: int = 0
    """The position in that tensor's last axis."""
    scale: float = 1.0
    """command = scale * output + offset (m/s or rad/s)."""
    offset: float = 0.0
    clip: tuple[float, float] | None = None
    """Optional (low, high) limits of the command after scaling."""


@dataclass(frozen=True)
class OutputSpec:
    """The speed ``v`` (m/s) and the yaw rate ``w`` (rad/s, counter-clockwise +)."""

    v: OutputChannel = OutputChannel(index=0)
    w: OutputChannel = OutputChannel(index=1)


@dataclass(frozen=True)
class RuntimeSpec:
    """How to run the model."""

    threads: int = 1
    """CPU threads of the runtime."""
    device: str = "cpu"
    """'cpu', or 'cuda' where the runtime and the machine offer it."""
    batchnorm: str = "eval"
    """PyTorch models: 'eval' (running statistics, the default) or 'train' (each frame normalised
    by its own statistics, as DeepLearningStudio's driving code ran its models)."""
    batched: bool = True
    """Whether several frames may go through the model in one call (offline evaluation). False for
    models whose result depends on the batch (dynamic-range quantization picks ranges per call)."""


@dataclass(frozen=True)
class ModelContract:
    """A model file and the meaning of its tensors."""

    artifact: Artifact = Artifact()
    input: InputSpec = InputSpec()
    output: OutputSpec = OutputSpec()
    runtime: RuntimeSpec = RuntimeSpec()
    preset: str | None = None
    """The preset this contract started from, if any."""
    notes: str = ""
    """Free text: where the model came from."""

    def resolved(self, folder: Path) -> ModelContract:
        """The same contract with the artifact path made absolute against ``folder``."""
        path = Path(self.artifact.path)
        absolute = path if path.is_absolute() else Path(folder) / path
        return dataclasses.replace(self, artifact=dataclasses.replace(self.artifact, path=str(absolute)))

    def as_dict(self) -> dict[str, Any]:
        """The contract as plain values (what a card stores; ``from_dict`` reads it back)."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, values: dict[str, Any], where: str = "contract") -> ModelContract:
        """A contract from plain values, every key and value checked (errors name ``where``)."""
        return _build(values, where)


# ------------------------------------------------------------------------------------ presets
DLS_OUTPUT = OutputSpec(v=OutputChannel(index=0, scale=17.5, offset=6.5), w=OutputChannel(index=1, scale=14.2, offset=-7.1))
"""DeepLearningStudio's label convention: v in [6.5, 24] m/s and w in [-7.1, 7.1] rad/s mapped to [0, 1]."""
DLS_CROPPED = InputSpec(image="sensor", crop_rows=(240, 480), crop_cols=(0, 640), resize=(200, 66), layout="NCHW")
"""DeepLearningStudio's PyTorch input: rows 240:480 of the 640x480 RGB image, cv2.resize to
200x66 (INTER_LINEAR), / 255, channels first."""
DLS_KERAS_INPUT = InputSpec(image="sensor", resize=(200, 66), mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
"""DeepLearningStudio's Keras input: the whole 640x480 image resized to 200x66, / 255, then the
ImageNet mean and std (albumentations' Normalize defaults)."""

SB3_INPUT = InputSpec(scale=1.0, dtype="uint8", quantization=(1.0, 0), layout="NCHW")
"""A Stable-Baselines3 policy's input: the env's observation as is (uint8; the policy divides by
255 itself), channels first as SB3's ``VecTransposeImage`` gave it to the policy in training."""


def action_output(mode: str) -> OutputSpec:
    """A policy's action decoded as the env decodes it in action mode ``mode``: command = scale *
    action + offset per channel, the numbers of ``ActionMapping.from_action``."""
    mapping = ActionMapping(mode)
    v, w = (OutputChannel(index=i, scale=float(mapping.scale[i]), offset=float(mapping.offset[i])) for i in range(2))
    return OutputSpec(v=v, w=w)


PRESETS: dict[str, ModelContract] = {
    "simeval-pilotnet": ModelContract(
        artifact=Artifact(format="torch-state-dict", architecture="simeval-pilotnet"),
        notes="simeval's own PilotNet conventions: the env's 66x200 frame / 255, NHWC; outputs in m/s and rad/s",
    ),
    "dls-pilotnet-torch": ModelContract(
        artifact=Artifact(format="torch-state-dict", architecture="dls-pilotnet"), input=DLS_CROPPED, output=DLS_OUTPUT,
        notes="JdeRobot DeepLearningStudio PyTorch PilotNet (state dict: ln_1, cn_1..cn_5, fc_1..fc_5)",
    ),
    "dls-torchscript": ModelContract(
        artifact=Artifact(format="torchscript"), input=DLS_CROPPED, output=DLS_OUTPUT,
        notes="JdeRobot DeepLearningStudio TorchScript PilotNet (optimize_models.py: fp32, dynamic, static, QAT)",
    ),
    "dls-pilotnet-keras": ModelContract(
        artifact=Artifact(format="keras"), input=DLS_KERAS_INPUT, output=DLS_OUTPUT,
        notes="JdeRobot DeepLearningStudio Keras PilotNet ('same' padding), saved as .h5",
    ),
    "dls-tflite": ModelContract(
        artifact=Artifact(format="tflite"), input=DLS_KERAS_INPUT, output=DLS_OUTPUT,
        notes="JdeRobot DeepLearningStudio Keras PilotNet converted to TFLite (float32 input and output)",
    ),
    **{
        f"sb3-{mode}": ModelContract(
            artifact=Artifact(format="sb3"), input=SB3_INPUT, output=action_output(mode),
            notes=f"a Stable-Baselines3 policy trained on simeval/FollowLine-v0 with action='{mode}'",
        )
        for mode in ACTION_MODES
    },
}


def preset(name: str) -> ModelContract:
    if name not in PRESETS:
        raise UnknownNameError("contract preset", name, PRESETS)
    return PRESETS[name]


# ------------------------------------------------------------------------------------ files
def contract_path(model: Path) -> Path:
    """Where the contract of ``model`` lives: ``model.onnx`` -> ``model.simeval.toml`` (a folder
    ``saved/`` -> ``saved.simeval.toml``)."""
    model = Path(model)
    stem = model.name if model.is_dir() else model.stem
    return model.with_name(stem + SUFFIX)


def read_contract(path: Path) -> ModelContract:
    """A contract file, its preset applied and every value checked; the artifact path is resolved
    against the file's folder."""
    path = Path(path)
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ContractError(f"{path}: no such contract file; write one with `python -m simeval.models init MODEL`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContractError(f"{path}: cannot read the contract ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ContractError(f"{path}: not valid TOML ({exc})") from None
    found = values.pop("format", None)
    if found != CONTRACT_FORMAT:
        raise ContractError(f"{path}: 'format' must be {CONTRACT_FORMAT!r}, got {found!r}")
    contract = _build(values, str(path))
    if not contract.artifact.path:
        raise ContractError(f"{path}: [artifact] path is missing: name the model file, relative to this file")
    return contract.resolved(path.parent)


def write_contract(path: Path, contract: ModelContract) -> Path:
    """Write ``contract`` as a TOML file (every field, so it can be edited in place)."""
    from simeval.atomic import write_text_atomic

    values = contract.as_dict()
    lines = [f"format = {_toml(CONTRACT_FORMAT)}"]
    if values.pop("preset") is not None:
        lines.append(f"preset = {_toml(contract.preset)}")
    lines.append(f"notes = {_toml(values.pop('notes'))}")
    output = values.pop("output")
    for table, entries in [*values.items(), ("output.v", output["v"]), ("output.w", output["w"])]:
        lines += ["", f"[{table}]"]
        for key, value in entries.items():
            lines.append(f"{key} = {_toml(value)}" if value is not None else f"# {key} = (not set)")
    return write_text_atomic(Path(path), "\n".join(lines) + "\n")


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


# ------------------------------------------------------------------------------------ checking
def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return merged


def _build(values: dict[str, Any], where: str) -> ModelContract:
    values = dict(values)
    name = values.get("preset")
    if name is not None:
        if not isinstance(name, str):
            raise ContractError(f"{where}: 'preset' must be a preset name, got {name!r}")
        if name not in PRESETS:
            raise ContractError(f"{where}: {UnknownNameError('preset', name, PRESETS)}")
        values = _merge(preset(name).as_dict(), values)
    _known(values, ModelContract, where)
    output = _record(values.get("output", {}), "output", where)
    _known(output, OutputSpec, f"{where} [output]")
    artifact = _checked(Artifact, _record(values.get("artifact", {}), "artifact", where), f"{where} [artifact]")
    if artifact.get("format") != "torch-state-dict":
        artifact["architecture"] = None  # only a state dict needs a class to fill (a preset's applies to its own format)
    contract = ModelContract(
        artifact=Artifact(**artifact),
        input=InputSpec(**_checked(InputSpec, _record(values.get("input", {}), "input", where), f"{where} [input]")),
        output=OutputSpec(**{
            channel: OutputChannel(**_checked(OutputChannel, _record(output.get(channel, {}), f"output.{channel}", where),
                                              f"{where} [output.{channel}]"))
            for channel in ("v", "w")
        }),
        runtime=RuntimeSpec(**_checked(RuntimeSpec, _record(values.get("runtime", {}), "runtime", where), f"{where} [runtime]")),
        preset=name,
        notes=_typed(values.get("notes", ""), str, "notes", where),
    )
    _check_values(contract, where)
    return contract


def _record(value: Any, table: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ContractError(f"{where}: [{table}] must be a table of keys, got {value!r}")
    return value


def _known(values: dict[str, Any], cls: type, where: str) -> None:
    names = {f.name for f in dataclasses.fields(cls)} | ({"format"} if cls is ModelContract else set())
    for key in values:
        if key not in names:
            raise ContractError(f"{where}: {UnknownNameError('key', key, names)}")


def _checked(cls: type, values: dict[str, Any], where: str) -> dict[str, Any]:
    """``values`` with every key known to ``cls`` and every value of its field's type (lists
    become tuples)."""
    _known(values, cls, where)
    annotations = {f.name: str(f.type) for f in dataclasses.fields(cls)}
    return {key: _convert(value, key, where, annotations[key]) for key, value in values.items()}


def _convert(value: Any, key: str, where: str, annotation: str) -> Any:
    """Check one value against its field's annotation (the records' fields are plain numbers,
    strings, booleans and short tuples, optionally None)."""
    text = annotation
    if value is None:
        if "None" in text:
            return None
        raise ContractError(f"{where}: '{key}' must be given, got nothing")
    if text.startswith("tuple"):
        if not isinstance(value, (list, tuple)):
            raise ContractError(f"{where}: '{key}' must be a list, got {value!r}")
        kind = float if "float" in text.split("[", 1)[1].split(",")[0] else int
        items = tuple(_number(v, kind, key, where) for v in value)
        length = 3 if key in ("mean", "std") else 2
        if len(items) != length:
            raise ContractError(f"{where}: '{key}' must have {length} values, got {len(items)}")
        if key == "quantization":
            items = (items[0], _number(value[1], int, "quantization zero point", where))
        return items
    if text.startswith("int | str"):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ContractError(f"{where}: '{key}' must be an output's position or its name, got {value!r}")
        return value
    if text.startswith("bool"):
        return _typed(value, bool, key, where)
    if text.startswith("int"):
        return _number(value, int, key, where)
    if text.startswith("float"):
        return _number(value, float, key, where)
    return _typed(value, str, key, where)


def _typed(value: Any, kind: type, key: str, where: str) -> Any:
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise ContractError(f"{where}: '{key}' must be a {kind.__name__}, got {value!r}")
    return value


def _number(value: Any, kind: type, key: str, where: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise ContractError(f"{where}: '{key}' must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    if not math.isfinite(value):
        raise ContractError(f"{where}: '{key}' must be finite, got {value!r}")
    return kind(value)


def _choice(value: str, allowed: tuple[str, ...], key: str, where: str) -> None:
    if value not in allowed:
        raise ContractError(f"{where}: '{key}' must be one of {', '.join(allowed)}, got {value!r}")


def _check_values(contract: ModelContract, where: str) -> None:
    spec, runtime = contract.input, contract.runtime
    _choice(spec.image, IMAGES, "input.image", where)
    _choice(spec.interpolation, INTERPOLATIONS, "input.interpolation", where)
    _choice(spec.colour, COLOURS, "input.colour", where)
    _choice(spec.layout, LAYOUTS, "input.layout", where)
    _choice(spec.dtype, DTYPES, "input.dtype", where)
    _choice(runtime.batchnorm, BATCHNORM_MODES, "runtime.batchnorm", where)
    _choice(runtime.device, DEVICES, "runtime.device", where)
    for key in ("crop_rows", "crop_cols"):
        span = getattr(spec, key)
        if span is not None and not 0 <= span[0] < span[1]:
            raise ContractError(f"{where}: 'input.{key}' must be [first, end) with 0 <= first < end, got {list(span)}")
    if spec.resize is not None and min(spec.resize) < 1:
        raise ContractError(f"{where}: 'input.resize' must be [width, height] >= 1, got {list(spec.resize)}")
    if spec.scale <= 0 or any(s <= 0 for s in spec.std):
        raise ContractError(f"{where}: 'input.scale' and 'input.std' must be > 0, got {spec.scale} and {list(spec.std)}")
    if spec.history < 1 or spec.history_stride < 1:
        raise ContractError(f"{where}: 'input.history' and 'input.history_stride' must be >= 1")
    if runtime.threads < 1:
        raise ContractError(f"{where}: 'runtime.threads' must be >= 1, got {runtime.threads}")
    for name in ("v", "w"):
        channel = getattr(contract.output, name)
        if channel.index < 0 or (isinstance(channel.tensor, int) and channel.tensor < 0):
            raise ContractError(f"{where}: 'output.{name}' tensor and index must be >= 0")
        if channel.scale == 0:
            raise ContractError(f"{where}: 'output.{name}.scale' must not be 0")
        if channel.clip is not None and not channel.clip[0] < channel.clip[1]:
            raise ContractError(f"{where}: 'output.{name}.clip' must be [low, high] with low < high, got {list(channel.clip)}")
    if contract.artifact.sha256 is not None and (len(contract.artifact.sha256) != 64 or not _is_hex(contract.artifact.sha256)):
        raise ContractError(f"{where}: 'artifact.sha256' must be 64 hexadecimal digits, got {contract.artifact.sha256!r}")


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)


__all__ = [
    "CONTRACT_FORMAT", "PRESETS", "SUFFIX", "Artifact", "InputSpec", "ModelContract", "OutputChannel", "OutputSpec",
    "RuntimeSpec", "contract_path", "preset", "read_contract", "write_contract",
]
