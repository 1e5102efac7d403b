"""A sweep's summary.csv, report.md and plots, rebuilt from its run folders alone.

Everything here reads ``DIR/runs/*/`` (config.json, metrics.json, trajectory.csv, deviation.csv)
and the agents' cards, so a report can be regenerated at any time, also after a sweep was killed
and resumed.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from simeval.atomic import write_bytes_atomic, write_text_atomic
from simeval.env import Termination
from simeval.eval.failures import FailedRun, load_failures
from simeval.eval.metrics import DeviationProfile, LapMetrics
from simeval.eval.results import RUNS_DIR, read_deviation_csv

RUN_COLUMNS = ("agent", "circuit", "scenario", "seed", "timing", "latency_ms", "latency_scale")
"""The columns of summary.csv before the metrics (every key of metrics.json follows)."""


@dataclass(frozen=True)
class Run:
    """One finished run folder: its settings and its metrics."""

    folder: Path
    run: dict[str, Any]
    """config.json's ``run`` section: the ``RunConfig`` it ran with."""
    metrics: LapMetrics
    agent_info: dict[str, Any] = field(default_factory=dict)
    """config.json's ``agent`` section: the agent's settings, a model's file, size and sha256."""

    @property
    def agent(self) -> str:
        return str(self.run["agent"])

    @property
    def circuit(self) -> str:
        return str(self.run["circuit"])

    @property
    def scenario(self) -> str:
        return str(self.run.get("scenario") or "nominal")

    @property
    def latency_s(self) -> float | None:
        """The latency the run drove with: the fixed one, else the measured inference time (scaled)."""
        if self.run.get("timing") == "latency" and self.run.get("latency_ms") is not None:
            return float(self.run["latency_ms"]) / 1000.0
        mean = self.metrics.inference_time_mean_s
        if mean is None:
            return None
        return float(mean) * (float(self.run.get("latency_scale") or 1.0) if self.run.get("timing") == "latency" else 1.0)


def load_runs(out: Path) -> list[Run]:
    """Every complete run folder under ``out/runs`` (temporary ``.partial`` folders are not runs)."""
    runs = []
    for folder in sorted((Path(out) / RUNS_DIR).glob("*")):
        if folder.name.startswith(".") or not (folder / "metrics.json").is_file():
            continue
        config = json.loads((folder / "config.json").read_text())
        metrics = LapMetrics.from_dict(json.loads((folder / "metrics.json").read_text()))
        runs.append(Run(folder, config["run"], metrics, config.get("agent", {})))
    return runs


def summary_csv(runs: list[Run], failures: Sequence[FailedRun] = ()) -> str:
    """A row per run: its settings, then every metric; a run that failed without a folder has its
    settings, termination and error alone."""
    keys = [f.name for f in fields(LapMetrics)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*RUN_COLUMNS, *keys])
    for run in runs:
        settings = {**run.run, "scenario": run.scenario}
        metrics = run.metrics.as_dict()
        writer.writerow([_cell(settings.get(c)) for c in RUN_COLUMNS] + [_cell(metrics[k]) for k in keys])
    for failed in failures:
        metrics = {"termination": failed.termination, "error": failed.error}
        writer.writerow([_cell(failed.run.get(c)) for c in RUN_COLUMNS] + [_cell(metrics.get(k)) for k in keys])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


# ------------------------------------------------------------------------------------ tables
def _values(runs: list[Run], metric: Callable[[LapMetrics], float | None], scale: float = 1.0) -> list[float]:
    """One metric of every run, scaled, where it is defined and finite."""
    values = (metric(r.metrics) for r in runs)
    return [float(v) * scale for v in values if v is not None and math.isfinite(float(v))]


def mean_spread(values: list[float], digits: int = 3) -> str:
    """``mean ± std`` over seeds (std with n-1; a single seed shows its value alone); '-' if none."""
    if not values:
        return "-"
    mean = float(np.mean(values))
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {float(np.std(values, ddof=1)):.{digits}f}"


