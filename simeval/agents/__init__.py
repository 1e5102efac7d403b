"""Drivers: the agent protocol, the registry of names, the experts and the model backends."""

from simeval.agents.base import Agent, AgentInfo
from simeval.agents.registry import agent_names, load_agent

__all__ = ["Agent", "AgentInfo", "agent_names", "load_agent"]
