"""A sweep's numbers as pandas DataFrames: a row per run, aggregates per agent x circuit x
scenario with their intervals, and each optimized variant against its parent seed by seed.

These frames hold numbers only (NaN where a value is undefined: no lap time for a lap not
completed); how they are shown is ``report_layout``'s. summary.csv is the runs frame written out
with the columns it always had.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

from simeval.eval.failures import FailedRun
from simeval.eval.metrics import LapMetrics
from simeval.eval.stats import Estimate, mean_interval, paired_difference, wilson_interval
from simeval.eval.sweep_runs import Run

RUN_COLUMNS = ("agent", "circuit", "scenario", "seed", "timing", "latency_ms", "latency_scale")
"""The columns of summary.csv before the metrics (every key of metrics.json follows)."""
GROUP = ["circuit", "scenario", "agent"]
"""What the report aggregates over seeds: one agent on one circuit in one scenario."""
PAIR = ["circuit", "scenario", "seed"]
"""What makes two runs of different agents a pair: the same lap conditions."""


@dataclass(frozen=True)
class Metric:
    """One per-run measure that the report aggregates and compares."""

    key: str
    """Its column in the runs frame."""
    label: str
    unit: str
    higher_is_better: bool
    digits: int
    """Decimals shown."""
    relative: bool = True
    """Verdicts also give the difference relative to the parent's mean (not for a rate's points)."""

    @property
    def header(self) -> str:
        return f"{self.label} ({self.unit})"


COMPLETION = Metric("completed_pct", "Laps completed", "pp", True, 0, relative=False)
"""Completed laps in percent (0 or 100 per run): their mean is the completion rate, their paired
difference is in percentage points."""
PROGRESS = Metric("progress_pct", "Lap progress", "% of the lap", True, 1, relative=False)
LAP_TIME = Metric("lap_time_s", "Lap time", "s", False, 2)
SPEED = Metric("speed_mps", "Average speed", "m/s", True, 2)
DEVIATION = Metric("deviation_mae_m", "Position deviation MAE", "m", False, 4)
INFERENCE = Metric("inference_ms", "Inference time", "ms", False, 3)
BRAIN = Metric("brain_hz", "Brain iteration frequency RT", "Hz", True, 1)
DRIVING = (PROGRESS, LAP_TIME, SPEED, DEVIATION)
"""The driving table's means (completion has its Wilson interval apart)."""
COMPUTE = (INFERENCE, BRAIN)
"""The model table's measured means."""
PAIRED = (COMPLETION, PROGRESS, LAP_TIME, SPEED, DEVIATION, INFERENCE)
"""What a variant is compared with its parent on."""


# ------------------------------------------------------------------------------------ runs
def summary_frame(runs: Sequence[Run], failures: Sequence[FailedRun] = ()) -> pd.DataFrame:
    """summary.csv as a frame of its cells: a row per run, its settings, then every metric; a run
    that failed without a folder has its settings, termination and error alone."""
    keys = [f.name for f in fields(LapMetrics)]
    rows = []
    for run in runs:
        settings, metrics = {**run.run, "scenario": run.scenario}, run.metrics.as_dict()
        rows.append([_cell(settings.get(c)) for c in RUN_COLUMNS] + [_cell(metrics[k]) for k in keys])
    for failed in failures:
        metrics = {"termination": failed.termination, "error": failed.error}
        rows.append([_cell(failed.run.get(c)) for c in RUN_COLUMNS] + [_cell(metrics.get(k)) for k in keys])
    return pd.DataFrame(rows, columns=[*RUN_COLUMNS, *keys], dtype=object)


def summary_csv(runs: Sequence[Run], failures: Sequence[FailedRun] = ()) -> str:
    return summary_frame(runs, failures).to_csv(index=False, lineterminator="\n")


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def runs_frame(runs: Sequence[Run]) -> pd.DataFrame:
    """A row per finished run: what identifies it and its measures in the report's units."""
    rows = [{
        "run": r.folder.name, "agent": r.agent, "circuit": r.circuit, "scenario": r.scenario, "seed": r.seed,
        "termination": str(r.metrics.termination),
        COMPLETION.key: 100.0 * bool(r.metrics.completed),
        PROGRESS.key: r.metrics.percentage_completed,
        LAP_TIME.key: r.metrics.lap_time_s,
        SPEED.key: r.metrics.average_speed_mps,
        DEVIATION.key: r.metrics.deviation_mae_m,
        INFERENCE.key: _scaled(r.metrics.inference_time_mean_s, 1e3),
        BRAIN.key: r.metrics.brain_frequency_rt_hz,
    } for r in runs]
    columns = ["run", "agent", "circuit", "scenario", "seed", "termination", *(m.key for m in (COMPLETION, *DRIVING, *COMPUTE))]
    frame = pd.DataFrame(rows, columns=columns)
    numbers = [m.key for m in (COMPLETION, *DRIVING, *COMPUTE)]
    frame[numbers] = frame[numbers].astype(float).replace([np.inf, -np.inf], np.nan)
    return frame


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else float(value) * scale


