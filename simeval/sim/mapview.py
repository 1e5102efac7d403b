"""A top-down, heading-up view around the car: the env's ``render()`` picture for people.

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

    def render(self, x: float, y: float, yaw: float) -> NDArray[np.uint8]:
        c, s = np.float32(math.cos(yaw)), np.float32(math.sin(yaw))
        ox, oy = (np.float32(v) for v in np.array([x, y]) - self.grid.origin)
        fwd, left = self._forward, self._left
        road = self.grid.locate_xy(fwd * c - left * s + ox, fwd * s + left * c + oy)
        px = np.float32(self.res_m)
        line = box_coverage(road.d, 0.5 * self.grid.circuit.meta.line_width_m, np.full_like(road.d, px))
        wall = box_coverage(road.margin + WALL_THICKNESS_M / 2, WALL_THICKNESS_M / 2, np.full_like(road.d, px))
        grass = np.clip(0.5 - (road.margin + WALL_THICKNESS_M) / px, 0.0, 1.0)
        rgb = np.empty(road.d.shape + (3,), dtype=np.float32)
        rgb[:] = PALETTE.asphalt
        for cover, colour in ((line, PALETTE.line), (wall, PALETTE.wall), (grass, PALETTE.grass)):
            rgb += cover[..., None] * (np.array(colour, dtype=np.float32) - rgb)
        car = (np.abs(fwd) <= self.vehicle.length_m / 2) & (np.abs(left) <= self.vehicle.width_m / 2)
        rgb[car] = CAR_COLOUR
        return np.round(rgb).astype(np.uint8)