def card_facts(agent: str, circuit: str, runs: list[Run]) -> tuple[str, str]:
    """(model size in MB, test MSE on ``circuit``) from the agent's card; a model file without one
    has its size from its runs (its MSE is the offline table's); '-' for agents without a model."""
    from simeval.agents.card import model_dir, read_card
    from simeval.errors import AgentError

    folder = model_dir(agent)
    if not (folder / "card.json").is_file():
        sizes = {r.agent_info.get("artifact_bytes") for r in runs} - {None}
        return (f"{sizes.pop() / 1e6:.2f} MB" if len(sizes) == 1 else "-"), "-"
    try:
        card = read_card(folder)
    except AgentError:
        return "-", "-"
    mse = card.test.get(circuit, {}).get("mse_normalized")
    return f"{card.size_bytes / 1e6:.2f} MB", ("-" if mse is None else f"{mse:.6f}")


def model_table(circuit: str, agents: list[str], runs: list[Run]) -> list[str]:
    """The study's first table: Method, Model size, MSE, Inference time."""
    lines = ["| Method | Model size | MSE | Inference time (ms) |", "|---|---|---|---|"]
    for agent in agents:
        mine = [r for r in runs if r.agent == agent and r.circuit == circuit]
        size, mse = card_facts(agent, circuit, mine)
        lines.append(f"| {agent} | {size} | {mse} | {mean_spread(_values(mine, lambda m: m.inference_time_mean_s, 1e3))} |")
    return lines


def driving_table(circuit: str, agents: list[str], runs: list[Run]) -> list[str]:
    """The study's second table, mean ± std over seeds."""
    lines = [
        "| Method | Completed | Average speed (m/s) | Position deviation MAE (m) | Brain iteration frequency RT (Hz) | Mean inference time (ms) |",
        "|---|---|---|---|---|---|",
    ]
    for agent in agents:
        mine = [r for r in runs if r.agent == agent and r.circuit == circuit]
        if not mine:
            continue
        done = sum(r.metrics.completed for r in mine)
        pct = mean_spread(_values(mine, lambda m: m.percentage_completed), 1)
        lines.append(
            f"| {agent} | {done}/{len(mine)} ({pct} %) | {mean_spread(_values(mine, lambda m: m.average_speed_mps), 2)} "
            f"| {mean_spread(_values(mine, lambda m: m.deviation_mae_m), 3)} "
            f"| {mean_spread(_values(mine, lambda m: m.brain_frequency_rt_hz), 1)} "
            f"| {mean_spread(_values(mine, lambda m: m.inference_time_mean_s, 1e3), 3)} |"
        )
    return lines


def failures_table(runs: list[Run], failures: Sequence[FailedRun]) -> list[str]:
    """Every run that failed, with why: agents that raised or returned NaN (their partial lap is
    in the run folder), and runs whose worker died or that crashed (no folder)."""
    rows = [(r.folder.name, str(r.metrics.termination), r.metrics.error or "") for r in runs
            if r.metrics.termination in (Termination.AGENT_ERROR, Termination.INVALID_ACTION)]
    rows += [(f.name, f.termination, f.error) for f in failures]
    if not rows:
        return []
    lines = ["## Failed runs", "", "| Run | Termination | Error |", "|---|---|---|"]
    lines += [f"| {name} | {termination} | {_md(error)} |" for name, termination, error in sorted(rows)]
    return [*lines, ""]


