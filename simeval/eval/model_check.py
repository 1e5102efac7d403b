"""Does a model file, read through its contract, give sensible commands? ``python -m simeval.models check``.

The model runs on the images of a test lap as its contract asks for them, and its commands are
compared with the expert's on the same images. The numbers name the likely mistake: outputs that
do not change, speeds or yaw rates out of the car's range, or a contract whose layout (NCHW/NHWC)
or colour order (RGB/BGR) is the wrong way round, which shows as a much closer match when the
other order is tried.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simeval.agents.contract import SUFFIX, ModelContract, read_contract
from simeval.agents.formats import TensorInfo
from simeval.agents.model import ModelAgent
from simeval.agents.registry import user_contract
from simeval.errors import SimevalError
from simeval.eval.expert_laps import EvaluationLap, expert_lap
from simeval.sim.vehicle import VehicleConfig

SWAP_GAIN = 0.5
"""The other layout or colour order is reported when one command's MSE is under this share of the contract's..."""
NOT_WORSE = 1.1
"""...and the other command's is at most this share."""
CONSTANT = 1e-6
NORMALISED_V_MPS = 2.0
"""A model whose speed never reaches this on a test lap is taken to output normalised labels."""


@dataclass(frozen=True)
class CheckReport:
    """What ``check_model`` found."""

    name: str
    contract: ModelContract
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    circuit: str
    frames: int
    v_range: tuple[float, float]
    """Lowest and highest speed the model commanded on the lap (m/s)."""
    w_range: tuple[float, float]
    expert_v_range: tuple[float, float]
    expert_w_range: tuple[float, float]
    mse_v: float
    """Against the expert's speed (m²/s²)."""
    mse_w: float
    """Against the expert's yaw rate (rad²/s²)."""
    findings: list[str] = field(default_factory=list)
    """The likely mistakes, in words; empty when the numbers look right."""


def check_model(path: Path, *, contract: Path | None = None, circuit: str = "simple", frames: int | None = None,
                trust_model: bool = False) -> CheckReport:
    """Load ``path`` through its contract, drive nothing, and compare its commands on the expert's
    lap of ``circuit`` (its first ``frames`` frames, default all) with the expert's."""
    found = read_contract(Path(path)) if str(path).endswith(SUFFIX) else user_contract(Path(path), contract)
    lap = expert_lap(circuit).first(frames)
    agent = ModelAgent.load(found, name=str(path), trusted=trust_model)
    try:
        commands, _ = agent.predict(lap.images(agent.camera))
        inputs, outputs = agent.runtime.inputs, agent.runtime.outputs
    finally:
        agent.close()
    mse = np.mean((commands - lap.labels) ** 2, axis=0)
    report = CheckReport(
        name=str(path), contract=found, inputs=inputs, outputs=outputs, circuit=circuit, frames=len(commands),
        v_range=_range(commands[:, 0]), w_range=_range(commands[:, 1]),
        expert_v_range=_range(lap.labels[:, 0]), expert_w_range=_range(lap.labels[:, 1]),
        mse_v=float(mse[0]), mse_w=float(mse[1]),
    )
    report.findings.extend(_findings(commands))
    report.findings.extend(_swaps(found, lap, _relative_mse(commands, lap.labels), str(path), trust_model))
    return report


def _relative_mse(commands: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """MSE of v and of w, each over the variance of the expert's command: (2,), comparable across
    the two channels."""
    return np.mean((commands - labels) ** 2, axis=0) / np.maximum(labels.var(axis=0), 1e-9)


def _range(values: np.ndarray) -> tuple[float, float]:
    return float(values.min()), float(values.max())


def _findings(commands: np.ndarray) -> list[str]:
    limits = VehicleConfig()
    found = []
    if np.ptp(commands, axis=0).max() >= CONSTANT and commands[:, 0].max() < NORMALISED_V_MPS:
        found.append(f"v stays below {NORMALISED_V_MPS:g} m/s ({commands[:, 0].min():.2f}..{commands[:, 0].max():.2f}) where the "
                     "expert drives 6.5..24 m/s: the outputs look normalised; set [output.v] and [output.w] scale and offset")
    if np.ptp(commands, axis=0).max() < CONSTANT:
        found.append("the outputs do not change with the image (constant): is the right output read, is the "
                     "input scaled as the model was trained ([input] scale, mean, std)?")
    v, w = commands[:, 0], commands[:, 1]
    if np.mean((v < limits.min_speed_mps) | (v > limits.max_speed_mps)) > 0.5:
        found.append(f"v is outside {limits.min_speed_mps:g}..{limits.max_speed_mps:g} m/s on most frames "
                     f"({v.min():.2f}..{v.max():.2f}): check [output.v] scale and offset (and which output is v)")
    if np.mean(np.abs(w) > limits.max_yaw_rate_radps) > 0.5:
        found.append(f"w is outside +-{limits.max_yaw_rate_radps:g} rad/s on most frames ({w.min():.2f}..{w.max():.2f}): "
                     "check [output.w] scale and offset (and which output is w)")
    return found


def _swaps(contract: ModelContract, lap: EvaluationLap, mse: np.ndarray, name: str, trust_model: bool) -> list[str]:
    """The contract with its layout, then its colour order, the other way round: reported where
    the model follows the expert much more closely so (one command much closer, neither worse)."""
    spec = contract.input
    alternatives = {
        f"layout {'NHWC' if spec.layout == 'NCHW' else 'NCHW'}": dataclasses.replace(spec, layout="NHWC" if spec.layout == "NCHW" else "NCHW"),
        f"colour {'RGB' if spec.colour == 'BGR' else 'BGR'}": dataclasses.replace(spec, colour="RGB" if spec.colour == "BGR" else "BGR"),
    }
    found = []
    for label, other in alternatives.items():
        try:
            agent = ModelAgent.load(dataclasses.replace(contract, input=other), name=name, trusted=trust_model)
        except SimevalError:
            continue  # the model does not even take this input: not the mistake
        try:
            commands, _ = agent.predict(lap.images(agent.camera))
        finally:
            agent.close()
        other = _relative_mse(commands, lap.labels)
        if np.all(other <= NOT_WORSE * mse) and np.any(other < SWAP_GAIN * mse):
            found.append(f"with [input] {label.replace(' ', ' = ')} the model follows the expert much more closely "
                         f"(MSE over the expert's variance, v and w: {other[0]:.3g}, {other[1]:.3g} instead of "
                         f"{mse[0]:.3g}, {mse[1]:.3g}): the contract's {label.split()[0]} looks swapped")
    return found
