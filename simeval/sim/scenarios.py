"""Robustness scenarios: seeded perturbations of a run, selected by name (``--scenario dim``).

A scenario changes one thing about the world or the camera and nothing else, so a drop in
completion can be blamed on it: where the car starts, what the camera adds to each frame, or
where the red line is painted. Frame perturbations draw from a generator spawned from the env's
``np_random`` at reset, so the same seed gives the same frames, and a scenario that perturbs
nothing draws nothing (the nominal run is byte-identical to a run without a scenario).

World changes (gaps in the red line) are drawn by the raster renderer only; the env refuses the
pybullet renderer for them with one clear error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simeval.errors import ConfigError
from simeval.sim.checks import brief, check_name, check_number, is_number
from simeval.sim.raster import PaintGaps
from simeval.track.circuit import Circuit

Pose = tuple[float, float, float]


@dataclass(frozen=True)
class Scenario:
    """The nominal world: no perturbation. Every scenario kind subclasses it."""

    name: str = "nominal"
    """Registry name, recorded in config.json as the run's ``scenario``."""

    def start_pose(self, circuit: Circuit, pose: Pose) -> Pose:
        """The pose the car starts from, given the pose it would start from nominally."""
        return pose

    @property
    def perturbs_frames(self) -> bool:
        """Whether ``perturb`` changes frames (only then does the env seed a generator for it)."""
        return False

    def perturb(self, frame: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
        """The frame the agent sees instead of the rendered one."""
        return frame

    @property
    def paint_gaps(self) -> PaintGaps | None:
        """Where the red line is not painted (a world change: raster renderer only)."""
        return None


@dataclass(frozen=True)
class StartOffset(Scenario):
    """The car starts beside the line and askew: does the agent recover?"""

    lateral_m: float = 0.5
    """Start this far left of the nominal start, across the road (m, left +)."""
    heading_rad: float = 0.15
    """Start turned this far counter-clockwise from the nominal heading (rad)."""

    def __post_init__(self) -> None:
        check_number("lateral_m", self.lateral_m)
        check_number("heading_rad", self.heading_rad)

    def start_pose(self, circuit: Circuit, pose: Pose) -> Pose:
        x, y, yaw = pose
        s, _ = circuit.project(np.array([x, y]))
        road = float(circuit.heading_at(s))
        return x - math.sin(road) * self.lateral_m, y + math.cos(road) * self.lateral_m, yaw + self.heading_rad


def _to_uint8(frame: NDArray[np.float32]) -> NDArray[np.uint8]:
    np.rint(frame, out=frame)
    np.clip(frame, 0, 255, out=frame)
    return frame.astype(np.uint8)


@dataclass(frozen=True)
class CameraNoise(Scenario):
    """Sensor noise: independent Gaussian noise on every pixel and channel."""

    sigma: float = 8.0
    """Standard deviation of the noise in grey levels (0..255)."""

    def __post_init__(self) -> None:
        check_number("sigma", self.sigma, above=0.0)

    @property
    def perturbs_frames(self) -> bool:
        return True

    def perturb(self, frame: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
        noise = rng.standard_normal(frame.shape, dtype=np.float32)
        noise *= np.float32(self.sigma)
        noise += frame
        return _to_uint8(noise)


@dataclass(frozen=True)
class ColourShift(Scenario):
    """Lighting or white balance unlike the training circuits: each channel scaled by a gain."""

    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """Multipliers of the R, G and B channels (values are rounded and clipped to 0..255)."""

    def __post_init__(self) -> None:
        gains = self.gains
        if not (isinstance(gains, (tuple, list)) and len(gains) == 3 and all(is_number(g) and g >= 0 for g in gains)):
            raise ConfigError(f"gains must be three finite numbers >= 0, got {brief(gains)}")

    @property
    def perturbs_frames(self) -> bool:
        return True

    def perturb(self, frame: NDArray[np.uint8], rng: np.random.Generator) -> NDArray[np.uint8]:
        return _to_uint8(frame * np.asarray(self.gains, dtype=np.float32))


@dataclass(frozen=True)
class Brightness(ColourShift):
    """A darker or brighter scene: every channel scaled by the same factor."""

    factor: float = 1.0
    """Multiplier of every channel (< 1 dims, > 1 brightens; clipped to 0..255)."""

    def __post_init__(self) -> None:
        check_number("factor", self.factor, at_least=0.0)
        object.__setattr__(self, "gains", (self.factor,) * 3)



@dataclass(frozen=True)
class LineGaps(Scenario):
    """Worn paint: the red line is missing over ``gap_m`` at the end of every ``period_m`` of lap."""

    gap_m: float = 1.0
    """Length of each unpainted stretch, along the centre line (m)."""
    period_m: float = 8.0
    """Distance from the start of one gap to the next (m); the lap starts painted."""

    def __post_init__(self) -> None:
        PaintGaps(self.gap_m, self.period_m)  # validates

    @property
    def paint_gaps(self) -> PaintGaps:
        return PaintGaps(self.gap_m, self.period_m)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("nominal"),
        StartOffset("offset-start", lateral_m=0.5, heading_rad=0.15),
        CameraNoise("camera-noise", sigma=8.0),
        Brightness("dim", factor=0.6),
        Brightness("bright", factor=1.4),
        ColourShift("colour-shift", gains=(1.15, 0.9, 0.8)),
        LineGaps("line-gaps", gap_m=1.0, period_m=8.0),
    )
}
"""Named presets; ``--scenario NAME`` picks one."""


def scenario_names() -> list[str]:
    """The registered scenario names, nominal first."""
    return list(SCENARIOS)


def get_scenario(name: str | Scenario) -> Scenario:
    """The preset called ``name`` (a Scenario passes through); unknown names say what is close."""
    if isinstance(name, Scenario):
        return name
    if not isinstance(name, str):
        raise ConfigError(f"scenario must be a scenario name or a Scenario, got {type(name).__name__} {brief(name)}")
    check_name("scenario", name, SCENARIOS)
    return SCENARIOS[name]
