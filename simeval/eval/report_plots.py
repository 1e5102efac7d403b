"""The sweep report's figures, as PNG bytes: every seed's path on the circuit map, the deviation
along the lap (the mean over seeds with their range as a band), latency against deviation.

Each figure says which seeds it shows. Deviation is placed by distance from the start/finish line,
not from where a run started, so laps that started at different points (``--start random``, or
seeds with different starts) line up.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from simeval.eval.metrics import DEVIATION_STEP_M
from simeval.eval.report_document import Image, Report
from simeval.eval.sweep_runs import Run, read_trajectory, run_deviation
from simeval.track.loader import circuit_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from simeval.track.circuit import Circuit

PLOT_POINTS = 2000
"""Points of a line along the lap: more than the figure's pixels across, far fewer than the
deviation profile's (a point every few centimetres), which only slowed the drawing."""
LOG_SPAN = 20.0
"""The latency axis is logarithmic only when latencies span more than this factor (then ticks at 1,
2 and 5 of each decade always label it); a narrower span reads better on a linear axis."""


def agent_colours(agents: Sequence[str]) -> dict[str, Any]:
    """A colour per agent, the same in every figure of a report."""
    from matplotlib import colormaps

    cmap = colormaps["tab20" if len(agents) > 10 else "tab10"]
    return {agent: cmap(i % cmap.N) for i, agent in enumerate(agents)}


def seeds_label(runs: Sequence[Run]) -> str:
    """'seed 3', 'seeds 0-4' or 'seeds 0, 2, 5': the seeds a figure shows."""
    seeds = sorted({r.seed for r in runs})
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


def _by_agent(runs: Sequence[Run], colours: dict[str, Any]) -> list[tuple[str, list[Run]]]:
    return [(agent, [r for r in runs if r.agent == agent]) for agent in colours if any(r.agent == agent for r in runs)]


def trajectories_png(circuit: Circuit, runs: Sequence[Run], colours: dict[str, Any]) -> bytes:
    """Every run's path on the circuit map, one colour per agent; a dot where a run started and a
    cross where one ended without completing the lap."""
    from matplotlib.figure import Figure

    from simeval.eval.plots import aspect, draw_circuit, figure_png

    fig = Figure(figsize=(7.5, 7.5 * aspect(circuit)), layout="constrained")
    ax = fig.add_subplot()
    draw_circuit(ax, circuit)
    agents = _by_agent(runs, colours)
    for index, (agent, mine) in enumerate(agents):
        width = 2.8 - 1.8 * index / max(1, len(agents) - 1)  # later agents thinner: overlapping paths all show
        for run in mine:
            txy, _ = read_trajectory(run.folder)
            ax.plot(txy[:, 1], txy[:, 2], color=colours[agent], linewidth=width, alpha=0.85, zorder=6)
            ax.plot(*txy[0, 1:], marker="o", markersize=4, color=colours[agent], markeredgecolor="white", zorder=7)
            if not run.metrics.completed:
                ax.plot(*txy[-1, 1:], marker="X", markersize=9, color=colours[agent], markeredgecolor="black", zorder=7)
        done = sum(r.metrics.completed for r in mine)
        ax.plot([], [], color=colours[agent], label=f"{agent}: {done}/{len(mine)} laps completed")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)  # beside the map: it hides no path
    ax.set_title(f"Trajectories on {circuit.name}, {seeds_label(runs)}\ndot: start, cross: lap not completed", fontsize=10)
    return figure_png(fig)


def deviation_on_lap(run: Run, lap_length_m: float, grid: NDArray[np.float64]) -> NDArray[np.float64]:
    """The run's deviation at ``grid`` (distance from the start/finish line, m), NaN where the run
    did not drive."""
    profile = run_deviation(run)
    if profile is None or profile.along_m.size < 2:
        return np.full(grid.shape, np.nan)
    _, start_s = read_trajectory(run.folder)
    where = np.mod(start_s + profile.along_m, lap_length_m)
    values = np.interp(grid, where, profile.deviation_m, period=lap_length_m)
    driven = np.mod(grid - start_s, lap_length_m) <= profile.along_m[-1]
    return np.where(driven, values, np.nan)


