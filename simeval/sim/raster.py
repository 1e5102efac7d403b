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

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simeval.errors import ConfigError
from simeval.sim.camera import PALETTE, CameraConfig
from simeval.sim.checks import check_number
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
        check_number("period_m", self.period_m, above=0.0)
        check_number("gap_m", self.gap_m, above=0.0, below=self.period_m)

    def unpainted(self, s: NDArray[np.float32], lap_m: float) -> NDArray[np.bool_]:
        """Which arc lengths lie in a gap (NaN, outside the road band, lies in none)."""
        along = np.mod(np.mod(s, np.float32(lap_m)), np.float32(self.period_m))
        return along >= np.float32(self.period_m - self.gap_m)


def ground_points(config: CameraConfig) -> NDArray[np.float64]:
    """Where each pixel's ray meets the ground, in the car frame (H, W, 2)."""
    rays = config.pixel_rays()
    if np.any(rays[..., 2] >= -1e-9):
        raise ConfigError("every frame row must look below the horizon here: lower pitch_rad or crop_top_px")
    lens = config.lens_in_car()
    t = -lens[2] / rays[..., 2]
    return lens[:2] + t[..., None] * rays[..., :2]


def horizon_rows(config: CameraConfig) -> int:
    """How many rows at the top of the frame look at or above the horizon (sky, or a wall's top)."""
    if config.pitch_rad != 0.0:
        rays = config.pixel_rays()
        above = np.all(rays[..., 2] >= -1e-9, axis=1)
        if np.any(above[~np.maximum.accumulate(~above)]):  # tilted: rows above the horizon must come first
            raise ConfigError("a tilted camera must see the horizon as a row: use pitch_rad 0")
        return int(above.sum())
    rays = config.pixel_rays()[:, 0, 2]
    return int(np.sum(rays >= -1e-9))


class WallTops:
    """Walls above the horizon: a pinhole with pitch 0 sees the top of a wall ``wall_height_m`` high
    at horizontal distance D (m) at ``fy * sqrt(1 + u^2) * (wall_height_m - lens height) / D`` rows
    above the horizon, u being the column's normalised offset. ``coverage`` draws that edge
    anti-aliased above the ground rows, from each column's nearest wall."""

    def __init__(self, config: CameraConfig, rows: int, wall_height_m: float):
        fx, fy, cx, cy = config.intrinsics()
        u = (np.arange(config.width_px) + 0.5 - cx) / fx
        self._rise = np.float32(fy) * np.sqrt(1 + u * u).astype(np.float32) * np.float32(wall_height_m - config.height_m)
        self._horizon = np.float32(cy)
        self._rows = np.arange(rows, dtype=np.float32)[:, None]

    def coverage(self, distance: NDArray[np.float32]) -> NDArray[np.float32]:
        """(rows, W) wall coverage of the rows above the horizon, given each column's horizontal
        distance to its nearest wall (inf: none in view)."""
        top = self._horizon - self._rise / distance  # the wall's top edge, in rows from the frame's top
        return np.clip(self._rows + 1 - top, 0.0, 1.0)


def colour_table() -> NDArray[np.uint8]:
    """RGB for each (line coverage, wall coverage) level pair: line over asphalt, wall over both."""
    a = np.linspace(0.0, 1.0, LEVELS + 1)
    asphalt, line, wall = (np.array(c, dtype=np.float64) for c in (PALETTE.asphalt, PALETTE.line, PALETTE.wall))
    ground = asphalt + a[:, None, None] * (line - asphalt)
    rgb = ground + a[None, :, None] * (wall - ground)
    return np.round(rgb).astype(np.uint8).reshape(-1, 3)


def sky_table() -> NDArray[np.uint8]:
    """RGB for each wall coverage level over the sky (the rows above the horizon)."""
    a = np.linspace(0.0, 1.0, LEVELS + 1)[:, None]
    sky, wall = (np.array(c, dtype=np.float64) for c in (PALETTE.sky, PALETTE.wall))
    return np.round(sky + a * (wall - sky)).astype(np.uint8)


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
    """Renders the camera frame of a car on ``circuit`` in well under a millisecond.

    Every row below the horizon is ground (asphalt, the red line, grass) or wall; a camera that also
    sees rows at and above the horizon (the whole 640x480 sensor image) gets sky there, and the tops
    of the walls (``WallTops``).
    """

    def __init__(self, circuit: Circuit, config: CameraConfig | None = None, grid: RoadGrid | None = None):
        self.config = config or CameraConfig()
        if self.config.height_m >= circuit.meta.wall_height_m:
            raise ConfigError(
                f"the raster renderer assumes the lens ({self.config.height_m} m) is below the walls "
                f"({circuit.meta.wall_height_m} m); use --renderer pybullet for a higher camera"
            )
        self.circuit = circuit
        self.grid = grid or RoadGrid(circuit)
        self._sky_rows = horizon_rows(self.config)
        ground_config = self.config
        if self._sky_rows:
            ground_config = dataclasses.replace(
                self.config, height_px=self.config.height_px - self._sky_rows,
                crop_top_px=self.config.crop_top_px + self._sky_rows,
            ) if self.config.height_px == self.config.full_height_px - self.config.crop_top_px else None
            if ground_config is None:
                raise ConfigError("a resized frame must not reach above the horizon: crop it below")
            self._wall_tops = WallTops(self.config, self._sky_rows, circuit.meta.wall_height_m)
            self._sky_lut = sky_table().view("V3").ravel()
            self._columns = np.arange(self.config.width_px)
        ground = ground_points(ground_config)
        self._ground_x = np.ascontiguousarray(ground[..., 0], dtype=np.float32)
        self._ground_y = np.ascontiguousarray(ground[..., 1], dtype=np.float32)
        du = np.gradient(ground, axis=1)
        dv = np.gradient(ground, axis=0)
        self._max_footprint = (np.linalg.norm(du, axis=-1) + np.linalg.norm(dv, axis=-1)).astype(np.float32)
        self._half_line = 0.5 * circuit.meta.line_width_m
        self._distance = np.hypot(*(ground - self.config.lens_in_car()[:2]).transpose(2, 0, 1)).astype(np.float32)
        self._lut_rows = colour_table().view("V3").ravel()  # one 3-byte item per colour: a fast 1-D take
        self._shape = ground_config.shape
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
        ground = np.take(self._lut_rows, index.astype(np.intp)).view(np.uint8).reshape(self._shape)
        if not self._sky_rows:
            return ground
        return np.concatenate([self._above_horizon(wall), ground])

    def _above_horizon(self, wall: NDArray[np.float32]) -> NDArray[np.uint8]:
        """Sky, with the tops of the walls: each column's nearest wall is where its ground pixels
        first lie wholly beyond a wall (``occlude_above`` makes everything above that wall)."""
        full = wall[::-1] >= 0.999
        first = full.argmax(axis=0)
        rows = wall.shape[0] - 1 - first
        distance = np.where(full.any(axis=0), self._distance[rows, self._columns], np.inf).astype(np.float32)
        index = np.rint(self._wall_tops.coverage(distance) * np.float32(LEVELS)).astype(np.intp)
        return np.take(self._sky_lut, index).view(np.uint8).reshape(*index.shape, 3)

    def close(self) -> None:
        """Nothing to release; present so every renderer can be closed the same way."""