def _md(text: str) -> str:
    """``text`` as one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def completion_table(agents: list[str], scenarios: list[str], runs: list[Run]) -> list[str]:
    """Laps completed per agent per scenario, over every circuit and seed of the sweep."""
    lines = ["| Method | " + " | ".join(scenarios) + " |", "|---|" + "---|" * len(scenarios)]
    for agent in agents:
        cells = []
        for scenario in scenarios:
            mine = [r for r in runs if r.agent == agent and r.scenario == scenario]
            cells.append(f"{sum(r.metrics.completed for r in mine)}/{len(mine)}" if mine else "-")
        lines.append(f"| {agent} | " + " | ".join(cells) + " |")
    return lines


# ------------------------------------------------------------------------------------ plots
def read_trajectory(folder: Path) -> tuple[NDArray[np.float64], float]:
    """((t, x, y) per row of trajectory.csv, the arc length at the first row)."""
    data = np.genfromtxt(folder / "trajectory.csv", delimiter=",", names=True)
    data = np.atleast_1d(data)
    txy = np.stack([data["t_s"], data["x_m"], data["y_m"]], axis=1)
    return txy, float(data["s_m"][0])


def run_deviation(run: Run) -> DeviationProfile | None:
    """The deviation along the lap that the run measured (deviation.csv); None for a run folder
    written before simeval kept it."""
    path = run.folder / "deviation.csv"
    return read_deviation_csv(path) if path.is_file() else None


def trajectories_png(circuit: Any, runs: list[Run]) -> bytes:
    """Every agent's path (first seed) overlaid on the circuit map."""
    from matplotlib.figure import Figure

    from simeval.eval.plots import draw_circuit, figure_png

    width, height = circuit.bounding_box()
    fig = Figure(figsize=(9, 9 * float(np.clip(height / max(width, 1e-9), 0.6, 1.6))), layout="constrained")
    ax = fig.add_subplot()
    draw_circuit(ax, circuit)
    colours = _colours(len(runs))
    for colour, run in zip(colours, runs, strict=True):
        txy, _ = read_trajectory(run.folder)
        ax.plot(txy[:, 1], txy[:, 2], color=colour, linewidth=1.4, zorder=6, label=f"{run.agent} ({run.metrics.termination})")
    ax.legend(loc="best", fontsize=7)
    ax.set_title(f"Trajectories on {circuit.name}")
    return figure_png(fig)


def deviation_png(circuit: Any, runs: list[Run]) -> bytes:
    """Distance between the centre line and the driven path along the lap, per agent (first seed)."""
    from matplotlib.figure import Figure

    from simeval.eval.plots import figure_png

    fig = Figure(figsize=(10, 4), layout="constrained")
    ax = fig.add_subplot()
    for colour, run in zip(_colours(len(runs)), runs, strict=True):
        profile = run_deviation(run)
        if profile is not None:
            ax.plot(profile.along_m, profile.deviation_m, color=colour, linewidth=1.0, label=run.agent)
    ax.set_xlabel("distance along the lap (m)")
    ax.set_ylabel("deviation (m)")
    ax.set_title(f"Deviation from the line along {circuit.name}")
    ax.legend(loc="upper right", fontsize=7, ncol=2)
    return figure_png(fig)


def latency_png(runs: list[Run]) -> bytes:
    """Latency (fixed, or mean inference time) against deviation MAE, one point per run."""
    from matplotlib.figure import Figure

    from simeval.eval.plots import figure_png

    fig = Figure(figsize=(7, 5), layout="constrained")
    ax = fig.add_subplot()
    agents = sorted({r.agent for r in runs})
    markers = dict(zip(sorted({r.circuit for r in runs}), "os^DvP*X", strict=False))
    for colour, agent in zip(_colours(len(agents)), agents, strict=True):
        for run in (r for r in runs if r.agent == agent):
            if run.latency_s is None or run.metrics.deviation_mae_m is None:
                continue
            ax.scatter(run.latency_s * 1e3, run.metrics.deviation_mae_m, color=colour, marker=markers.get(run.circuit, "o"),
                       edgecolors="black" if run.metrics.completed else "red", linewidths=0.6)
        ax.scatter([], [], color=colour, label=agent)
    for circuit, marker in markers.items():
        ax.scatter([], [], color="grey", marker=marker, label=circuit)
    ax.set_xscale("symlog", linthresh=0.1)
    ax.set_xlabel("latency (ms): fixed, or mean inference time")
    ax.set_ylabel("deviation MAE (m)")
    ax.set_title("Latency versus deviation (red edge: lap not completed)")
    ax.legend(fontsize=7, ncol=2)
    return figure_png(fig)