def deviation_png(circuit: Circuit, runs: Sequence[Run], colours: dict[str, Any]) -> bytes:
    """Deviation along the lap per agent: the mean over its seeds, and the band from the smallest to
    the largest deviation any seed had there (one seed: its line)."""
    from matplotlib.figure import Figure

    from simeval.eval.plots import figure_png

    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.add_subplot()
    grid = np.arange(0.0, circuit.length_m, max(DEVIATION_STEP_M, circuit.length_m / PLOT_POINTS))
    many = len({r.seed for r in runs}) > 1
    for agent, mine in _by_agent(runs, colours):
        stack = np.ma.masked_invalid(np.stack([deviation_on_lap(r, circuit.length_m, grid) for r in mine]))
        mean = stack.mean(axis=0).filled(np.nan)
        ax.plot(grid, mean, color=colours[agent], linewidth=1.0, label=agent)
        if len(mine) > 1:
            ax.fill_between(grid, stack.min(axis=0).filled(np.nan), stack.max(axis=0).filled(np.nan),
                            color=colours[agent], alpha=0.25, linewidth=0)
    ax.set_xlim(0, circuit.length_m)
    ax.set_xlabel("distance from the start/finish line (m)")
    ax.set_ylabel("deviation (m)")
    shown = f"mean over {seeds_label(runs)}, band: smallest to largest" if many else seeds_label(runs)
    ax.set_title(f"Deviation from the line along {circuit.name}\n{shown}", fontsize=10)
    ax.legend(loc="upper right", fontsize=7, ncol=2)
    return figure_png(fig)


def latency_figure(runs: Sequence[Run], colours: dict[str, Any]) -> Figure:
    """Latency (fixed, or mean inference time) against deviation MAE, one point per run."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.add_subplot()
    markers = dict(zip(sorted({r.circuit for r in runs}), "os^DvP*X", strict=False))
    shown = [r for r in runs if r.latency_s is not None and r.metrics.deviation_mae_m is not None]
    for agent, mine in _by_agent(shown, colours):
        for run in mine:
            ax.scatter(run.latency_s * 1e3, run.metrics.deviation_mae_m, color=colours[agent],  # type: ignore[operator]
                       marker=markers.get(run.circuit, "o"), edgecolors="black" if run.metrics.completed else "red",
                       linewidths=0.6 if run.metrics.completed else 1.5)
        ax.scatter([], [], color=colours[agent], label=agent)
    if len(markers) > 1:
        for circuit, marker in markers.items():
            ax.scatter([], [], color="grey", marker=marker, label=circuit_label(circuit))
    latency_axis(ax, [r.latency_s * 1e3 for r in shown])  # type: ignore[operator]
    ax.set_xlabel("latency (ms): fixed, or mean inference time")
    ax.set_ylabel("deviation MAE (m)")
    ax.set_title(f"Latency versus deviation, one point per run ({seeds_label(runs)})\nred edge: lap not completed"
                 if runs else "Latency versus deviation", fontsize=10)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)  # beside the points: it hides none
    return fig


def latency_axis(ax: Axes, latencies_ms: Sequence[float]) -> None:
    """A latency axis that always has labelled ticks: logarithmic, labelled at 1, 2 and 5 of each
    decade, where the latencies span more than ``LOG_SPAN``; linear otherwise (and with a zero)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    values = np.asarray(latencies_ms, dtype=np.float64)
    if values.size and values.min() > 0 and values.max() / values.min() > LOG_SPAN:
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())


def latency_png(runs: Sequence[Run], colours: dict[str, Any]) -> bytes:
    from simeval.eval.plots import figure_png

    return figure_png(latency_figure(runs, colours))



def draw_figures(report: Report, jobs: int) -> Report:
    """``report`` with every figure drawn, on up to ``jobs`` processes side by side.

    A sweep ends with its report, its workers gone and their cores idle: the figures (a few tenths
    of a second each) are drawn in forked copies of this process, which have matplotlib and the runs
    loaded already. Only a process with no other thread forks (a thread's lock held at the fork
    would stay held in the copy): with threads (Ray's driver), or one job, they are drawn here."""
    pending = [block for block in report.blocks if isinstance(block, Image) and block.draw is not None]
    pngs = _draw_all([block.draw for block in pending], jobs)  # type: ignore[misc]
    drawn = {id(block): png for block, png in zip(pending, pngs, strict=True)}
    blocks = tuple(dataclasses.replace(b, png=drawn[id(b)], draw=None) if id(b) in drawn else b for b in report.blocks)
    return dataclasses.replace(report, blocks=blocks)


def _draw_all(draws: list[Callable[[], bytes]], jobs: int) -> list[bytes]:
    workers = min(jobs, len(draws))
    if workers <= 1 or threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
        return [draw() for draw in draws]
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_call, draws))
    except BrokenProcessPool:  # a copy died (out of memory?): the report is still drawn, here
        return [draw() for draw in draws]


def _call(draw: Callable[[], bytes]) -> bytes:
    return draw()
