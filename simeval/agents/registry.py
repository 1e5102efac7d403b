"""Agent names -> agent classes, imported only when asked for (so `--agent expert` loads no torch)."""

from __future__ import annotations

import importlib
from pathlib import Path

from simeval.agents.base import Agent
from simeval.errors import AgentError, UnknownNameError

AGENTS: dict[str, str] = {
    "expert": "simeval.agents.expert:ExpertAgent",
    "pure-pursuit": "simeval.agents.pure_pursuit:PurePursuitAgent",
    "torch-fp32": "simeval.agents.pilotnet_torch:TorchPilotNetAgent",
    "tf-fp32": "simeval.agents.pilotnet_tf:TFPilotNetAgent",
    "torch-dynamic": "simeval.agents.torch_quant:TorchDynamicAgent",
    "torch-static": "simeval.agents.torch_quant:TorchStaticAgent",
    "torch-qat": "simeval.agents.torch_quant:TorchQATAgent",
    "onnx-fp32": "simeval.agents.onnx_backend:OnnxFP32Agent",
    "onnx-int8": "simeval.agents.onnx_backend:OnnxInt8Agent",
    "tflite-dynamic": "simeval.agents.litert_backend:TFLiteDynamicAgent",
    "tflite-fp16": "simeval.agents.litert_backend:TFLiteFP16Agent",
    "tflite-int8": "simeval.agents.litert_backend:TFLiteInt8Agent",
    "tftrt-fp32": "simeval.agents.tensorrt_backend:TFTRTFP32Agent",
    "tftrt-fp16": "simeval.agents.tensorrt_backend:TFTRTFP16Agent",
    "tftrt-int8": "simeval.agents.tensorrt_backend:TFTRTInt8Agent",
}
"""Registered names and the 'module:Class' that implements each."""

ALIASES: dict[str, str] = {"pilotnet": "torch-fp32"}

MODEL_FILES: dict[str, str] = {".pt": "torch-fp32", ".keras": "tf-fp32"}
"""A user's model file, by suffix, is driven by the agent class of this registered name."""


def agent_names() -> list[str]:
    """Every name ``load_agent`` accepts, aliases included."""
    return sorted([*AGENTS, *ALIASES])


def load_agent(name: str) -> Agent:
    """Build the agent registered as ``name``, a user's model file (``.pt``, ``.keras``: loaded as
    untrusted, weights only), or a user's own ``package.module:Class``."""
    path = Path(name)
    if path.suffix in MODEL_FILES:
        if not path.is_file():
            raise AgentError(f"{path}: no such model file")
        return _agent_class(name, AGENTS[MODEL_FILES[path.suffix]])(path=path)
    target = AGENTS.get(ALIASES.get(name, name))
    if target is None:
        if ":" not in name:
            raise UnknownNameError("agent", name, agent_names())
        target = name
    return _agent_class(name, target)()


def _agent_class(name: str, target: str) -> type[Agent]:
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AgentError(f"agent '{name}': cannot import {module_name} ({exc})") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise AgentError(f"agent '{name}': {target} is not a simeval.agents.base.Agent subclass")
    return cls
