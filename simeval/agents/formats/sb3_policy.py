"""Stable-Baselines3 policies (format ``sb3``): the ``.zip`` that ``model.save`` writes, of any
algorithm whose policy maps the env's frame to a Box action of two (PPO, A2C, SAC, TD3, ...).

Only the policy is rebuilt: its class, settings and spaces from the zip's ``data``, its weights
from ``policy.pth`` (``torch.load(weights_only=True)``). No algorithm object (PPO's rollout buffer
alone would take hundreds of MB for image observations) and no optimizer state. ``data`` is
cloudpickled, and unpickling can run code: a user's file loads only with ``--trust-model``
(``FORMATS['sb3'].carries_code``), and only the entries the policy needs are unpickled. The policy
acts deterministically (the mean of a Gaussian policy), its action clipped to its box as
``policy.predict`` does; the contract decodes the action to m/s and rad/s as the env's
``from_action`` does (``simeval.agents.contract.action_output``).
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from stable_baselines3.common.save_util import json_to_data

from simeval.agents.card import ModelCard
from simeval.agents.contract import Artifact, RuntimeSpec
from simeval.agents.formats import Runtime, tensor_infos
from simeval.agents.sb3_zip import PolicySpaces, read_spaces
from simeval.errors import AgentError, UnavailableError, first_line

NEEDED = ("policy_class", "policy_kwargs", "observation_space", "action_space", "use_sde")
"""The entries of ``data`` that rebuild the policy: the only ones unpickled."""


def load_policy(path: Path, device: str) -> Any:
    """The SB3 policy saved in the zip at ``path``, with its weights, in evaluation mode. Only for a
    file you trust: unpickling its ``data`` can run code."""
    read_spaces(path)  # a file that is no SB3 zip, or has no readable spaces, fails with its own line
    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read("data").decode("utf-8")
            state = torch.load(io.BytesIO(archive.read("policy.pth")), map_location=device, weights_only=True)
        skipped = {key: None for key in json.loads(text) if key not in NEEDED}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            data = json_to_data(text, custom_objects=skipped)
        failed = [str(w.message) for w in caught if str(w.message).startswith("Could not deserialize")]
        if failed:  # SB3 warns and goes on when an entry does not unpickle (a class this Python lacks): fail instead
            raise ValueError(failed[0].replace("\n", " "))
        kwargs = dict(data.get("policy_kwargs") or {})
        if data.get("use_sde") and "use_sde" not in kwargs:  # on-policy algorithms pass it apart from policy_kwargs
            kwargs["use_sde"] = True
        policy = data["policy_class"](data["observation_space"], data["action_space"], _no_learning, **kwargs)
        policy.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - unpickling and rebuilding raise anything for a bad or foreign file
        raise AgentError(f"{path}: cannot rebuild its Stable-Baselines3 policy ({type(exc).__name__}: {first_line(exc)}); "
                         "save it with `model.save(path)` of stable-baselines3 2.x") from None
    policy.set_training_mode(False)
    return policy.to(device)


def _no_learning(_progress: float) -> float:
    """The learning-rate schedule a policy is built with: it only drives here."""
    return 0.0


class SB3PolicyRuntime(Runtime):
    """A Stable-Baselines3 policy on torch: the env's frame in, its deterministic action out."""

    FRAMEWORK = "stable-baselines3"

    def __init__(self, artifact: Artifact, *, spec: RuntimeSpec, card: ModelCard | None, name: str) -> None:
        if spec.device == "cuda" and not torch.cuda.is_available():
            raise UnavailableError(f"{name}: [runtime] device is 'cuda' and torch sees no CUDA GPU here; set device = \"cpu\"")
        torch.set_num_threads(spec.threads)
        path = Path(artifact.path)
        self.policy = load_policy(path, spec.device)
        self.device = spec.device
        observation, action = self.policy.observation_space, self.policy.action_space
        PolicySpaces(tuple(observation.shape), np.dtype(observation.dtype).name,
                     tuple(map(float, getattr(action, "low", ()))), tuple(map(float, getattr(action, "high", ())))).fit(str(path))
        self.inputs = tensor_infos(["observation"], [(None, *observation.shape)], ["uint8"], [(1.0, 0)])
        self.outputs = tensor_infos(["action"], [(None, 2)], ["float32"])

    def run(self, batch: NDArray) -> list[NDArray]:
        actions, _ = self.policy.predict(batch, deterministic=True)
        return [np.asarray(actions, dtype=np.float32).reshape(len(batch), 2)]
