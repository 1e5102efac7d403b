"""Constant-time road coordinates of many world points at once: the hot path of camera and car.

A KD-tree query per pixel is far too slow for thousands of frames a second, so a grid of
``CELL_M`` cells over a band around the road stores each cell's nearest centre-line vertex. From
that vertex, the signed lateral offset of a point follows from the vertex's normal plus a
curvature term, which keeps the error under a millimetre even in the tightest bends. Points
outside the band map to a sentinel vertex that puts them far off the road.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from simeval.circuit import SPACING_M, Circuit

CELL_M = 0.25
BAND_M = 1.5
"""How far past the walls the grid keeps exact offsets (m); anything further is just 'outside'."""
FAR_M = 1.0e6


@dataclass(frozen=True)
class RoadPoints:
    """Road coordinates of a batch of points (all float32 arrays of the batch's shape)."""

    vertex: NDArray[np.int32]
    """Nearest centre-line vertex, or ``VertexGrid.sentinel`` outside the band."""
    d: NDArray[np.float32]
    """Signed lateral offset from the centre line (m, left +)."""
    margin: NDArray[np.float32]
    """Distance to the nearer wall (m): positive on the road, negative beyond a wall."""


class VertexGrid:
    """Nearest-vertex grid of one circuit, in coordinates relative to ``origin`` (float32-safe)."""

    def __init__(self, circuit: Circuit, cell_m: float = CELL_M, band_m: float = BAND_M):
        self.circuit = circuit
        self.cell_m = cell_m
        reach = float(max(circuit.w_left.max(), circuit.w_right.max())) + band_m
        self.origin = circuit.xy.min(axis=0) - reach - 2 * cell_m
        self._origin_x, self._origin_y = float(self.origin[0]), float(self.origin[1])
        span = circuit.xy.max(axis=0) + reach + 2 * cell_m - self.origin
        self.shape = (int(np.ceil(span[1] / cell_m)), int(np.ceil(span[0] / cell_m)))  # rows (y), cols (x)
        self.sentinel = len(circuit.xy)
        self.grid = self._build(reach)
        self.table = self._vertex_table()
        # Plain-Python copies for the per-point path (the car's few points per physics step), where
        # numpy's per-call overhead would cost more than the arithmetic.
        self._grid_flat = self.grid.ravel()
        self._rows = [tuple(float(v) for v in row) for row in self.table]

    def _build(self, reach: float) -> NDArray[np.int32]:
        """Fill the cells of the band around the road with their nearest vertex."""
        c = self.circuit
        offsets = np.arange(-reach, reach + self.cell_m / 2, self.cell_m / 2)
        along = np.array([-0.5, 0.0, 0.5]) * SPACING_M
        pts = (
            c.xy[:, None, None, :]
            + offsets[None, :, None, None] * c.normal[:, None, None, :]
            + along[None, None, :, None] * c.tangent[:, None, None, :]
        ).reshape(-1, 2)
        cells = np.unique(self._cell_index(pts - self.origin))
        rows, cols = np.divmod(cells, self.shape[1])
        centres = np.stack([(cols + 0.5) * self.cell_m, (rows + 0.5) * self.cell_m], axis=1) + self.origin
        _, nearest = c._tree.query(centres)
        grid = np.full(self.shape, self.sentinel, dtype=np.int32)
        grid.ravel()[cells] = nearest.astype(np.int32)
        return grid

    def _vertex_table(self) -> NDArray[np.float32]:
        """Per vertex: position (relative to origin), normal, half curvature, left and right width."""
        c = self.circuit
        table = np.zeros((len(c.xy) + 1, 8), dtype=np.float32)
        table[:-1, 0:2] = c.xy - self.origin
        table[:-1, 2:4] = c.normal
        table[:-1, 4] = 0.5 * c.curvature
        table[:-1, 5] = c.w_left
        table[:-1, 6] = c.w_right
        table[-1] = (-FAR_M, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        return table

    def _cell_index(self, rel: NDArray) -> NDArray[np.int64]:
        col = np.clip((rel[..., 0] / self.cell_m).astype(np.int64), 0, self.shape[1] - 1)
        row = np.clip((rel[..., 1] / self.cell_m).astype(np.int64), 0, self.shape[0] - 1)
        return row * self.shape[1] + col

    def locate_xy(self, x: NDArray[np.float32], y: NDArray[np.float32]) -> RoadPoints:
        """Road coordinates of points given relative to ``origin`` as two same-shape arrays.

        Written for speed (this runs on every pixel of every frame): ``np.take`` instead of fancy
        indexing, in-place clipping, and one gather of whole vertex rows.
        """
        col = x * (1.0 / self.cell_m)
        row = y * (1.0 / self.cell_m)
        np.clip(col, 0, self.shape[1] - 1, out=col)
        np.clip(row, 0, self.shape[0] - 1, out=row)
        cell = row.astype(np.int32) * np.int32(self.shape[1]) + col.astype(np.int32)
        vertex = np.take(self.grid.ravel(), cell)
        rows = np.take(self.table, vertex.ravel(), axis=0).T
        px, py, nx, ny, half_k, w_left, w_right, _ = rows.reshape(8, *x.shape)
        dx = x - px
        dy = y - py
        along = dx * ny - dy * nx
        d = dx * nx + dy * ny - half_k * along * along
        margin = np.minimum(w_left - d, w_right + d)
        return RoadPoints(vertex=vertex, d=d, margin=margin)

    def locate_point(self, x: float, y: float) -> tuple[int, float, float, float]:
        """(vertex, d, margin, along) of one world point, in plain Python for the physics loop.

        ``along`` is the distance from the vertex along the driving direction, so the point's arc
        length is ``circuit.s[vertex] + along``.
        """
        rx, ry = x - self._origin_x, y - self._origin_y
        col = min(max(int(rx / self.cell_m), 0), self.shape[1] - 1)
        row = min(max(int(ry / self.cell_m), 0), self.shape[0] - 1)
        vertex = int(self._grid_flat[row * self.shape[1] + col])
        px, py, nx, ny, half_k, w_left, w_right, _ = self._rows[vertex]
        dx, dy = rx - px, ry - py
        along = dx * ny - dy * nx
        d = dx * nx + dy * ny - half_k * along * along
        return vertex, d, min(w_left - d, w_right + d), along

    def locate_world(self, xy: NDArray[np.float64]) -> RoadPoints:
        """Road coordinates of world points (..., 2)."""
        rel = (np.asarray(xy, dtype=np.float64) - self.origin).astype(np.float32)
        return self.locate_xy(rel[..., 0], rel[..., 1])
