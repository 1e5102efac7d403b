"""The episode loop: an agent drives an env for one episode, and the record of what happened.

``rollout`` is the only episode loop in simeval: runs, sweeps, the data set, the tests and the
benchmarks all call it. It owns what the env cannot know: how long the agent took (wall time of
``act`` and of the model call), whether the agent failed (an exception, or a non-finite command),
and, with a measured latency, when the agent's command would really have arrived. It speaks to the
env through gymnasium's API, so the env may be wrapped; what only simeval's env offers (the
circuit, the driven path, the latency) is reached through ``env.unwrapped`` and
``set_wrapper_attr``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
from numpy.typing import NDArray

from simeval.agents.base import Agent, AgentFailed, describe_failure
from simeval.env import Termination

Command = tuple[float, float]


@dataclass
class LapRecord:
    """Everything one episode produced; per-step lists have one entry per agent decision."""

    circuit: str
    agent: str
    seed: int | None
    lap_length_m: float
    start_s: float
    """Arc length of the start pose on the lap (m)."""
    t: list[float] = field(default_factory=list)
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)
    yaw: list[float] = field(default_factory=list)
    s: list[float] = field(default_factory=list)
    d: list[float] = field(default_factory=list)
    v_cmd: list[float] = field(default_factory=list)
    w_cmd: list[float] = field(default_factory=list)
    inference_s: list[float] = field(default_factory=list)
    step_wall_s: list[float] = field(default_factory=list)
    path: NDArray[np.float64] = field(default_factory=lambda: np.empty((0, 3)))
    """(t s, x m, y m) of the car after every physics sub-step."""
    termination: Termination | None = None
    """Why the episode ended; None if it was still running when ``max_steps`` ran out."""
    error: str | None = None
    """What went wrong when termination is 'agent_error' or 'invalid_action'."""
    progress_m: float = 0.0
    distance_m: float = 0.0
    sim_time_s: float = 0.0
    lap_time_s: float | None = None
    wall_time_s: float = 0.0
    final_pose: tuple[float, ...] | None = None
    """(x, y, yaw, s, d, t) where the episode ended."""

    def append_step(self, info: dict[str, Any], command: Command, inference_s: float, wall_s: float) -> None:
        """Record the state the agent saw and what it decided."""
        for key in ("x", "y", "yaw", "s", "d"):
            getattr(self, key).append(float(info[key]))
        self.t.append(float(info["time_s"]))
        self.v_cmd.append(float(command[0]))
        self.w_cmd.append(float(command[1]))
        self.inference_s.append(float(inference_s))
        self.step_wall_s.append(float(wall_s))


@dataclass(frozen=True)
class Step:
    """One agent decision, as ``on_step`` sees it (before the env is stepped)."""

    observation: NDArray[np.uint8]
    info: dict[str, Any]
    """The env's state when the frame was taken."""
    command: Command
    """What the agent returned (v m/s, w rad/s)."""
    executed: Command
    """What was sent to the env: the command, or ``perturb``'s change of it."""


def rollout(
    env: gym.Env,
    agent: Agent,
    *,
    seed: int | None = None,
    options: dict[str, Any] | None = None,
    label: str | None = None,
    max_steps: int | None = None,
    perturb: Callable[[Command], Command] | None = None,
    latency: Callable[[float], float] | None = None,
    on_step: Callable[[Step], None] | None = None,
) -> LapRecord:
    """Drive one episode of ``env`` with ``agent`` and record it.

    ``seed`` and ``options`` go to ``env.reset``; ``label`` names the agent in the record (default
    its ``info.name``). ``max_steps`` caps the agent's decisions (the record's termination is then
    None). ``perturb`` changes each finite command before it is sent (data collection adds noise);
    ``latency`` turns the wall time of a decision into the latency (s) that command acts with;
    ``on_step`` sees every decision. An agent that raises ends the episode as 'agent_error', one
    that returns NaN or inf as 'invalid_action': outcomes, not crashes (a ``reset`` that raises, or a
    ``sys.exit`` call, too; only ``KeyboardInterrupt`` stops the loop).
    """
    base = env.unwrapped
    obs, info = env.reset(seed=seed, options=options)
    record = LapRecord(
        circuit=base.circuit.name, agent=label or agent.info.name, seed=seed,
        lap_length_m=base.circuit.length_m, start_s=float(info["s"]),
    )
    termination = info["termination"]
    try:
        agent.reset(base.circuit)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - a failing agent is a recorded outcome, not a crash
        record.termination = termination = Termination.AGENT_ERROR
        record.error = describe_failure(exc) if isinstance(exc, AgentFailed) else f"in reset(): {describe_failure(exc)}"
    started = time.perf_counter()
    steps = 0
    while termination is None and (max_steps is None or steps < max_steps):
        tick = time.perf_counter()
        try:
            command = agent.act(obs, info)
            v, w = (float(c) for c in command)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - any agent failure is a recorded outcome, not a crash
            record.termination, record.error = Termination.AGENT_ERROR, describe_failure(exc)
            break
        wall = time.perf_counter() - tick
        if not (math.isfinite(v) and math.isfinite(w)):
            record.termination = Termination.INVALID_ACTION
            record.error = f"agent returned a non-finite command (v={v}, w={w})"
            break
        record.append_step(info, (v, w), agent.last_inference_s, wall)
        executed = perturb((v, w)) if perturb is not None else (v, w)
        if on_step is not None:
            on_step(Step(obs, info, (v, w), executed))
        if latency is not None:
            env.set_wrapper_attr("latency_s", latency(wall))
        obs, _, _, _, info = env.step(base.to_action(*executed))
        termination = info["termination"]
        steps += 1
    record.wall_time_s = time.perf_counter() - started
    record.termination = record.termination or termination
    _finish(record, info, base.driven_path())
    return record


def _finish(record: LapRecord, info: dict[str, Any], path: NDArray[np.float64]) -> None:
    record.progress_m = float(info["progress_m"])
    record.distance_m = float(info["distance_m"])
    record.sim_time_s = float(info["time_s"])
    record.lap_time_s = info["lap_time_s"]
    record.path = path
    record.final_pose = (info["x"], info["y"], info["yaw"], info["s"], info["d"], info["time_s"])
