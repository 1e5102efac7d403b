"""Fold PilotNet's input BatchNorm into its first convolution, in PyTorch and in Keras.

At inference a BatchNorm is ``a * x + b`` per input channel, with ``a = gamma / sqrt(var + eps)``
and ``b = beta - mean * a``. conv1 has no padding, so every tap sees a normalised pixel, and
``conv1(a * x + b) = conv1'(x)`` with the kernel scaled per input channel by ``a`` and ``b``
folded into the bias: exact up to float rounding. Runtimes fold a BatchNorm that *follows* a
convolution, not one that precedes it, so every exported or quantized variant folds it first.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np


def norm_affine(gamma: Any, beta: Any, mean: Any, var: Any, eps: float, sqrt: Callable[[Any], Any]) -> tuple[Any, Any]:
    """The BatchNorm's ``(a, b)``, in the caller's array type (``sqrt`` of its framework)."""
    a = gamma / sqrt(var + eps)
    return a, beta - mean * a


def fold_input_norm_torch(model: Any) -> Any:
    """A copy of the torch ``PilotNet`` with its input BatchNorm folded into conv1 (replaced by Identity)."""
    import torch

    folded = copy.deepcopy(model).eval()
    norm, conv = folded.input_norm, folded.features.conv1
    if conv.padding not in ((0, 0), "valid"):
        raise ValueError(f"conv1 padding must be 0 to fold the input norm, got {conv.padding}")
    with torch.no_grad():
        a, b = norm_affine(norm.weight, norm.bias, norm.running_mean, norm.running_var, norm.eps, torch.sqrt)
        conv.bias += (conv.weight * b[None, :, None, None]).sum(dim=(1, 2, 3))
        conv.weight *= a[None, :, None, None]
    folded.input_norm = torch.nn.Identity()
    return folded


def fold_input_norm_keras(model: Any) -> Any:
    """The same Keras PilotNet with its input BatchNorm (layer ``input_norm``) folded into ``conv1``."""
    from simeval.agents.formats.keras_model import keras

    norm, conv1 = model.get_layer("input_norm"), model.get_layer("conv1")
    if conv1.padding != "valid":
        raise ValueError(f"conv1 padding must be 'valid' to fold the input norm, got {conv1.padding!r}")
    gamma, beta, mean, var = (np.asarray(w, dtype=np.float64) for w in norm.get_weights())
    a, b = norm_affine(gamma, beta, mean, var, norm.epsilon, np.sqrt)
    frame = keras.Input(model.input_shape[1:], name="frame")
    x = frame
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer) or layer is norm:
            continue
        clone = layer.__class__.from_config(layer.get_config())
        x = clone(x)
        weights = layer.get_weights()
        if layer is conv1:
            kernel, bias = (np.asarray(w, dtype=np.float64) for w in weights)
            weights = [(kernel * a[None, None, :, None]).astype(np.float32),
                       (bias + np.einsum("hwio,i->o", kernel, b)).astype(np.float32)]
        clone.set_weights(weights)
    return keras.Model(frame, x, name=f"{model.name}_folded")
