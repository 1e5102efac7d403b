"""What a sweep report says, in which order: the ``Report`` document built from the run folders'
numbers (``tables``) and figures (``report_plots``), for report.md and report.html to render.

Each number appears once: model facts and compute times in a circuit's model table, driving
results in its driving table, variant-versus-parent differences in its paired table, and each
run's own values in the runs table at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from simeval.env import Termination
from simeval.eval.failures import FailedRun
from simeval.eval.report_document import Block, Bullets, Cell, Heading, Image, Link, Paragraph, Report, Table
from simeval.eval.results import RUNS_DIR, TRAJECTORY_PNG, VIDEO_FILE, safe_name
from simeval.eval.stats import BOOTSTRAP_RESAMPLES, MIN_SEEDS, NO_DIFFERENCE, TOO_FEW, Estimate, decimals
from simeval.eval.sweep_runs import Run
from simeval.eval.tables import (
    COMPUTE,
    DEVIATION,
    DRIVING,
    INFERENCE,
    LAP_TIME,
    PAIRED,
    PROGRESS,
    SPEED,
    ModelFacts,
    aggregate,
    comparisons,
    estimate_of,
    model_facts,
    parents_in,
    runs_frame,
)
from simeval.track.loader import circuit_label

CircuitLoader = Callable[[str], Any]
"""Loads a circuit by the name its runs carry (only called when figures are drawn)."""


@dataclass(frozen=True)
class Scope:
    """What the sweep covered, in its order, and how it ended."""

    agents: list[str]
    circuits: list[str]
    scenarios: list[str]
    unavailable: dict[str, str]
    """Agents that could not load here: name -> why."""
    plots: bool
    """False for an interrupted sweep: tables alone."""


STATISTICS = (
    "A cell `m [a, b]` is the mean over seeds and its 95% interval (bootstrap, BCa, "
    f"{BOOTSTRAP_RESAMPLES:,} resamples, seeded: the same runs give the same report); `(n=k)` where "
    "fewer seeds than the agent ran have the value (a lap time needs a completed lap). Completion "
    "rates have Wilson score 95% intervals. Each optimized variant is compared with its parent (from "
    "its model card) seed by seed, on the same circuit, scenario and start: the mean of the "
    f"differences variant - parent with its 95% interval, and \"{NO_DIFFERENCE}\" when that interval "
    "holds 0."
)


def build_report(out: Path, runs: list[Run], failures: Sequence[FailedRun], scope: Scope,
                 load_circuit: CircuitLoader) -> Report:
    """The whole report of the runs found in ``out``."""
    from simeval.eval.report_plots import agent_colours, latency_png

    frame = runs_frame(runs)
    stats = aggregate(frame) if runs else pd.DataFrame()
    facts = {agent: model_facts(agent, runs) for agent in scope.agents}
    paired = comparisons(frame, parents_in(facts))
    colours = agent_colours(scope.agents)
    timing = ", ".join(sorted({str(r.run.get("timing")) for r in runs})) or "-"
    start = ", ".join(sorted({str(r.run.get("start") or "spawn") for r in runs})) or "-"
    counts = ", ".join(count(len(names), noun) for names, noun in
                       ((scope.agents, "agent"), (scope.circuits, "circuit"), (scope.scenarios, "scenario")))
    blocks: list[Block] = [Paragraph(f"{count(len(runs) + len(failures), 'run')}: {counts}; timing: {timing}; "
                                     f"start: {start}.")]
    if scope.unavailable:
        blocks += [Paragraph("Agents that cannot load here (not run):"),
                   Bullets(tuple(f"`{name}`: {error}" for name, error in sorted(scope.unavailable.items())))]
    if not scope.plots:
        blocks.append(Paragraph("The sweep was interrupted: these tables cover the finished runs, and the plots are "
                                "drawn when the same command, rerun, completes it.", warning=True))
    blocks += [Paragraph(STATISTICS), *seed_warnings(stats)]
    blocks += failures_section(runs, failures)
    if len(scope.circuits) > 1 and scope.scenarios != ["nominal"]:
        blocks += [Heading("Completion per scenario"), Paragraph("Laps completed over every circuit and seed."),
                   completion_table(scope, runs)]
    for circuit in scope.circuits:
        for scenario in scope.scenarios:
            mine = [r for r in runs if r.circuit == circuit and r.scenario == scenario]
            if mine:
                section = Section(circuit, scenario, mine, stats, paired, facts, colours)
                blocks += section.blocks(load_circuit(circuit) if scope.plots else None)
    if runs and scope.plots:
        blocks += [Heading("Latency versus deviation"),
                   Image("latency_vs_deviation.png", "latency versus deviation", draw=partial(latency_png, runs, colours))]
    blocks += [Heading("Runs"), Paragraph("One row per run; each links its folder, its trajectory plot and its video "
                                          "where there is one."), runs_table(runs, failures)]
    return Report(f"Sweep report: {out}", tuple(blocks))


def seed_warnings(stats: pd.DataFrame) -> list[Paragraph]:
    """Say when the seeds are too few to tell, or all drove the same lap."""
    if stats.empty:
        return []
    fewest = int(stats["runs"].min())
    found = []
    if fewest == 1:
        found.append(Paragraph("One seed: no interval and no comparison can be computed. Run with `--seeds 5` or "
                               "more to tell how sure these numbers are.", warning=True))
    elif fewest < MIN_SEEDS:
        found.append(Paragraph(f"Only {fewest} seeds: too few to tell any but large differences apart (with fewer "
                               f"than {MIN_SEEDS} seeds the intervals are coarse and tend to be too narrow). Run "
                               f"with `--seeds {MIN_SEEDS}` or more.", warning=True))
    several = stats[stats["runs"] > 1]
    if not several.empty and not several["spread"].any():
        found.append(Paragraph("Every seed of an agent drove the same lap here, so the intervals have zero width: "
                               "they say nothing of how a lap varies from one start to another (`--start seeded`, the "
                               "default, starts every seed but 0 at a different point of the lap).", warning=True))
    return found


# ------------------------------------------------------------------------------------ cells
def count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def number(value: float | None, digits: int) -> Cell:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Cell("-")
    return Cell(f"{value:.{digits}f}", float(value))


def estimate_cell(estimate: Estimate, digits: int, runs: int, signed: bool = False) -> Cell:
    """``m [a, b]``, ``(n=k)`` when fewer than ``runs`` values made it; '-' without a value."""
    if estimate.n == 0 or math.isnan(estimate.value):
        return Cell("-")
    digits = decimals(estimate, digits) if signed else digits
    spec = f"+.{digits}f" if signed else f".{digits}f"
    text = format(estimate.value, spec)
    if estimate.has_interval:
        text += f" [{format(estimate.low, spec)}, {format(estimate.high, spec)}]"
    if estimate.n < runs:
        text += f" (n={estimate.n})"
    return Cell(text, estimate.value)


def completion_cell(row: pd.Series) -> Cell:
    rate = estimate_of(row, "completion_rate")
    text = f"{int(row['completed'])}/{int(row['runs'])}: {100 * rate.value:.0f} %"
    if rate.has_interval:
        text += f" [{100 * rate.low:.0f}, {100 * rate.high:.0f}]"  # type: ignore[operator]
    return Cell(text, rate.value)


def verdict_cell(verdict: str) -> Cell:
    tone = "neutral" if verdict in (NO_DIFFERENCE, TOO_FEW) else "good" if verdict.startswith("better") else "bad"
    return Cell(verdict, tone=tone)


# ------------------------------------------------------------------------------------ sections
@dataclass(frozen=True)
class Section:
    """One circuit in one scenario: its model, driving and paired tables and its figures."""

    circuit: str
    scenario: str
    runs: list[Run]
    stats: pd.DataFrame
    paired: pd.DataFrame
    facts: dict[str, ModelFacts]
    colours: dict[str, Any]

    @property
    def name(self) -> str:
        """The circuit as run folders name it (a circuit file by its file name)."""
        return circuit_label(self.circuit)

    @property
    def tag(self) -> str:
        name = safe_name(self.name)
        return name if self.scenario == "nominal" else f"{name}__{self.scenario}"

    def rows(self) -> list[pd.Series]:
        """This section's aggregate rows, in the sweep's agent order."""
        mine = self.stats[(self.stats["circuit"] == self.circuit) & (self.stats["scenario"] == self.scenario)]
        order = {agent: i for i, agent in enumerate(self.colours)}
        return sorted((row for _, row in mine.iterrows()), key=lambda row: order.get(row["agent"], len(order)))

    def blocks(self, circuit: Any | None) -> list[Block]:
        title = self.name if self.scenario == "nominal" else f"{self.name}, scenario {self.scenario}"
        seeds = sorted({r.seed for r in self.runs})
        counts = sorted({int(row["runs"]) for row in self.rows()})
        per_agent = " or ".join(map(str, counts))
        blocks: list[Block] = [
            Heading(title),
            Paragraph(f"Seeds {seeds[0]}-{seeds[-1]} ({per_agent} per agent)." if len(seeds) > 1 else f"Seed {seeds[0]}."),
            Heading("Models", 3),
            Paragraph("Size and test MSE from each model's card (the offline table: MSE on labels normalised to "
                      "the training range, on this circuit's test lap); compute times measured in these runs."),
            self.models_table(), Heading("Driving", 3), self.driving_table(),
        ]
        paired = self.paired_table()
        if paired.rows:
            blocks += [Heading("Variants against their parents", 3),
                       Paragraph("Per seed: variant - parent on the same lap; the mean difference and its 95% "
                                 "interval."), paired]
        if circuit is not None:
            from simeval.eval.report_plots import deviation_png, trajectories_png

            blocks += [Image(f"trajectories_{self.tag}.png", f"trajectories on {title}",
                             draw=partial(trajectories_png, circuit, self.runs, self.colours)),
                       Image(f"deviation_{self.tag}.png", f"deviation along {title}",
                             draw=partial(deviation_png, circuit, self.runs, self.colours))]
        return blocks

    def models_table(self) -> Table:
        columns = ("Method", "Parent", "Model size (MB)", "Test MSE (normalised labels)",
                   *(f"{m.header}" for m in COMPUTE))
        rows = []
        for row in self.rows():
            facts = self.facts.get(row["agent"], ModelFacts())
            size = None if facts.size_bytes is None else facts.size_bytes / 1e6
            rows.append((Cell(row["agent"]), Cell(facts.parent or "-"), number(size, 2),
                         number(facts.mse.get(self.circuit), 6),
                         *(estimate_cell(estimate_of(row, m.key), m.digits, int(row["runs"])) for m in COMPUTE)))
        return Table(f"models-{self.tag}", columns, tuple(rows))

    def driving_table(self) -> Table:
        rows = self.rows()
        shown = [m for m in DRIVING if m is not PROGRESS or any(r["completed"] < r["runs"] for r in rows)]
        columns = ("Method", "Laps completed, rate (%) [95% CI]", *(m.header for m in shown))
        cells = tuple((Cell(row["agent"]), completion_cell(row),
                       *(estimate_cell(estimate_of(row, m.key), m.digits, int(row["runs"])) for m in shown))
                      for row in rows)
        return Table(f"driving-{self.tag}", columns, cells)

    def paired_table(self) -> Table:
        mine = self.paired[(self.paired["circuit"] == self.circuit) & (self.paired["scenario"] == self.scenario)]
        every_lap_done = all(r.metrics.completed for r in self.runs)
        metrics = {m.key: m for m in PAIRED}
        rows = []
        for _, row in mine.iterrows():
            metric = metrics[row["metric"]]
            if metric is PROGRESS and every_lap_done:
                continue  # 100% for every run: completion says it
            rows.append((Cell(row["variant"]), Cell(row["parent"]), Cell(metric.header),
                         number(int(row["difference_n"]), 0),
                         estimate_cell(estimate_of(row, "difference"), metric.digits, 0, signed=True),
                         verdict_cell(row["verdict"])))
        columns = ("Variant", "Parent", "Measure", "Seeds paired", "Variant - parent, mean [95% CI]", "Verdict")
        return Table(f"paired-{self.tag}", columns, tuple(rows))


# ------------------------------------------------------------------------------------ sweep-wide tables
def failures_section(runs: Sequence[Run], failures: Sequence[FailedRun]) -> list[Block]:
    """Every run that failed, with why: agents that raised or returned NaN (their partial lap is
    in the run folder), and runs whose worker died or that crashed (no folder)."""
    rows = [(r.folder.name, str(r.metrics.termination), r.metrics.error or "") for r in runs
            if r.metrics.termination in (Termination.AGENT_ERROR, Termination.INVALID_ACTION)]
    rows += [(f.name, f.termination, f.error) for f in failures]
    if not rows:
        return []
    cells = tuple((Cell(name), Cell(termination), Cell(" ".join(error.split()))) for name, termination, error in sorted(rows))
    return [Heading("Failed runs"), Table("failed", ("Run", "Termination", "Error"), cells)]


def completion_table(scope: Scope, runs: Sequence[Run]) -> Table:
    """Laps completed per agent per scenario, over every circuit and seed of the sweep."""
    rows = []
    for agent in scope.agents:
        cells = [Cell(agent)]
        for scenario in scope.scenarios:
            mine = [r for r in runs if r.agent == agent and r.scenario == scenario]
            done = sum(r.metrics.completed for r in mine)
            cells.append(Cell(f"{done}/{len(mine)}", done / len(mine)) if mine else Cell("-"))
        rows.append(tuple(cells))
    return Table("completion", ("Method", *scope.scenarios), tuple(rows))


RUN_MEASURES = (LAP_TIME, SPEED, DEVIATION, INFERENCE)


def runs_table(runs: Sequence[Run], failures: Sequence[FailedRun]) -> Table:
    """A row per run (failed ones without a folder too), linking its folder and files."""
    frame = runs_frame(runs).set_index("run")
    rows = []
    for run in runs:
        values = frame.loc[run.folder.name]
        href = f"{RUNS_DIR}/{run.folder.name}/"
        files = tuple(Link(label, href + name) for label, name in (("trajectory", TRAJECTORY_PNG), ("video", VIDEO_FILE))
                      if run.file(name) is not None)
        rows.append((Cell(run.folder.name, links=(Link(run.folder.name, href),)), Cell(run.agent), Cell(circuit_label(run.circuit)),
                     Cell(run.scenario), Cell(str(run.seed), run.seed), Cell(str(run.metrics.termination)),
                     *(number(values[m.key], m.digits) for m in RUN_MEASURES), Cell("-" if not files else "", links=files)))
    for failed in failures:
        rows.append((Cell(failed.name), Cell(str(failed.run.get("agent"))), Cell(circuit_label(str(failed.run.get("circuit")))),
                     Cell(str(failed.run.get("scenario") or "nominal")), Cell(str(failed.run.get("seed")), failed.run.get("seed")),
                     Cell(failed.termination), *(Cell("-") for _ in RUN_MEASURES), Cell("-")))
    columns = ("Run", "Agent", "Circuit", "Scenario", "Seed", "Termination", *(m.header for m in RUN_MEASURES), "Files")
    return Table("runs", columns, tuple(rows))


