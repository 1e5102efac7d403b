"""Agent names -> agent classes, imported only when asked for (so `--agent expert` loads no torch)."""

from __future__ import annotations

import importlib

from simeval.agents.base import Agent
from simeval.errors import AgentError, UnknownNameError

AGENTS: dict[str, str] = {
    "expert": "simeval.agents.expert:ExpertAgent",
    "pure-pursuit": "simeval.agents.pure_pursuit:PurePursuitAgent",
}
"""Registered names and the 'module:Class' that implements each."""

ALIASES: dict[str, str] = {}


def agent_names() -> list[str]:
    """Every name ``load_agent`` accepts, aliases included."""
    return sorted([*AGENTS, *ALIASES])


def load_agent(name: str) -> Agent:
    """Build the agent registered as ``name``, or a user's own ``package.module:Class``."""
    target = AGENTS.get(ALIASES.get(name, name))
    if target is None:
        if ":" not in name:
            raise UnknownNameError("agent", name, agent_names())
        target = name
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise AgentError(f"agent '{name}': cannot import {module_name} ({exc})") from None
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise AgentError(f"agent '{name}': {target} is not a simeval.agents.base.Agent subclass")
    return cls()
