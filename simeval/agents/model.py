"""The model agent: any driving network, from its file and its contract.

A shipped variant and a user's file go through the same ``ModelAgent.load``: the contract says
which file and format, how a camera image becomes the input tensor and which outputs are (v, w);
the format's runtime (``simeval.agents.formats``) only loads the file and runs it. Loading checks,
in this order, before any lap: that the format's runtime is installed and the hardware it needs is
here; the file's sha256 against its card (a shipped model) or its contract (where it gives one);
that a format which carries code is trusted (simeval's own files are, their sha256 checked; a
user's only with ``--trust-model``); and that the model's input and outputs fit the contract (one line, expected
against found).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.agents.base import Agent, AgentInfo
from simeval.agents.card import ModelCard, sha256_of
from simeval.agents.contract import ModelContract
from simeval.agents.formats import Runtime, get_format, runtime_class
from simeval.agents.tensors import InputPipeline, camera_for, decode, output_position, raw
from simeval.errors import AgentError, ContractError, first_line
from simeval.sim.camera import CameraConfig

WARM_UP_CALLS = 3
EVAL_BATCH = 256


class ModelAgent(Agent):
    """Prepare the camera image as the contract says, time the runtime's call, decode (v, w)."""

    def __init__(self, runtime: Runtime, contract: ModelContract, info: AgentInfo):
        super().__init__()
        self.runtime = runtime
        self.contract = contract
        self.info = info
        model_input = runtime.inputs[0] if runtime.inputs else None
        self.pipeline = InputPipeline(contract.input, model_input.quantization if model_input else None)
        self._positions = _check_fit(contract, self.pipeline, runtime, info.name)
        self.warm_up()

    @classmethod
    def load(cls, contract: ModelContract, *, name: str, trusted: bool = False, card: ModelCard | None = None) -> ModelAgent:
        """The model of a resolved contract (its artifact path absolute). ``card`` is a shipped
        model's card, whose sha256 is checked and which makes its file trusted."""
        artifact = contract.artifact
        spec = get_format(artifact.format)
        runtime_cls = runtime_class(artifact.format)
        runtime_cls.check_available(name)
        path = Path(artifact.path)
        if not path.exists():
            raise AgentError(f"{path}: no such model file")
        digest = sha256_of(path) if path.is_file() else None  # a SavedModel is a folder
        expected = card.sha256 if card is not None else artifact.sha256
        if expected is not None and digest is not None and digest != expected:
            fix = "run `make models` to rebuild the shipped models" if card else "fix [artifact] sha256, or the file"
            raise AgentError(f"{path}: sha256 {digest[:12]}... does not match its {'card' if card else 'contract'} "
                             f"({expected[:12]}...): the file is corrupt or was replaced; {fix}")
        if spec.carries_code and card is None and not trusted:
            raise AgentError(f"{path}: refused: {spec.why}; pass --trust-model to load it if you trust where it came from")
        runtime = runtime_cls(artifact, spec=contract.runtime, card=card, name=name)
        info = AgentInfo(
            name=name, framework=runtime.FRAMEWORK, precision=card.precision if card else "unknown",
            artifact=path, artifact_bytes=_size(path), artifact_sha256=digest,
            device=runtime.device, settings={"contract": contract.as_dict(), "trusted": bool(trusted or card)},
        )
        try:
            return cls(runtime, contract, info)
        except BaseException:
            runtime.close()
            raise

    @property
    def camera(self) -> CameraConfig:
        """The camera image the contract starts from (the env renders it)."""
        return camera_for(self.contract.input)

    @property
    def batched(self) -> bool:
        """Whether ``infer_batch`` runs a batch in one call, else frame by frame: a runtime that cannot
        batch, a contract that says not to, and BatchNorm in training mode (which would normalise
        each frame by the whole batch's statistics instead of its own) run frame by frame."""
        spec = self.contract.runtime
        return self.runtime.BATCHED and spec.batched and spec.batchnorm != "train"

    def warm_up(self, calls: int = WARM_UP_CALLS) -> None:
        """Run the model on a blank input a few times at load, so that one-off costs (TensorFlow's
        tracing, lazy kernel selection) are not charged to the first frame of a lap, where a
        measured-latency run would count them as latency; a model that refuses the contract's input
        fails here, with one line."""
        blank = np.zeros((1, *self.pipeline.shape), dtype=self.contract.input.dtype)
        for _ in range(calls):
            try:
                self.runtime.run(blank)
            except AgentError:
                raise
            except Exception as exc:  # noqa: BLE001 - each runtime raises its own errors for a wrong input
                raise ContractError(
                    f"{self.info.name}: the model refused the contract's input (1, {', '.join(map(str, self.pipeline.shape))}) "
                    f"{self.contract.input.layout} {self.contract.input.dtype} ({type(exc).__name__}: {first_line(exc)}); "
                    "fix [input] in its contract"
                ) from None

    def reset(self, circuit: Any = None) -> None:
        self.pipeline.reset()

    def act(self, observation: NDArray[np.uint8], info: dict[str, Any]) -> tuple[float, float]:
        batch = self.pipeline.step(observation)
        start = time.perf_counter()
        outputs = self.runtime.run(batch)
        self.last_inference_s = time.perf_counter() - start
        v, w = decode(self.contract.output, self._positions, outputs, self.runtime.outputs)[0]
        return float(v), float(w)

    def infer(self, batch: NDArray) -> NDArray[np.float64]:
        """The model call on prepared inputs, (n, 2) in m/s and rad/s."""
        return decode(self.contract.output, self._positions, self.runtime.run(batch), self.runtime.outputs)

    def infer_batch(self, batch: NDArray) -> NDArray[np.float64]:
        """Many prepared inputs: one call where the model may batch, else frame by frame."""
        return decode(self.contract.output, self._positions, self._run_batch(batch), self.runtime.outputs)

    def _run_batch(self, batch: NDArray) -> list[NDArray]:
        if self.batched:
            return self.runtime.run(batch)
        parts = [self.runtime.run(batch[i : i + 1]) for i in range(len(batch))]
        return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]

    def predict(self, chunks: Iterable[NDArray[np.uint8]]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """For the images of one episode in order, given in chunks (history included): the commands
        (n, 2) in m/s and rad/s, and the model's own (v, w) outputs before the contract's scale and
        offset. Offline evaluation."""
        inputs = self.pipeline.sequence(chunks)
        commands, outputs = [], []
        for start in range(0, len(inputs), EVAL_BATCH):
            batch = inputs[start : start + EVAL_BATCH]
            result = self._run_batch(batch)
            commands.append(decode(self.contract.output, self._positions, result, self.runtime.outputs))
            outputs.append(np.stack([raw(channel, position, result, self.runtime.outputs[position]) for channel, position
                                     in zip((self.contract.output.v, self.contract.output.w), self._positions, strict=True)], axis=1))
        return np.concatenate(commands), np.concatenate(outputs)

    def close(self) -> None:
        self.runtime.close()


def _check_fit(contract: ModelContract, pipeline: InputPipeline, runtime: Runtime, name: str) -> tuple[int, int]:
    """The output positions of v and w, after checking the model's input and outputs against the
    contract; a mismatch is one ``ContractError`` line, expected against found."""
    if len(runtime.inputs) > 1:
        raise ContractError(f"{name}: the model has {len(runtime.inputs)} inputs "
                            f"({', '.join(i.describe() for i in runtime.inputs)}); a contract feeds one image tensor")
    if runtime.inputs:
        model_input = runtime.inputs[0]
        expected = (1, *pipeline.shape)
        if model_input.shape is not None and (
            len(model_input.shape) != len(expected)
            or any(m is not None and m != e for m, e in zip(model_input.shape[1:], expected[1:], strict=False))
        ):
            raise ContractError(
                f"{name}: the contract gives the model input {expected} ({contract.input.layout} {contract.input.dtype}), "
                f"the model takes {model_input.describe()}; fix [input] (image, crop, resize, layout, history) in its contract"
            )
        if model_input.dtype != contract.input.dtype:
            raise ContractError(f"{name}: the contract gives a {contract.input.dtype} input, the model takes "
                                f"{model_input.describe()}; set [input] dtype (and quantization) in its contract")
    positions = tuple(output_position(channel, runtime.outputs) if runtime.outputs else 0
                      for channel in (contract.output.v, contract.output.w))
    for channel, position, label in zip((contract.output.v, contract.output.w), positions, "vw", strict=True):
        shape = runtime.outputs[position].shape if runtime.outputs else None
        if shape is not None and shape[-1] is not None and channel.index >= int(np.prod([d or 1 for d in shape[1:]])):
            raise ContractError(f"{name}: the contract reads {label} at index {channel.index} of output "
                                f"{runtime.outputs[position].describe()}; set [output.{label}] index in its contract")
    return positions


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
