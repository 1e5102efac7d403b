"""Renderers draw the camera frame of a car at a pose: the protocol, and the factory by name.

``raster`` (numpy, analytic anti-aliasing, the default) and ``pybullet`` (TinyRenderer on the CPU)
draw the same world with the same ``CameraConfig`` and ``PALETTE``; a test holds their red-line
masks against each other. Each is imported only when asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np
from numpy.typing import NDArray

from simeval.errors import UnknownNameError
from simeval.sim.camera import CameraConfig

if TYPE_CHECKING:
    from simeval.track.circuit import Circuit
    from simeval.track.lookup import RoadGrid


class Renderer(Protocol):
    """Draws the camera frame of a car at a pose on one circuit."""

    def render(self, x: float, y: float, yaw: float) -> NDArray[np.uint8]: ...

    def close(self) -> None: ...


RENDERERS = ("raster", "pybullet")


def make_renderer(name: str, circuit: Circuit, config: CameraConfig, *, grid: RoadGrid | None = None) -> Renderer:
    """Build renderer ``name`` ('raster' or 'pybullet') for ``circuit``; heavy imports happen here.

    ``grid`` lets the raster renderer share the road lookup that the simulator already built.
    """
    if name == "raster":
        from simeval.sim.raster import RasterRenderer

        return RasterRenderer(circuit, config, grid)
    if name == "pybullet":
        from simeval.sim.pybullet_renderer import PybulletRenderer

        return PybulletRenderer(circuit, config)
    raise UnknownNameError("renderer", name, RENDERERS)
