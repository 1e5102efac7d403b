"""Figures: circuits and the laps driven on them, written as PNG files.

Uses ``matplotlib.figure.Figure`` directly, never pyplot, so plotting needs no display, keeps no
global figure state and works the same in a CLI, a test or a sweep.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from simeval.atomic import write_bytes_atomic

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from simeval.eval.metrics import LapMetrics
    from simeval.eval.rollout import LapRecord
    from simeval.track.circuit import Circuit

GRASS = "#4f8a3a"
ASPHALT = "#707070"
WALL = "#202020"
LINE = "#d62020"
START = "white"
ARROW = "#ffd400"


def draw_circuit(ax: Axes, circuit: Circuit, *, walls: bool = True) -> None:
    """Draw ``circuit`` on ``ax``: grass, the road between its walls, the red centre line, the
    start/finish line and an arrow in the driving direction; equal axes in metres."""
    from matplotlib.patches import PathPatch
    from matplotlib.path import Path as MplPath

    right, left = circuit.edges()
    ax.set_facecolor(GRASS)
    # One path, outer and inner edge in opposite directions: filled, it is the road and not the infield.
    ring = np.vstack([right, right[:1], left[::-1], left[-1:]])
    codes = np.full(len(ring), MplPath.LINETO)
    codes[[0, len(right) + 1]] = MplPath.MOVETO
    codes[[len(right), len(ring) - 1]] = MplPath.CLOSEPOLY
    # add_artist and the ring's own limits: add_patch would walk its thousands of segments as curves.
    ax.add_artist(PathPatch(MplPath(ring, codes), facecolor=ASPHALT, edgecolor="none", zorder=1))
    ax.update_datalim(ring)
    if walls:
        for edge in (right, left):
            closed = np.vstack([edge, edge[:1]])
            ax.plot(closed[:, 0], closed[:, 1], color=WALL, linewidth=0.8, zorder=2)
    line = np.vstack([circuit.xy, circuit.xy[:1]])
    ax.plot(line[:, 0], line[:, 1], color=LINE, linewidth=0.8, zorder=3)
    _draw_start(ax, circuit)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")


def _draw_start(ax: Axes, circuit: Circuit) -> None:
    """Start/finish line across the road at s = 0, and an arrow along the first stretch of the lap."""
    w_right, w_left = circuit.width_at(0.0)
    across = circuit.position(np.array([0.0, 0.0]), np.array([-w_right, w_left]) * 1.6)
    ax.plot(across[:, 0], across[:, 1], color=START, linewidth=2.5, solid_capstyle="butt", zorder=4)
    reach = max(3.0, 0.04 * circuit.length_m)
    tail, head = circuit.position(np.array([0.3 * reach, 1.3 * reach]))
    ax.annotate(
        "",
        xy=tuple(head),
        xytext=tuple(tail),
        zorder=5,
        arrowprops={"arrowstyle": "-|>", "color": ARROW, "linewidth": 2.0, "mutation_scale": 18},
    )


def figure_png(fig: Figure, *, dpi: int = 120) -> bytes:
    """The PNG bytes of ``fig``, rendered in memory (so callers can write them atomically)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | Path, *, dpi: int = 120) -> Path:
    """Render ``fig`` to PNG in memory, then write it whole (temp file + rename)."""
    return write_bytes_atomic(Path(path), figure_png(fig, dpi=dpi))


def draw_path(ax: Axes, xy: NDArray[np.float64], values: NDArray[np.float64], *, label: str, cmap: str = "viridis"):
    """The driven path as a line coloured by ``values`` (one per point); returns the mappable for a colour bar."""
    from matplotlib.collections import LineCollection

    segments = np.stack([xy[:-1], xy[1:]], axis=1)
    lines = LineCollection(segments, cmap=cmap, linewidths=2.2, zorder=6)
    lines.set_array(0.5 * (values[:-1] + values[1:]))
    ax.add_collection(lines)
    return lines


def trajectory_png(record: LapRecord, circuit: Circuit, metrics: LapMetrics) -> bytes:
    """The lap on the circuit map, coloured by speed, with where it started and how it ended."""
    from matplotlib.figure import Figure

    path = record.path
    fig = Figure(figsize=(8, 8 * aspect(circuit)), layout="constrained")
    ax = fig.add_subplot()
    draw_circuit(ax, circuit)
    if len(path) >= 2:
        xy = path[:, 1:3]
        dt = np.maximum(np.diff(path[:, 0]), 1e-9)
        speed = np.hypot(*np.diff(xy, axis=0).T) / dt
        speed = np.concatenate([speed[:1], speed])
        lines = draw_path(ax, xy, speed, label="speed")
        fig.colorbar(lines, ax=ax, label="speed (m/s)", shrink=0.5)
        ax.plot(*xy[0], marker="o", color="white", markeredgecolor="black", markersize=8, zorder=7)
        end_marker = "*" if metrics.completed else "X"
        ax.plot(*xy[-1], marker=end_marker, color="black", markeredgecolor="white", markersize=12, zorder=7)
    mae = metrics.deviation_mae_m
    speed_mean = metrics.average_speed_mps
    ax.set_title(
        f"{record.agent} on {circuit.name} (seed {record.seed}): {metrics.termination}, "
        f"{metrics.percentage_completed:.1f}%\n"
        + (f"mean speed {speed_mean:.1f} m/s, " if speed_mean is not None else "")
        + (f"deviation MAE {mae:.3f} m" if mae is not None else "")
    )
    return figure_png(fig)


def aspect(circuit: Circuit) -> float:
    """Height / width of a figure of ``circuit``'s map, kept between 0.6 and 1.6."""
    width, height = circuit.bounding_box()
    return float(np.clip(height / max(width, 1e-9), 0.6, 1.6))
