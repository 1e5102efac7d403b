"""Constant-time road coordinates of many world points at once: the hot path of camera and car.

A KD-tree query per pixel is far too slow for thousands of frames a second, so a grid of
``CELL_M`` cells covers a band around the road, and each cell in the band stores an affine model
of the road coordinates around it: the lateral offset ``d`` and the arc length ``s`` as
``a + gx * x + gy * y``, built from the nearest centre-line vertex and the local curvature (the
exact values and gradients at the cell centre). Within a quarter-metre cell the error is a few
millimetres in the tightest bend and far less elsewhere. Points outside the band get a sentinel
model that puts them far off the road.

Coordinates are relative to ``RoadGrid.origin`` (the band's lower-left corner), which keeps
float32 exact to a tenth of a millimetre on kilometre-sized circuits.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simeval.track.circuit import SPACING_M, Circuit

CELL_M = 0.25
BAND_M = 1.5
"""How far past the walls the grid keeps exact offsets (m); anything further is just 'outside'."""
FAR_M = 1.0e6
COLUMNS = ("d0", "d_gx", "d_gy", "half_width", "centre_shift", "s0", "s_gx", "s_gy")
"""Per band cell: d = d0 + d_gx x + d_gy y; margin = half_width - |d - centre_shift|; s likewise."""


@dataclass(frozen=True)
class RoadPoints:
    """Road coordinates of a batch of points (float32 arrays of the batch's shape)."""

    d: NDArray[np.float32]
    """Signed lateral offset from the centre line (m, left +)."""
    margin: NDArray[np.float32]
    """Distance to the nearer wall (m): positive on the road, negative beyond a wall."""
    s: NDArray[np.float32] | None = None
    """Arc length (m, not wrapped to the lap; NaN outside the band), only when asked for."""


class RoadGrid:
    """Per-cell affine models of (d, s) over a band around one circuit's road."""

    def __init__(self, circuit: Circuit, cell_m: float = CELL_M, band_m: float = BAND_M):
        self.circuit = circuit
        self.cell_m = cell_m
        reach = float(max(circuit.w_left.max(), circuit.w_right.max())) + band_m
        self.origin = circuit.xy.min(axis=0) - reach - 2 * cell_m
        self._origin_x, self._origin_y = float(self.origin[0]), float(self.origin[1])
        span = circuit.xy.max(axis=0) + reach + 2 * cell_m - self.origin
        self.shape = (int(np.ceil(span[1] / cell_m)), int(np.ceil(span[0] / cell_m)))  # rows (y), cols (x)
        cells = self._band_cells(reach)
        self.outside = len(cells)
        """Model index of every cell outside the band."""
        self.cell_model = np.full(self.shape[0] * self.shape[1], self.outside, dtype=np.int32)
        self.cell_model[cells] = np.arange(len(cells), dtype=np.int32)
        self.models = self._fit_models(cells)
        """One row of ``COLUMNS`` per band cell, plus the outside row (rows of 32 bytes: numpy's
        ``take`` copies those faster than narrower ones)."""
        # Plain-Python copies of the rows the per-point path meets (a few points per physics step),
        # where numpy's per-call overhead would cost more than the arithmetic; made as the car
        # reaches each cell (a lap meets a few thousand of the grid's ~10^5 rows).
        self._rows: dict[int, tuple[float, ...]] = {}

    # --------------------------------------------------------------------------------- build
    def _band_cells(self, reach: float) -> NDArray[np.int64]:
        """Flat indices of the cells within ``reach`` of the centre line, sampled densely."""
        c = self.circuit
        offsets = np.arange(-reach, reach + self.cell_m / 2, self.cell_m / 2)
        along = np.array([-0.5, 0.0, 0.5]) * SPACING_M
        pts = (
            c.xy[:, None, None, :]
            + offsets[None, :, None, None] * c.normal[:, None, None, :]
            + along[None, None, :, None] * c.tangent[:, None, None, :]
        ).reshape(-1, 2)
        marked = np.zeros(self.shape[0] * self.shape[1], dtype=bool)  # faster than np.unique's sort, same order
        marked[self._cell_index(pts - self.origin)] = True
        return np.flatnonzero(marked)

    def _fit_models(self, cells: NDArray[np.int64]) -> NDArray[np.float32]:
        """Exact (d, s) and their gradients at each cell centre, from the nearest vertex's circle."""
        c = self.circuit
        rows, cols = np.divmod(cells, self.shape[1])
        centre = np.stack([(cols + 0.5) * self.cell_m, (rows + 0.5) * self.cell_m], axis=1)
        _, v = c._tree.query(centre + self.origin)
        t, n, k = c.tangent[v], c.normal[v], c.curvature[v]
        rel = centre - (c.xy[v] - self.origin)
        along = np.sum(rel * t, axis=1)
        lateral = np.sum(rel * n, axis=1)
        shrink = 1.0 - k * lateral  # how much narrower the level curves are than the centre line here
        d_grad = n * shrink[:, None] - (k * along)[:, None] * t
        d_grad /= np.linalg.norm(d_grad, axis=1, keepdims=True)
        d_centre = lateral - 0.5 * k * along * along
        ds = along / shrink
        turn = k * ds
        s_grad = (t * np.cos(turn)[:, None] + n * np.sin(turn)[:, None]) / (1.0 - k * d_centre)[:, None]
        s_centre = c.s[v] + ds
        w_left, w_right = c.w_left[v], c.w_right[v]
        models = np.empty((len(cells) + 1, len(COLUMNS)), dtype=np.float64)
        models[:-1, 0] = d_centre - np.sum(d_grad * centre, axis=1)
        models[:-1, 1:3] = d_grad
        models[:-1, 3] = 0.5 * (w_left + w_right)
        models[:-1, 4] = 0.5 * (w_left - w_right)
        models[:-1, 5] = s_centre - np.sum(s_grad * centre, axis=1)
        models[:-1, 6:8] = s_grad
        models[-1] = (FAR_M, 0.0, 0.0, -FAR_M, 0.0, np.nan, 0.0, 0.0)
        return models.astype(np.float32)

    def _cell_index(self, rel: NDArray) -> NDArray[np.int64]:
        col = np.clip((rel[..., 0] / self.cell_m).astype(np.int64), 0, self.shape[1] - 1)
        row = np.clip((rel[..., 1] / self.cell_m).astype(np.int64), 0, self.shape[0] - 1)
        return row * self.shape[1] + col

    # ------------------------------------------------------------------------------- queries
    def locate_xy(self, x: NDArray[np.float32], y: NDArray[np.float32], *, with_s: bool = False) -> RoadPoints:
        """Lateral offset and wall margin (and arc length if ``with_s``) of points given relative to
        ``origin`` (same-shape arrays).

        Written for speed (it runs on every pixel of every frame): in-place clipping, ``np.take``
        instead of fancy indexing, one gather of whole model rows.
        """
        col = x * np.float32(1.0 / self.cell_m)
        row = y * np.float32(1.0 / self.cell_m)
        np.clip(col, 0, self.shape[1] - 1, out=col)
        np.clip(row, 0, self.shape[0] - 1, out=row)
        cell = row.astype(np.int32)
        cell *= np.int32(self.shape[1])
        cell += col.astype(np.int32)
        model = np.take(self.models, np.take(self.cell_model, cell).ravel(), axis=0).T
        d0, d_gx, d_gy, half, shift = (m.reshape(x.shape) for m in model[:5])
        d = d_gx * x
        d += d_gy * y
        d += d0
        margin = d - shift
        np.abs(margin, out=margin)
        np.subtract(half, margin, out=margin)
        if not with_s:
            return RoadPoints(d=d, margin=margin)
        s0, s_gx, s_gy = (m.reshape(x.shape) for m in model[5:8])
        s = s_gx * x
        s += s_gy * y
        s += s0
        return RoadPoints(d=d, margin=margin, s=s)

    def locate_world(self, xy: NDArray[np.float64]) -> RoadPoints:
        """Lateral offset and wall margin of world points (..., 2)."""
        rel = (np.asarray(xy, dtype=np.float64) - self.origin).astype(np.float32)
        return self.locate_xy(np.ascontiguousarray(rel[..., 0]), np.ascontiguousarray(rel[..., 1]))

    def locate_point(self, x: float, y: float) -> tuple[float, float, float]:
        """(s, d, margin) of one world point, in plain Python for the physics loop.

        ``s`` is NaN outside the band around the road (the point is then far beyond a wall).
        """
        rx, ry = x - self._origin_x, y - self._origin_y
        col = min(max(int(rx / self.cell_m), 0), self.shape[1] - 1)
        row = min(max(int(ry / self.cell_m), 0), self.shape[0] - 1)
        index = int(self.cell_model[row * self.shape[1] + col])
        found = self._rows.get(index)
        if found is None:
            found = self._rows[index] = tuple(self.models[index].tolist())
        d0, d_gx, d_gy, half, shift, s0, s_gx, s_gy = found
        d = d0 + d_gx * rx + d_gy * ry
        return (s0 + s_gx * rx + s_gy * ry) % self.circuit.length_m, d, half - abs(d - shift)


GRID_CACHE_SIZE = 3
"""Road grids kept per process: a sweep's worker drives the same few circuits lap after lap."""
_grids: OrderedDict[str, RoadGrid] = OrderedDict()


def road_grid(circuit: Circuit) -> RoadGrid:
    """The road grid of ``circuit``, shared by every env of that circuit in this process (a grid
    takes ~0.1-0.5 s to build and never changes). Keyed by the geometry itself, so an edited
    circuit file gets a grid of its own; the ``GRID_CACHE_SIZE`` last used are kept."""
    key = hashlib.sha1(b"".join(np.ascontiguousarray(a).tobytes() for a in (circuit.xy, circuit.w_left, circuit.w_right))).hexdigest()
    grid = _grids.pop(key, None) or RoadGrid(circuit)
    _grids[key] = grid
    while len(_grids) > GRID_CACHE_SIZE:
        _grids.popitem(last=False)
    return grid

