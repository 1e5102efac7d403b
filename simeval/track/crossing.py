"""The self-crossing check of a closed polyline, in near-linear time with a uniform grid.

Comparing every segment with every other is O(n^2): 22 s for 30,000 points. Two segments can only
cross where both pass, so each segment is cut into pieces no longer than a grid cell, each piece is
filed under the cells its bounding box touches, and only segments that share a cell are compared,
with the exact test of the brute-force check. The cell is the mean segment length, so there are at
most ~2n pieces, each in at most four cells: for the evenly spaced points of any real track, a
cell holds a handful of segments and the check takes O(n log n) (the sort by cell).

Points crowded far more densely in one place than elsewhere fill one cell with many segments;
``MAX_CANDIDATE_PAIRS`` bounds that work.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from simeval.errors import CircuitError

MAX_CANDIDATE_PAIRS = 10_000_000
"""Most segment pairs compared (under a second, ~300 MB): a million evenly spaced points give
~50,000; only a track whose points crowd into a few places comes near."""
CHUNK_PAIRS = 1_000_000
"""Pairs tested at once, which bounds the memory of the test."""
PAD = 1e-9
"""Each piece's box grows by this fraction of the loop's extent, so rounding in cutting a segment
into pieces never hides a crossing from the grid."""


def check_no_self_crossing(xy: NDArray[np.float64], where: str) -> None:
    """A centre line that crosses itself is a figure of eight or a bad file: name the two rows.

    Segment ``i`` runs from row ``i`` to row ``i + 1`` (the last back to the first); two segments
    cross when they meet strictly inside both. The pair reported is the first in row order.
    """
    xy = np.asarray(xy, dtype=np.float64)
    n = len(xy)
    if n < 4:
        return
    start, end = xy, np.roll(xy, -1, axis=0)
    i, j = _candidate_pairs(start, end, where)
    crossing = _first_crossing(start, end, i, j)
    if crossing is not None:
        a, b = crossing
        raise CircuitError(
            f"{where}: the centre line crosses itself between data rows {a + 1}-{a + 2} "
            f"and {b + 1}-{(b + 1) % n + 1}: a circuit must be a simple closed loop"
        )


def _candidate_pairs(start: NDArray[np.float64], end: NDArray[np.float64], where: str) -> tuple[NDArray, NDArray]:
    """Pairs ``i < j`` of segments that share a grid cell and are not neighbours on the loop."""
    n = len(start)
    length = np.hypot(*(end - start).T)
    cell = float(length.sum()) / n
    if not (np.isfinite(cell) and cell > 0):
        return np.empty(0, np.int64), np.empty(0, np.int64)
    segment, keys = _filed_pieces(start, end, length, cell)
    order = np.lexsort((segment, keys))
    segment, keys = segment[order], keys[order]
    first, second = _pairs_within_groups(keys, where)
    i, j = np.minimum(segment[first], segment[second]), np.maximum(segment[first], segment[second])
    gap = j - i
    keep = (gap > 1) & (gap != n - 1)
    unique = np.unique(i[keep] * n + j[keep])
    return unique // n, unique % n


def _filed_pieces(
    start: NDArray[np.float64], end: NDArray[np.float64], length: NDArray[np.float64], cell: float
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Segment index and cell key of every (piece, touched cell): pieces are at most ``cell`` long."""
    count = np.maximum(1, np.ceil(length / cell)).astype(np.int64)
    segment = np.repeat(np.arange(len(start)), count)
    k = np.arange(len(segment)) - np.repeat(np.cumsum(count) - count, count)
    t0, t1 = k / count[segment], (k + 1) / count[segment]
    delta = (end - start)[segment]
    p = start[segment] + t0[:, None] * delta
    q = start[segment] + t1[:, None] * delta
    origin = start.min(axis=0)
    pad = PAD * float(np.max(np.abs(start - origin))) + PAD * cell
    low = np.floor((np.minimum(p, q) - origin - pad) / cell).astype(np.int64)
    high = np.floor((np.maximum(p, q) - origin + pad) / cell).astype(np.int64)
    width = int(high[:, 1].max()) + 2
    segments, keys = [], []
    for dx in (0, 1):  # a piece no longer than a cell spans at most two cells each way
        for dy in (0, 1):
            cx, cy = low[:, 0] + dx, low[:, 1] + dy
            inside = (cx <= high[:, 0]) & (cy <= high[:, 1])
            segments.append(segment[inside])
            keys.append(cx[inside] * width + (cy[inside] + 1))
    return np.concatenate(segments), np.concatenate(keys)


def _pairs_within_groups(keys: NDArray[np.int64], where: str) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Index pairs ``(a, b)``, ``a < b``, of every two entries with the same key (``keys`` sorted)."""
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    group_end = np.repeat(ends, ends - starts)
    later = group_end - np.arange(len(keys)) - 1  # entries after this one in its group
    total = int(later.sum())
    if total > MAX_CANDIDATE_PAIRS:
        raise CircuitError(
            f"{where}: the points crowd together ({total:,} pairs of segments to compare, more than the limit of "
            f"{MAX_CANDIDATE_PAIRS:,}); resample the track to evenly spaced points"
        )
    first = np.repeat(np.arange(len(keys)), later)
    offset = np.arange(total) - np.repeat(np.cumsum(later) - later, later)
    return first, first + 1 + offset


def _first_crossing(
    start: NDArray[np.float64], end: NDArray[np.float64], i: NDArray[np.int64], j: NDArray[np.int64]
) -> tuple[int, int] | None:
    """The first pair ``(i, j)`` in row order whose segments cross strictly inside both, or None.

    The arithmetic is the brute-force check's, operation for operation, so both decide alike."""
    for lo in range(0, len(i), CHUNK_PAIRS):
        a, b = i[lo : lo + CHUNK_PAIRS], j[lo : lo + CHUNK_PAIRS]
        p, r = start[a], end[a] - start[a]
        q, s = start[b], end[b] - start[b]
        denom = r[:, 0] * s[:, 1] - r[:, 1] * s[:, 0]
        qp = q - p
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (qp[:, 0] * s[:, 1] - qp[:, 1] * s[:, 0]) / denom
            u = (qp[:, 0] * r[:, 1] - qp[:, 1] * r[:, 0]) / denom
        cross = (denom != 0) & (t > 0) & (t < 1) & (u > 0) & (u < 1)
        if cross.any():
            k = int(np.argmax(cross))  # pairs are sorted by (i, j): the first is the earliest
            return int(a[k]), int(b[k])
    return None
