"""Agent names -> agents: the experts, the model variants of ``simeval.agents.variants``, a user's
model file, or a user's ``package.module:Class``. Nothing is imported until an agent is asked for
(so ``--agent expert`` loads no torch)."""

from __future__ import annotations

import importlib
from pathlib import Path

from simeval.agents.base import Agent
from simeval.agents.card import CARD_FILE, model_dir
from simeval.agents.formats import SUFFIXES, missing
from simeval.agents.variants import BY_NAME, VARIANTS
from simeval.errors import AgentError, UnavailableError, UnknownNameError

EXPERTS: dict[str, str] = {
    "expert": "simeval.agents.expert:ExpertAgent",
    "pure-pursuit": "simeval.agents.pure_pursuit:PurePursuitAgent",
}
"""The hand-written drivers and the 'module:Class' of each."""

ALIASES: dict[str, str] = {"pilotnet": "torch-fp32"}


def registered() -> list[str]:
    """Every registered agent (experts, then model variants in table order), no aliases."""
    return [*EXPERTS, *(v.name for v in VARIANTS)]


def agent_names() -> list[str]:
    """Every name ``load_agent`` accepts, aliases included."""
    return sorted([*registered(), *ALIASES])


def is_model_file(name: str) -> bool:
    """Whether ``name`` is the path of a user's model file (by its suffix)."""
    return Path(name).suffix in SUFFIXES


def shipped(name: str) -> bool:
    """Whether variant ``name`` has an artifact and card in ``agents/`` (the TensorRT ones are built on a GPU)."""
    return (model_dir(name) / CARD_FILE).is_file()


def runnable_agents() -> list[str]:
    """The agents this machine can drive: the experts, and every shipped variant whose framework is
    installed (TensorRT's GPU is checked only when one of its agents loads)."""
    return [*EXPERTS, *(v.name for v in VARIANTS if shipped(v.name) and missing(v.format) is None)]


def load_agent(name: str) -> Agent:
    """Build the agent registered as ``name``, a user's model file (``.pt``, ``.keras``: loaded as
    untrusted, weights only), or a user's own ``package.module:Class``."""
    from simeval.agents.model import ModelAgent

    name = ALIASES.get(name, name)
    try:
        if is_model_file(name):
            return ModelAgent.from_file(Path(name), SUFFIXES[Path(name).suffix])
        if name in BY_NAME:
            return ModelAgent.shipped(BY_NAME[name])
    except UnavailableError as exc:
        raise UnavailableError(f"{exc}; agents that run here: {', '.join(runnable_agents())}") from None
    if name in EXPERTS:
        return _agent_class(name, EXPERTS[name])()
    if ":" not in name:
        raise UnknownNameError("agent", name, agent_names())
    return _agent_class(name, name)()


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
