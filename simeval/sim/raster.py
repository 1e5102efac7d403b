"""The default renderer: a numpy ray caster specialised for a flat road between walls.

Each pixel's ray hits the ground at a point that is fixed in the car frame, so only a rotation,
a grid lookup (``simeval.track.lookup``) and a few array operations remain per frame. Anti-aliasing is
analytic: each pixel's footprint on the ground, measured across the road from the lateral offsets
of neighbouring pixels, box-filters the red line and the road edge, so thin far lines fade
instead of breaking into stairs.

Walls are taller than the lens (the Gazebo F1 car sees no grass over them), so along an image
column, whose rays sweep outwards along one ground line, everything past the first point beyond a
wall is wall: a running maximum up the column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simeval.errors import ConfigError
from simeval.sim.camera import PALETTE, CameraConfig
from simeval.track.circuit import Circuit
from simeval.track.lookup import RoadGrid

LEVELS = 32
"""Coverage quantisation of the colour lookup table (32 levels is below what uint8 shows)."""


@dataclass(frozen=True)
class PaintGaps:
    """Where the red line is not painted: the last ``gap_m`` of every ``period_m`` of arc length."""

    gap_m: float
    period_m: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.period_m) and self.period_m > 0):
            raise ConfigError(f"period_m must be > 0, got {self.period_m}")
        if not (math.isfinite(self.gap_m) and 0 < self.gap_m < self.period_m):
            raise ConfigError(f"gap_m must be > 0 and < period_m ({self.period_m}), got {self.gap_m}")

    def unpainted(self, s: NDArray[np.float32], lap_m: float) -> NDArray[np.bool_]:
        """Which arc lengths lie in a gap (NaN, outside the road band, lies in none)."""
        along = np.mod(np.mod(s, np.float32(lap_m)), np.float32(self.period_m))
        return along >= np.float32(self.period_m - self.gap_m)


def ground_points(config: CameraConfig) -> NDArray[np.float64]:
    """Where each pixel's ray meets the ground, in the car frame (H, W, 2)."""
    rays = config.pixel_rays()
    if np.any(rays[..., 2] >= -1e-9):
        raise ConfigError("the raster renderer needs every frame row below the horizon: lower pitch_rad or crop_top_px")
    lens = config.lens_in_car()
    t = -lens[2] / rays[..., 2]
    return lens[:2] + t[..., None] * rays[..., :2]


def colour_table() -> NDArray[np.uint8]:
    """RGB for each (line coverage, wall coverage) level pair: line over asphalt, wall over both."""
    a = np.linspace(0.0, 1.0, LEVELS + 1)
    asphalt, line, wall = (np.array(c, dtype=np.float64) for c in (PALETTE.asphalt, PALETTE.line, PALETTE.wall))
    ground = asphalt + a[:, None, None] * (line - asphalt)
    rgb = ground + a[None, :, None] * (wall - ground)
    return np.round(rgb).astype(np.uint8).reshape(-1, 3)


def box_coverage(d: NDArray[np.float32], half_width: float, footprint: NDArray[np.float32]) -> NDArray[np.float32]:
    """Fraction of a pixel of ground width ``footprint`` centred at offset ``d`` that lies on a
    band ``|d| < half_width``: the overlap of the two intervals, ``hw + fp/2 - |d|``, is capped by
    the narrower of them."""
    overlap = np.abs(d)
    np.subtract(footprint * np.float32(0.5) + np.float32(half_width), overlap, out=overlap)
    np.maximum(overlap, 0.0, out=overlap)
    np.minimum(overlap, np.float32(2.0 * half_width), out=overlap)
    overlap /= footprint
    return np.minimum(overlap, 1.0, out=overlap)


