"""PyTorch state dicts of a named architecture (format ``torch-state-dict``): simeval's PilotNet
and DeepLearningStudio's.

``PilotNet`` is the published valid-padding network, written to be quantized later: every ReLU is
its own module, each convolution or linear layer is directly followed by its ReLU (fusable pairs),
the flatten is an explicit module, and the output rescaling to (v m/s, w rad/s) is a separate
module with fixed buffers. Files are loaded with ``torch.load(weights_only=True)``: a state dict
never runs code, so a user's ``.pt`` file is safe to load.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import torch
from numpy.typing import NDArray
from torch import nn

from simeval.agents.card import ModelCard
from simeval.agents.contract import Artifact, RuntimeSpec
from simeval.agents.formats import Runtime, tensor_infos
from simeval.agents.pilotnet import CONV_LAYERS, DENSE_LAYERS, FLAT_FEATURES, INPUT_SHAPE, LabelRange
from simeval.errors import AgentError, UnknownNameError, first_line

ARTIFACT = "model.pt"


class Rescale(nn.Module):
    """Fixed affine map from the network's [0, 1] outputs to (v m/s, w rad/s)."""

    def __init__(self, labels: LabelRange | None = None):
        super().__init__()
        labels = labels or LabelRange((0.0, 0.0), (1.0, 1.0))
        self.register_buffer("scale", torch.from_numpy(labels.scale.copy()))
        self.register_buffer("offset", torch.from_numpy(labels.offset.copy()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.offset

    def labels(self) -> LabelRange:
        low = self.offset.numpy()
        high = low + self.scale.numpy()
        return LabelRange(tuple(float(v) for v in low), tuple(float(v) for v in high))


class PilotNet(nn.Module):
    """BatchNorm on the input, five valid convolutions, dense 1164-100-50-10-2: 1,595,528 parameters.

    Input: float32 (N, 66, 200, 3) from ``pilotnet.preprocess``. ``forward`` gives (v, w) in SI
    units; ``normalized`` gives the [0, 1] outputs the loss is computed on.
    """

    def __init__(self, labels: LabelRange | None = None):
        super().__init__()
        self.input_norm = nn.BatchNorm2d(INPUT_SHAPE[2])
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        channels = INPUT_SHAPE[2]
        for i, (filters, kernel, stride) in enumerate(CONV_LAYERS, start=1):
            layers[f"conv{i}"] = nn.Conv2d(channels, filters, kernel, stride=stride)
            layers[f"relu{i}"] = nn.ReLU()
            channels = filters
        self.features = nn.Sequential(layers)
        self.flatten = nn.Flatten()
        dense: OrderedDict[str, nn.Module] = OrderedDict()
        width = FLAT_FEATURES
        for i, units in enumerate(DENSE_LAYERS, start=1):
            dense[f"fc{i}"] = nn.Linear(width, units)
            dense[f"relu{i}"] = nn.ReLU()
            width = units
        dense["out"] = nn.Linear(width, 2)
        self.head = nn.Sequential(dense)
        self.rescale = Rescale(labels)

    def normalized(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_norm(x.permute(0, 3, 1, 2))
        return self.head(self.flatten(self.features(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rescale(self.normalized(x))


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class DLSPilotNet(nn.Module):
    """JdeRobot DeepLearningStudio's PyTorch PilotNet, by its state-dict key names: ``ln_1``
    (BatchNorm2d(3, eps=1e-3)), ``cn_1`` .. ``cn_5`` (the same valid convolutions), ``fc_1`` ..
    ``fc_5`` (1152 -> 1164 -> 100 -> 50 -> 10 -> 2), ReLU between, none at the output.

    Input: float32 (N, 3, 66, 200), channels first. Output: the two normalised labels (their
    contract maps them to m/s and rad/s).
    """

    def __init__(self) -> None:
        super().__init__()
        self.ln_1 = nn.BatchNorm2d(INPUT_SHAPE[2], eps=1e-3)
        channels = INPUT_SHAPE[2]
        for i, (filters, kernel, stride) in enumerate(CONV_LAYERS, start=1):
            setattr(self, f"cn_{i}", nn.Conv2d(channels, filters, kernel, stride=stride))
            channels = filters
        width = FLAT_FEATURES
        for i, units in enumerate((*DENSE_LAYERS, 2), start=1):
            setattr(self, f"fc_{i}", nn.Linear(width, units))
            width = units

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ln_1(x)
        for i in range(1, len(CONV_LAYERS) + 1):
            x = torch.relu(getattr(self, f"cn_{i}")(x))
        x = x.reshape(x.size(0), -1)
        for i in range(1, len(DENSE_LAYERS) + 1):
            x = torch.relu(getattr(self, f"fc_{i}")(x))
        return self.fc_5(x)


ARCHITECTURES: dict[str, tuple[type[nn.Module], tuple[int, ...]]] = {
    "simeval-pilotnet": (PilotNet, INPUT_SHAPE),
    "dls-pilotnet": (DLSPilotNet, (INPUT_SHAPE[2], *INPUT_SHAPE[:2])),
}
"""Named architectures a state dict can fill: the class and its input shape (without the batch)."""


def _saved_by_torch(path: Path) -> bool:
    """A ``torch.save`` file (a zip archive, or the legacy format: a pickle) whose content the
    weights-only unpickler refused, as opposed to a damaged file or another format."""
    import zipfile

    with open(path, "rb") as handle:
        return zipfile.is_zipfile(handle) or handle.read(1) == b"\x80"  # pickle's PROTO opcode


def load_pilotnet(path: Path, architecture: str = "simeval-pilotnet") -> nn.Module:
    """Load a state dict into ``architecture``, in eval mode; untrusted files are safe (weights only)."""
    if architecture not in ARCHITECTURES:
        raise UnknownNameError("architecture", architecture, ARCHITECTURES)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise AgentError(f"{path}: no such model file") from None
    except pickle.UnpicklingError:
        if _saved_by_torch(path):  # torch's own advice (load with weights_only=False) is not ours
            raise AgentError(f"{path}: holds pickled Python objects (a whole model?), not a state dict of tensors; "
                             "simeval never unpickles code: save model.state_dict(), or export ONNX or TorchScript") from None
        raise AgentError(f"{path}: not a torch state dict (the file is not a torch.save of tensors: damaged, or another "
                         "format); save it again with torch.save(model.state_dict(), path)") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise AgentError(f"{path}: not a loadable state dict ({type(exc).__name__}: {first_line(exc)})") from None
    model = ARCHITECTURES[architecture][0]()
    if not isinstance(state, dict):
        raise AgentError(f"{path}: holds a {type(state).__name__}, not a state dict of tensors")
    mismatch = _mismatch(model.state_dict(), state)
    if mismatch:
        raise AgentError(f"{path}: weights do not fit the {architecture} architecture ({mismatch}); name the right "
                         "architecture in its contract ([artifact] architecture)")
    model.load_state_dict(state, strict=True)
    return model.eval()


def _mismatch(expected: dict[str, torch.Tensor], found: dict[str, object]) -> str:
    """What differs between an architecture's state dict and a file's, in a few words."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [f"{k} {tuple(found[k].shape)} instead of {tuple(v.shape)}" for k, v in expected.items()
              if k in found and isinstance(found[k], torch.Tensor) and found[k].shape != v.shape]
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
        if keys:
            parts.append(f"{label}: {', '.join(keys[:3])}{f' and {len(keys) - 3} more' if len(keys) > 3 else ''}")
    return "; ".join(parts)


class StateDictRuntime(Runtime):
    """A state dict of a named architecture (``torch-fp32``, a user's ``.pt``) on torch's CPU kernels."""

    FRAMEWORK = "torch"

    def __init__(self, artifact: Artifact, *, spec: RuntimeSpec, card: ModelCard | None, name: str) -> None:
        torch.set_num_threads(spec.threads)
        architecture = artifact.architecture or "simeval-pilotnet"
        self.model = load_pilotnet(Path(artifact.path), architecture)
        if spec.batchnorm == "train":  # each frame normalised by its own statistics, as DLS's brain ran it
            for module in self.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.train()
        self._mode = torch.no_grad if spec.batchnorm == "train" else torch.inference_mode  # train-mode BN updates its buffers
        self.device = spec.device
        self.model.to(spec.device)
        self.inputs = tensor_infos(["input"], [(None, *ARCHITECTURES[architecture][1])], ["float32"])
        self.outputs = tensor_infos(["output"], [(None, 2)], ["float32"])

    def run(self, batch: NDArray) -> list[NDArray]:
        with self._mode():
            return [self.model(torch.from_numpy(batch).to(self.device)).cpu().numpy()]