# ------------------------------------------------------------------------------------ aggregates
def estimate_columns(key: str, estimate: Estimate) -> dict[str, float]:
    """An estimate as four columns of a frame: ``key``, ``key_low``, ``key_high``, ``key_n``."""
    nan = float("nan")
    return {key: estimate.value, f"{key}_low": nan if estimate.low is None else estimate.low,
            f"{key}_high": nan if estimate.high is None else estimate.high, f"{key}_n": estimate.n}


def estimate_of(row: pd.Series, key: str) -> Estimate:
    """The estimate that ``estimate_columns`` put in ``row`` (no interval where its bounds are NaN)."""
    low, high = row[f"{key}_low"], row[f"{key}_high"]
    return Estimate(float(row[key]), None if pd.isna(low) else float(low), None if pd.isna(high) else float(high),
                    int(row[f"{key}_n"]))


def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """A row per agent x circuit x scenario (in the frame's order): runs, completed laps, the
    completion rate with its Wilson interval, each mean with its bootstrap interval, and whether
    the seeds gave different laps at all (``spread``)."""
    rows = []
    for (circuit, scenario, agent), group in frame.groupby(GROUP, sort=False):
        completed = int((group[COMPLETION.key] > 0).sum())
        row: dict[str, Any] = {"circuit": circuit, "scenario": scenario, "agent": agent, "runs": len(group),
                               "completed": completed, "seeds": sorted(int(s) for s in group["seed"])}
        row |= estimate_columns("completion_rate", wilson_interval(completed, len(group)))
        for metric in (*DRIVING, *COMPUTE):
            row |= estimate_columns(metric.key, mean_interval(group[metric.key].dropna().to_numpy()))
        row["spread"] = bool(group[[PROGRESS.key, DEVIATION.key]].nunique(dropna=True).max() > 1)
        rows.append(row)
    return pd.DataFrame(rows)


def comparisons(frame: pd.DataFrame, parents: dict[str, str]) -> pd.DataFrame:
    """Each variant against its parent (``parents``: variant -> parent, both in ``frame``) on every
    ``PAIRED`` metric, per circuit and scenario, over the seeds both ran (and where both have the
    metric: lap times pair only laps that both completed)."""
    rows = []
    for variant, parent in parents.items():
        merged = frame[frame["agent"] == variant].merge(frame[frame["agent"] == parent], on=PAIR, suffixes=("", "_parent"))
        for (circuit, scenario), group in merged.groupby(["circuit", "scenario"], sort=False):
            for metric in PAIRED:
                pairs = group[[metric.key, f"{metric.key}_parent"]].dropna()
                if pairs.empty:
                    continue
                result = paired_difference(pairs[metric.key].to_numpy(), pairs[f"{metric.key}_parent"].to_numpy(),
                                           higher_is_better=metric.higher_is_better, unit=metric.unit,
                                           digits=metric.digits, relative=metric.relative)
                rows.append({"circuit": circuit, "scenario": scenario, "variant": variant, "parent": parent,
                             "metric": metric.key, **estimate_columns("difference", result.difference),
                             "parent_mean": result.parent_mean, "verdict": result.verdict})
    columns = ["circuit", "scenario", "variant", "parent", "metric", "difference", "difference_low",
               "difference_high", "difference_n", "parent_mean", "verdict"]
    return pd.DataFrame(rows, columns=columns)


# ------------------------------------------------------------------------------------ cards
@dataclass(frozen=True)
class ModelFacts:
    """What an agent's model card (or, for a model file without one, its runs) says of it."""

    size_bytes: int | None = None
    mse: dict[str, float] = field(default_factory=dict)
    """Test MSE on normalised labels per circuit (the card's ``test`` section: the offline table's)."""
    parent: str | None = None
    """The shipped model this one was built from (the card's ``training.parent``)."""


def model_facts(agent: str, runs: Iterable[Run]) -> ModelFacts:
    """The card's facts of ``agent``; a model file without a card has its size from its runs; an
    agent without a model (an expert), or an unreadable card, has none."""
    from simeval.agents.card import CARD_FILE, model_dir, read_card
    from simeval.errors import AgentError

    folder = model_dir(agent)
    if not (folder / CARD_FILE).is_file():
        sizes = {r.agent_info.get("artifact_bytes") for r in runs if r.agent == agent} - {None}
        return ModelFacts(size_bytes=int(sizes.pop()) if len(sizes) == 1 else None)
    try:
        card = read_card(folder)
    except AgentError:
        return ModelFacts()
    mse = {c: float(v["mse_normalized"]) for c, v in card.test.items() if isinstance(v, dict) and "mse_normalized" in v}
    return ModelFacts(card.size_bytes, mse, card.training.get("parent"))


def parents_in(facts: dict[str, ModelFacts]) -> dict[str, str]:
    """variant -> parent, for the agents whose parent is among ``facts`` too (in their order)."""
    return {agent: f.parent for agent, f in facts.items() if f.parent is not None and f.parent in facts}