def _colours(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab20" if n > 10 else "tab10"]
    return [cmap(i % cmap.N) for i in range(n)]


# ------------------------------------------------------------------------------------ report
def write_report(out: Path, *, agents: list[str] | None = None, circuits: list[str] | None = None,
                 scenarios: list[str] | None = None, unavailable: dict[str, str] | None = None,
                 plots: bool = True) -> Path:
    """Write summary.csv, report.md and its PNGs in ``out`` from the run folders found there.

    ``plots=False`` (an interrupted sweep, which must stop at once) writes the tables alone and
    says that the plots come with the next complete sweep."""
    from simeval.track.loader import load_circuit

    out = Path(out)
    runs, failures = load_runs(out), load_failures(out)
    write_text_atomic(out / "summary.csv", summary_csv(runs, failures))
    agents = [a for a in (agents or sorted({r.agent for r in runs})) if any(r.agent == a for r in runs)]
    circuits = [c for c in (circuits or sorted({r.circuit for r in runs})) if any(r.circuit == c for r in runs)]
    scenarios = [s for s in (scenarios or sorted({r.scenario for r in runs})) if any(r.scenario == s for r in runs)]
    lines = [f"# Sweep report: {out}", "", f"{len(runs) + len(failures)} runs; timing: {', '.join(sorted({str(r.run.get('timing')) for r in runs})) or '-'}.", ""]
    if unavailable:
        lines += ["Agents that cannot load here (not run):", ""]
        lines += [f"- `{name}`: {error}" for name, error in sorted(unavailable.items())] + [""]
    if not plots:
        lines += ["The sweep was interrupted: these tables cover the finished runs, and the plots are drawn when "
                  "the same command, rerun, completes it.", ""]
    lines += failures_table(runs, failures)
    if scenarios != ["nominal"]:
        lines += ["## Completion per scenario", "", "Laps completed over every circuit and seed.", "",
                  *completion_table(agents, scenarios, runs), ""]
    for name in circuits:
        circuit = load_circuit(name, next((r.run.get("circuit_scale") for r in runs if r.circuit == name), None))
        for scenario in scenarios:
            mine = [r for r in runs if r.circuit == name and r.scenario == scenario]
            if mine:
                lines += _circuit_section(out, circuit, scenario, agents, mine, plots)
    if runs and plots:
        write_bytes_atomic(out / "latency_vs_deviation.png", latency_png(runs))
        lines += ["## Latency versus deviation", "", "![latency versus deviation](latency_vs_deviation.png)", ""]
    return write_text_atomic(out / "report.md", "\n".join(lines))


def _circuit_section(out: Path, circuit: Any, scenario: str, agents: list[str], runs: list[Run], plots: bool) -> list[str]:
    """The two tables of one circuit (and scenario) and, with ``plots``, its plots, written beside report.md."""
    name = circuit.name
    tag = name if scenario == "nominal" else f"{name}__{scenario}"
    title = name if scenario == "nominal" else f"{name}, scenario {scenario}"
    seeds = len({r.run["seed"] for r in runs})
    lines = [f"## {title}", "", f"Mean ± std over {seeds} seed(s).", "", *model_table(name, agents, runs), "",
             *driving_table(name, agents, runs), ""]
    if not plots:
        return lines
    first = [min((r for r in runs if r.agent == a), key=lambda r: int(r.run["seed"])) for a in agents if any(r.agent == a for r in runs)]
    write_bytes_atomic(out / f"trajectories_{tag}.png", trajectories_png(circuit, first))
    write_bytes_atomic(out / f"deviation_{tag}.png", deviation_png(circuit, first))
    return [*lines, f"![trajectories on {title}](trajectories_{tag}.png)", "", f"![deviation along {title}](deviation_{tag}.png)", ""]
