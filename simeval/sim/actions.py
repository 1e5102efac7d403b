"""The env's actions and the car's commands: one linear map each way, in one of two modes.

An action is two numbers, the forward speed and the yaw rate as fractions of the car's limits
(``VehicleConfig``). In the ``native`` mode an action is the command divided by the limits, so its
box is ``[min_speed / max_speed, 1] x [-1, 1]`` (``[0, 1] x [-1, 1]`` for the default car). RL
libraries expect a symmetric box: their Gaussian policies start at the box's centre and they warn
about any other (Stable-Baselines3's ``check_env``); in the ``symmetric`` mode the speed is mapped
linearly from ``[-1, 1]`` onto ``[min_speed, max_speed]``, so an untrained policy starts at half the
top speed instead of standing still, and the box is ``[-1, 1] x [-1, 1]``.

Both modes are ``command = action * scale + offset`` per channel (``from_action``) and its inverse
(``to_action``). The env steps with it, and the model agent decodes a trained policy's actions
with the same numbers (``simeval.agents.contract.action_output``), so a policy trained in either
mode drives in any env.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from simeval.sim.checks import check_name
from simeval.sim.vehicle import VehicleConfig

ACTION_MODES = ("native", "symmetric")
"""'native': speed and yaw rate over the car's limits; 'symmetric': both in [-1, 1]."""
BOX_TOLERANCE = 1e-6
"""How far a saved action box's bounds may be from a mode's (they are stored as float32)."""


@dataclass(frozen=True)
class ActionMapping:
    """The action box of a mode and the map between its actions and (v m/s, w rad/s) commands."""

    mode: str = "native"
    vehicle: VehicleConfig = field(default_factory=VehicleConfig)

    def __post_init__(self) -> None:
        check_name("action mode", self.mode, ACTION_MODES)

    @cached_property
    def scale(self) -> NDArray[np.float64]:
        """Metres per second and radians per second per unit of action, per channel."""
        car = self.vehicle
        if self.mode == "symmetric":
            return _frozen([(car.max_speed_mps - car.min_speed_mps) / 2, car.max_yaw_rate_radps])
        return _frozen([car.max_speed_mps, car.max_yaw_rate_radps])

    @cached_property
    def offset(self) -> NDArray[np.float64]:
        """The command of the action 0, per channel."""
        car = self.vehicle
        speed = (car.max_speed_mps + car.min_speed_mps) / 2 if self.mode == "symmetric" else 0.0
        return _frozen([speed, 0.0])

    @cached_property
    def low(self) -> NDArray[np.float32]:
        """The box's lower corner: the action of (min speed, -max yaw rate)."""
        car = self.vehicle
        return _frozen(self.to_action(np.array([car.min_speed_mps, -car.max_yaw_rate_radps])), np.float32)

    @property
    def high(self) -> NDArray[np.float32]:
        """The box's upper corner: the action of (max speed, max yaw rate), 1 in both modes."""
        return _frozen([1.0, 1.0], np.float32)

    def to_action(self, command: NDArray[np.float64]) -> NDArray[np.float64]:
        """The action for a command (v m/s, w rad/s); NaN stays NaN."""
        return (command - self.offset) / self.scale

    def from_action(self, action: NDArray[np.float64]) -> NDArray[np.float64]:
        """The command (v m/s, w rad/s) of an action, before the car clips it to its limits."""
        return action * self.scale + self.offset

    def fits(self, low: NDArray[np.floating], high: NDArray[np.floating]) -> bool:
        """Whether a box with these bounds is this mode's box (within float32 rounding)."""
        low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        return (low.shape == high.shape == (2,) and np.allclose(low, self.low, rtol=0, atol=BOX_TOLERANCE)
                and np.allclose(high, self.high, rtol=0, atol=BOX_TOLERANCE))


def _frozen(values: object, dtype: type = np.float64) -> NDArray:
    """A read-only array: the mapping's numbers are shared by every step."""
    array = np.array(values, dtype=dtype)
    array.flags.writeable = False
    return array


def mode_of_box(low: NDArray[np.floating], high: NDArray[np.floating], vehicle: VehicleConfig | None = None) -> str | None:
    """The action mode whose box has these bounds (a saved policy's action space), or None."""
    vehicle = vehicle or VehicleConfig()
    return next((mode for mode in ACTION_MODES if ActionMapping(mode, vehicle).fits(low, high)), None)


def describe_boxes(vehicle: VehicleConfig | None = None) -> str:
    """Each mode's box, for messages: "native Box([0, -1], [1, 1]), symmetric Box([-1, -1], [1, 1])"."""
    vehicle = vehicle or VehicleConfig()
    boxes = []
    for mode in ACTION_MODES:
        mapping = ActionMapping(mode, vehicle)
        boxes.append(f"{mode} Box([{', '.join(f'{v:g}' for v in mapping.low)}], [{', '.join(f'{v:g}' for v in mapping.high)}])")
    return ", ".join(boxes)
