"""A top-down, heading-up view around the car: the env's ``render()`` picture for people (and the
map half of ``simeval.sim.views``' lap view).

It shades ground points with the same road lookup as the camera, so what a person sees is the
world the agent drives in.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from simeval.sim.camera import PALETTE
from simeval.sim.raster import box_coverage
from simeval.sim.vehicle import VehicleConfig
from simeval.track.lookup import RoadGrid

CAR_COLOUR = np.array((30, 60, 160), dtype=np.float32)
WALL_THICKNESS_M = 0.15


class MapView:
    """Renders ``size_px`` square pictures covering ``span_m`` metres around the car."""

    def __init__(self, grid: RoadGrid, vehicle: VehicleConfig, size_px: int = 256, span_m: float = 40.0):
        self.grid = grid
        self.vehicle = vehicle
        self.size_px = size_px
        self.res_m = span_m / size_px
        centres = (np.arange(size_px) + 0.5 - size_px / 2) * self.res_m
        self._forward = np.ascontiguousarray(np.repeat(-centres[:, None], size_px, axis=1), dtype=np.float32)
        self._left = np.ascontiguousarray(np.repeat(-centres[None, :], size_px, axis=0), dtype=np.float32)
        fwd, left = self._forward, self._left
        self._car = (np.abs(fwd) <= vehicle.length_m / 2) & (np.abs(left) <= vehicle.width_m / 2)

    def render(self, x: float, y: float, yaw: float) -> NDArray[np.uint8]:
        """The map around the car at (x m, y m, yaw rad), the car drawn at its centre, facing up."""
        picture = self.ground(x, y, yaw)
        self.draw_car(picture)
        return picture

    def draw_car(self, picture: NDArray[np.uint8]) -> None:
        """Paint the car's footprint over ``picture`` (a map of this size), in place."""
        picture[self._car] = CAR_COLOUR

    def to_pixels(self, xy: NDArray[np.float64], pose: tuple[float, float, float]) -> NDArray[np.float64]:
        """Where world points ``xy`` ((N, 2) m) fall on the map around ``pose``, as (column, row)
        coordinates of pixel centres (x right, y down, as image libraries draw)."""
        x, y, yaw = pose
        c, s = math.cos(yaw), math.sin(yaw)
        dx, dy = xy[:, 0] - x, xy[:, 1] - y
        forward, left = dx * c + dy * s, dy * c - dx * s
        half = self.size_px / 2
        return np.stack([half - left / self.res_m - 0.5, half - forward / self.res_m - 0.5], axis=1)

    def ground(self, x: float, y: float, yaw: float) -> NDArray[np.uint8]:
        """The map around the car at (x m, y m, yaw rad) without the car: road, line, walls, grass."""
        c, s = np.float32(math.cos(yaw)), np.float32(math.sin(yaw))
        ox, oy = (np.float32(v) for v in np.array([x, y]) - self.grid.origin)
        fwd, left = self._forward, self._left
        road = self.grid.locate_xy(fwd * c - left * s + ox, fwd * s + left * c + oy)
        px = np.float32(self.res_m)
        line = box_coverage(road.d, 0.5 * self.grid.circuit.meta.line_width_m, np.full_like(road.d, px))
        wall = box_coverage(road.margin + WALL_THICKNESS_M / 2, WALL_THICKNESS_M / 2, np.full_like(road.d, px))
        grass = np.clip(0.5 - (road.margin + WALL_THICKNESS_M) / px, 0.0, 1.0)
        planes = np.empty((3,) + road.d.shape, dtype=np.float32)  # one plane per channel: long inner loops
        planes[:] = np.array(PALETTE.asphalt, dtype=np.float32)[:, None, None]
        step = np.empty_like(road.d)
        for cover, colour in ((line, PALETTE.line), (wall, PALETTE.wall), (grass, PALETTE.grass)):
            for plane, value in zip(planes, colour, strict=True):
                np.subtract(np.float32(value), plane, out=step)
                step *= cover
                plane += step
        picture = np.empty(road.d.shape + (3,), dtype=np.uint8)
        for k, plane in enumerate(np.rint(planes, out=planes)):
            picture[..., k] = plane
        return picture
