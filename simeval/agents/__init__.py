"""Drivers: the agent protocol, the experts, the model agent and its runtimes, and the registry of names."""

from simeval.agents.base import Agent, AgentInfo
from simeval.agents.registry import agent_names, load_agent

__all__ = ["Agent", "AgentInfo", "agent_names", "load_agent"]
