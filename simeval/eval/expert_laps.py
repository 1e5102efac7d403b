"""The laps a model is measured on offline: the expert's noise-free lap of each test circuit.

The world is deterministic, so a lap is its poses: ``expert_lap`` drives it (lockstep, from the
spawn: exactly the data set's test sets) and ``EvaluationLap.images`` renders, at those exact poses, the
images any camera sees, in chunks (the whole 640x480 sensor image of a lap would not fit in memory
at once). For the env's own 66x200 frame these are the frames the expert saw.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simeval.sim.camera import CameraConfig
from simeval.sim.renderer import make_renderer
from simeval.track.circuit import Circuit

CHUNK = 256


@dataclass(frozen=True)
class EvaluationLap:
    """One lap: where the car was at each agent step, and the expert's command there."""

    circuit: str
    poses: NDArray[np.float64]
    """(n, 3): x m, y m, yaw rad of each step."""
    labels: NDArray[np.float64]
    """(n, 2): the expert's v m/s and w rad/s."""
    frames: NDArray[np.uint8] | None = None
    """The 66x200 frames, where already at hand (a data set's test set)."""

    def first(self, count: int | None) -> EvaluationLap:
        """The lap's first ``count`` frames (all of it for None)."""
        if count is None or count >= len(self.poses):
            return self
        frames = None if self.frames is None else self.frames[:count]
        return EvaluationLap(self.circuit, self.poses[:count], self.labels[:count], frames)

    def images(self, camera: CameraConfig | None = None, chunk: int = CHUNK) -> Iterator[NDArray[np.uint8]]:
        """The lap's images as ``camera`` sees them (default: the env's frame), ``chunk`` at a time."""
        camera = camera or CameraConfig()
        if self.frames is not None and camera == CameraConfig():
            for start in range(0, len(self.frames), chunk):
                yield self.frames[start : start + chunk]
            return
        renderer = make_renderer("raster", Circuit.from_name(self.circuit), camera)
        try:
            for start in range(0, len(self.poses), chunk):
                yield np.stack([renderer.render(*pose) for pose in self.poses[start : start + chunk]])
        finally:
            renderer.close()


@functools.cache
def expert_lap(circuit: str) -> EvaluationLap:
    """The expert's noise-free lockstep lap of ``circuit`` from its spawn."""
    from simeval.agents.expert import ExpertAgent
    from simeval.env import FollowLineEnv
    from simeval.eval.rollout import rollout

    lap = rollout(FollowLineEnv(circuit), ExpertAgent())
    poses = np.stack([lap.x, lap.y, lap.yaw], axis=1)
    return EvaluationLap(circuit, poses, np.stack([lap.v_cmd, lap.w_cmd], axis=1))