def pixel_footprint(d: NDArray[np.float32], largest: NDArray[np.float32]) -> NDArray[np.float32]:
    """Width of each pixel measured across the road (m): |change of d| to the next pixel along the
    row plus along the column, clamped to the pixel's ground footprint ``largest`` where a
    neighbour falls outside the lookup band."""
    footprint = np.empty_like(d)
    step = np.empty_like(d)
    np.subtract(d[:, 1:], d[:, :-1], out=footprint[:, :-1])
    footprint[:, -1] = footprint[:, -2]
    np.subtract(d[1:], d[:-1], out=step[1:])
    step[0] = step[1]
    np.abs(footprint, out=footprint)
    footprint += np.abs(step, out=step)
    return np.clip(footprint, 1e-4, largest, out=footprint)


def occlude_above(beyond: NDArray[np.float32]) -> NDArray[np.float32]:
    """Wall coverage: in each column, every pixel above the first one wholly beyond a wall is wall.

    (A running maximum up the column says the same, at twice the cost in numpy; the two differ
    only inside the one-pixel anti-aliased fringe.)
    """
    height = beyond.shape[0]
    full = beyond[::-1] >= 0.999
    first = full.argmax(axis=0)
    first[~full.any(axis=0)] = height
    above = (height - 1 - np.arange(height))[:, None] >= first
    return np.maximum(beyond, above, dtype=np.float32)


class RasterRenderer:
    """Renders the camera frame of a car on ``circuit`` in well under a millisecond."""

    def __init__(self, circuit: Circuit, config: CameraConfig | None = None, grid: RoadGrid | None = None):
        self.config = config or CameraConfig()
        if self.config.height_m >= circuit.meta.wall_height_m:
            raise ConfigError(
                f"the raster renderer assumes the lens ({self.config.height_m} m) is below the walls "
                f"({circuit.meta.wall_height_m} m); use --renderer pybullet for a higher camera"
            )
        self.circuit = circuit
        self.grid = grid or RoadGrid(circuit)
        ground = ground_points(self.config)
        self._ground_x = np.ascontiguousarray(ground[..., 0], dtype=np.float32)
        self._ground_y = np.ascontiguousarray(ground[..., 1], dtype=np.float32)
        du = np.gradient(ground, axis=1)
        dv = np.gradient(ground, axis=0)
        self._max_footprint = (np.linalg.norm(du, axis=-1) + np.linalg.norm(dv, axis=-1)).astype(np.float32)
        self._half_line = 0.5 * circuit.meta.line_width_m
        self._lut_rows = colour_table().view("V3").ravel()  # one 3-byte item per colour: a fast 1-D take
        self._shape = self.config.shape
        self.paint_gaps: PaintGaps | None = None
        """Gaps in the red line (robustness scenarios); None paints it whole at no extra cost."""

    def coverage(self, x: float, y: float, yaw: float) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """Per-pixel coverage (H, W) of the red line and of the walls for a car at (x, y, yaw)."""
        c, s = np.float32(math.cos(yaw)), np.float32(math.sin(yaw))
        ox, oy = (np.float32(v) for v in np.array([x, y]) - self.grid.origin)
        gx, gy = self._ground_x, self._ground_y
        gaps = self.paint_gaps
        road = self.grid.locate_xy(gx * c - gy * s + ox, gx * s + gy * c + oy, with_s=gaps is not None)
        footprint = pixel_footprint(road.d, self._max_footprint)
        line = box_coverage(road.d, self._half_line, footprint)
        if gaps is not None:
            line[gaps.unpainted(road.s, self.circuit.length_m)] = 0.0
        beyond = road.margin
        beyond /= footprint
        np.subtract(0.5, beyond, out=beyond)
        np.clip(beyond, 0.0, 1.0, out=beyond)
        return line, occlude_above(beyond)

    def render(self, x: float, y: float, yaw: float) -> NDArray[np.uint8]:
        line, wall = self.coverage(x, y, yaw)
        index = np.rint(line * np.float32(LEVELS))
        index *= np.float32(LEVELS + 1)
        index += np.rint(wall * np.float32(LEVELS))
        return np.take(self._lut_rows, index.astype(np.intp)).view(np.uint8).reshape(self._shape)

    def close(self) -> None:
        """Nothing to release; present so every renderer can be closed the same way."""
