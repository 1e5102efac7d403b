"""``torch.export`` programs (format ``torch-export``, ``.pt2`` files): a user's exported PilotNet.

A ``.pt2`` file is loaded with ``torch.export.load``, which can unpickle parts of the file without
``weights_only``: it may run code, so simeval loads one only when the user trusts it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from numpy.typing import NDArray

from simeval.agents.card import ModelCard
from simeval.agents.contract import Artifact, RuntimeSpec
from simeval.agents.formats import Runtime, TensorInfo, tensor_infos
from simeval.errors import AgentError, first_line


def _shape(node: torch.fx.Node) -> tuple[int | None, ...] | None:
    value = node.meta.get("val")
    if not isinstance(value, torch.Tensor):
        return None
    return tuple(d if isinstance(d, int) else None for d in value.shape)


def _dtype(node: torch.fx.Node) -> str:
    value = node.meta.get("val")
    return str(value.dtype).removeprefix("torch.") if isinstance(value, torch.Tensor) else "float32"


class TorchExportRuntime(Runtime):
    """An exported program's module on torch's CPU kernels."""

    FRAMEWORK = "torch"

    def __init__(self, artifact: Artifact, *, spec: RuntimeSpec, card: ModelCard | None, name: str) -> None:
        path = Path(artifact.path)
        if not path.is_file():
            raise AgentError(f"{path}: no such model file")
        torch.set_num_threads(spec.threads)
        try:
            program = torch.export.load(str(path))
        except Exception as exc:  # noqa: BLE001 - the .pt2 reader raises many types for a bad file
            raise AgentError(f"{path}: not a loadable torch.export program ({type(exc).__name__}: {first_line(exc)})") from None
        self.model = program.module()
        self.inputs = self._placeholders(program)
        outputs = [n for n in program.graph.nodes if n.op == "output"][0].args[0]
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        self.outputs = tensor_infos([f"output_{i}" for i in range(len(outputs))],
                                    [_shape(o) if isinstance(o, torch.fx.Node) else None for o in outputs],
                                    [_dtype(o) if isinstance(o, torch.fx.Node) else "float32" for o in outputs])

    @staticmethod
    def _placeholders(program: torch.export.ExportedProgram) -> tuple[TensorInfo, ...]:
        users = set(program.graph_signature.user_inputs)
        nodes = [n for n in program.graph.nodes if n.op == "placeholder" and n.name in users]
        return tensor_infos([n.name for n in nodes], [_shape(n) for n in nodes], [_dtype(n) for n in nodes])

    def run(self, batch: NDArray) -> list[NDArray]:
        with torch.inference_mode():
            out = self.model(torch.from_numpy(batch))
        return [o.numpy() for o in out] if isinstance(out, (tuple, list)) else [out.numpy()]
