"""PyTorch state dicts of a named architecture (format ``torch-state-dict``): simeval's PilotNet.

``PilotNet`` is the published valid-padding network, written to be quantized later: every ReLU is
its own module, each convolution or linear layer is directly followed by its ReLU (fusable pairs),
the flatten is an explicit module, and the output rescaling to (v m/s, w rad/s) is a separate
module with fixed buffers. Files are loaded with ``torch.load(weights_only=True)``: a state dict
never runs code, so a user's ``.pt`` file is safe to load.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from simeval.agents.card import ModelCard
from simeval.agents.formats import Runtime
from simeval.agents.pilotnet import CONV_LAYERS, DENSE_LAYERS, FLAT_FEATURES, INPUT_SHAPE, LabelRange
from simeval.errors import AgentError, first_line

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


def load_pilotnet(path: Path) -> PilotNet:
    """Load a PilotNet state dict; untrusted files are safe (weights only)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise AgentError(f"{path}: no such model file") from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise AgentError(f"{path}: not a loadable PilotNet state dict ({type(exc).__name__}: {first_line(exc)})") from None
    model = PilotNet()
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise AgentError(f"{path}: weights do not fit the PilotNet architecture ({first_line(exc)})") from None
    return model.eval()


class StateDictRuntime(Runtime):
    """A PilotNet state dict (``torch-fp32``, or a user's ``.pt`` file) on torch's CPU kernels."""

    FRAMEWORK = "torch"

    def __init__(self, path: Path, *, threads: int, card: ModelCard | None, name: str) -> None:
        torch.set_num_threads(threads)
        self.model = load_pilotnet(path)

    def infer(self, batch: NDArray[np.float32]) -> NDArray[np.float32]:
        with torch.inference_mode():
            return self.model(torch.from_numpy(batch)).numpy()
