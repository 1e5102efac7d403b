"""What a Stable-Baselines3 model zip says about itself, read without unpickling anything.

SB3's ``model.save`` writes a zip: ``data`` (JSON of the algorithm's settings; each object that JSON
cannot hold is cloudpickled in base64, beside a readable ``str`` of each of its attributes),
``policy.pth`` (the policy's state dict), the optimizer's, and version files. Unpickling ``data``
can run code, so a policy loads only with ``--trust-model`` (``simeval.agents.formats.sb3_policy``).
Its spaces are readable without that: the action box says which of the env's action modes the
policy was trained in (``simeval.sim.actions``: so its actions decode to m/s and rad/s), and the
observation space whether it sees the env's camera frame. A policy that fits neither is refused
here, with one line, before anything is trusted; the runtime checks the unpickled spaces again.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from simeval.agents.contract import Artifact, ModelContract, preset
from simeval.errors import AgentError, ContractError
from simeval.sim.actions import describe_boxes, mode_of_box
from simeval.sim.camera import CameraConfig

ENTRIES = ("data", "policy.pth")
"""What every SB3 model zip holds."""
BOX = "<class 'gymnasium.spaces.box.Box'>"


@dataclass(frozen=True)
class PolicySpaces:
    """A policy's observation and action spaces, as numbers."""

    observation_shape: tuple[int, ...]
    observation_dtype: str
    action_low: tuple[float, ...]
    action_high: tuple[float, ...]

    def fit(self, where: str) -> tuple[str, str]:
        """(action mode, input layout) of a policy that drives in the env; ``ContractError`` otherwise."""
        frame = CameraConfig().shape
        layouts = {frame: "NHWC", (frame[2], frame[0], frame[1]): "NCHW"}
        if self.observation_dtype != "uint8" or self.observation_shape not in layouts:
            raise ContractError(
                f"{where}: the policy observes {self.observation_shape} {self.observation_dtype}, not the env's camera frame "
                f"{frame} uint8 (or channels first {(frame[2], frame[0], frame[1])}); train it on simeval/FollowLine-v0's "
                "observation without wrappers that change it"
            )
        mode = mode_of_box(self.action_low, self.action_high)
        if mode is None:
            box = f"Box({list(self.action_low)}, {list(self.action_high)})"
            raise ContractError(f"{where}: the policy's action space {box} is neither of the env's action boxes "
                                f"({describe_boxes()}); train it on simeval/FollowLine-v0 with action='native' or 'symmetric'")
        return mode, layouts[self.observation_shape]


def is_policy_zip(path: Path) -> bool:
    """Whether ``path`` is a zip with an SB3 model's entries (reads the zip's directory only)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return set(ENTRIES) <= set(archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def read_spaces(path: Path) -> PolicySpaces:
    """The spaces of the SB3 model zip at ``path``, from the readable part of its ``data``."""
    path = Path(path)
    if not path.is_file():
        raise AgentError(f"{path}: no such model file")
    if not is_policy_zip(path):
        raise AgentError(f"{path}: not a Stable-Baselines3 model zip (it needs {' and '.join(ENTRIES)}, "
                         "as `model.save(path)` writes them)")
    try:
        with zipfile.ZipFile(path) as archive:
            data = json.loads(archive.read("data").decode("utf-8"))
        observation, action = data["observation_space"], data["action_space"]
        if not (isinstance(observation, dict) and isinstance(action, dict)):
            raise ValueError("the spaces are not recorded objects")
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise AgentError(f"{path}: a Stable-Baselines3 zip whose 'data' has no readable spaces ({type(exc).__name__}: {exc})") from None
    for label, space in (("observation", observation), ("action", action)):
        if space.get(":type:") != BOX:
            raise ContractError(f"{path}: the policy's {label} space is {space.get(':type:')}, not a gymnasium Box; "
                                "train it on simeval/FollowLine-v0")
    try:
        return PolicySpaces(
            observation_shape=tuple(int(d) for d in observation["_shape"]), observation_dtype=str(observation["dtype"]),
            action_low=_numbers(action["low"]), action_high=_numbers(action["high"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AgentError(f"{path}: the spaces in its 'data' are not readable ({type(exc).__name__}: {exc})") from None


def _numbers(text: Any) -> tuple[float, ...]:
    """A small float array as numpy prints it ('[ 0. -1.]') -> its values."""
    if not isinstance(text, str) or "..." in text:
        raise ValueError(f"not a short array: {text!r}")
    return tuple(float(v) for v in text.replace("[", " ").replace("]", " ").split())


def policy_contract(path: Path) -> ModelContract:
    """The contract of an SB3 policy file: the env's frame as is into the policy, its action decoded
    as the env's ``from_action`` of the mode its saved action space says (preset ``sb3-<mode>``)."""
    path = Path(path)
    mode, layout = read_spaces(path).fit(str(path))
    base = preset(f"sb3-{mode}")
    return replace(base, artifact=Artifact(path=str(path.resolve()), format="sb3"), input=replace(base.input, layout=layout),
                   preset=f"sb3-{mode}", notes=f"a Stable-Baselines3 policy; action mode '{mode}' read from its saved action space")
