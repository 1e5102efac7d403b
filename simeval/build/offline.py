"""The offline table: every model's size, test MSE, latency and throughput, measured here.

For each PilotNet agent that runs here: method, model size (the artifact file), MSE on each test
circuit and overall (normalised labels, as the published table, and physical units), batch-1
latency median and p95 over ``calls`` model calls after a warm-up (one thread), and throughput at
batch 64. Agents that cannot run here are listed with the reason. The test sets are the data
set's: the expert's noise-free laps of the test circuits, never trained on.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from simeval.agents.card import model_dir, read_card
from simeval.agents.model import ModelAgent
from simeval.agents.pilotnet import LabelRange, preprocess
from simeval.agents.registry import load_agent
from simeval.agents.variants import BY_NAME, VARIANTS
from simeval.build.dataset.store import load_test_set
from simeval.build.evaluate import offline_mse
from simeval.errors import SimevalError

WARMUP_CALLS = 50
BATCH = 64
PUBLISHED = {
    "torch-fp32": ("Baseline", 6.12, 0.0810, 1.60),
    "torch-dynamic": ("Dynamic range Q", 1.95, 0.0807, 2.20),
    "torch-static": ("Static Q", 1.61, 0.0801, 2.09),
    "torch-qat": ("QAT", 1.61, 0.0696, 2.07),
}
"""Published PyTorch rows (GTX 1080): method, size MB, MSE (normalised), latency ms."""


@dataclass
class OfflineRow:
    """One agent's line of the table; ``reason`` is set when it cannot run here."""

    agent: str
    method: str = ""
    framework: str = ""
    precision: str = ""
    size_mb: float | None = None
    mse: dict[str, float] = field(default_factory=dict)
    """'<circuit>' and 'all' normalised MSE, plus 'all_v_mps2', 'all_w_radps2' in physical units."""
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    throughput_b64_fps: float | None = None
    batched: bool = True
    """False when the backend runs a batch frame by frame (its throughput is then 64 single calls)."""
    threads: int = 1
    reason: str = ""


def model_agents() -> list[str]:
    """Every model variant of ``simeval.agents.variants`` (the experts have no model to measure)."""
    return [v.name for v in VARIANTS]


def _latencies(agent, frame: np.ndarray, calls: int) -> np.ndarray:
    for _ in range(WARMUP_CALLS):
        agent.infer(frame)
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        agent.infer(frame)
        times[i] = time.perf_counter() - start
    return times


def _throughput(agent, frames: np.ndarray, repeats: int = 5) -> float:
    batch = frames[:BATCH]
    agent.infer_batch(batch)
    start = time.perf_counter()
    for _ in range(repeats):
        agent.infer_batch(batch)
    return repeats * len(batch) / (time.perf_counter() - start)


def evaluate(name: str, data: Path, calls: int) -> OfflineRow:
    """Measure one agent; an agent that cannot load here gives a row with the reason."""
    try:
        agent = load_agent(name)
    except SimevalError as exc:
        return OfflineRow(agent=name, reason=str(exc))
    if not isinstance(agent, ModelAgent):
        return OfflineRow(agent=name, reason="not a model: nothing to measure offline")
    variant = BY_NAME.get(name)
    labels = read_card(model_dir(name)).labels
    row = OfflineRow(
        agent=name, framework=agent.info.framework, precision=agent.info.precision,
        method=variant.summary if variant else "", size_mb=agent.info.artifact_bytes / 1e6,
    )
    try:
        row.mse = _mse(agent, data, labels)
        frames = preprocess(load_test_set(data, "montreal", ("frames",))["frames"][:BATCH])
        times = _latencies(agent, frames[:1], calls)
        row.latency_p50_ms = float(np.median(times) * 1e3)
        row.latency_p95_ms = float(np.percentile(times, 95) * 1e3)
        row.throughput_b64_fps = _throughput(agent, frames)
        row.batched = agent.batched
    finally:
        agent.close()
    return row


def _mse(agent: ModelAgent, data: Path, labels: LabelRange) -> dict[str, float]:
    """Normalised MSE per test circuit and over all, and the overall MSE in physical units."""
    report = offline_mse(agent.infer_batch, data, labels)
    mse = {circuit: r["mse_normalized"] for circuit, r in report.items() if circuit != "all"}
    overall = report["all"]
    return mse | {"all": overall["mse_normalized"], "all_v_mps2": overall["mse_v_mps2"], "all_w_radps2": overall["mse_w_radps2"]}


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def measured_circuits(rows: list[OfflineRow]) -> list[str]:
    """The test circuits the rows were measured on (the data set's test sets), sorted."""
    return sorted({k for r in rows for k in r.mse if not k.startswith("all")})


def markdown(rows: list[OfflineRow], calls: int) -> str:
    """The published table's columns, then this tool's extra columns; unavailable agents below."""
    circuits = measured_circuits(rows)
    head = ("| Method | Model size (MB) | " + "".join(f"MSE {c} | " for c in circuits) + "MSE all | MSE v (m²/s²) | "
            "MSE w (rad²/s²) | Latency p50 (ms) | Latency p95 (ms) | Batch-64 throughput (frames/s) |")
    lines = [
        f"Offline evaluation ({datetime.now():%Y-%m-%d %H:%M}); MSE on normalised labels unless stated; "
        f"latency = one model call at batch 1, {calls} calls after {WARMUP_CALLS} warm-up, one thread.",
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for r in rows:
        if r.reason:
            continue
        lines.append(
            f"| {r.agent} ({r.precision}) | {_fmt(r.size_mb, 2)} | "
            + " | ".join(_fmt(r.mse.get(c), 5) for c in (*circuits, "all"))
            + f" | {_fmt(r.mse.get('all_v_mps2'), 3)} | {_fmt(r.mse.get('all_w_radps2'), 4)} | "
            f"{_fmt(r.latency_p50_ms, 3)} | {_fmt(r.latency_p95_ms, 3)} | {_fmt(r.throughput_b64_fps, 0)}{'' if r.batched else '*'} |"
        )
    if any(not r.batched for r in rows if not r.reason):
        lines += ["", "\\* frame by frame: this backend's result would change with the batch (dynamic ranges), so it never batches."]
    missing = [r for r in rows if r.reason]
    if missing:
        lines += ["", "Not run here:", ""] + [f"- {r.agent}: {r.reason}" for r in missing]
    lines += ["", "Published (PyTorch, GTX 1080, batch 1): "
              + "; ".join(f"{m} {s} MB, MSE {e}, {t} ms" for m, s, e, t in PUBLISHED.values())]
    return "\n".join(lines) + "\n"


def table_csv(rows: list[OfflineRow]) -> str:
    out = io.StringIO()
    fields = ["agent", "method", "framework", "precision", "size_mb", *(f"mse_{c}" for c in (*measured_circuits(rows), "all")),
              "mse_all_v_mps2", "mse_all_w_radps2", "latency_p50_ms", "latency_p95_ms", "throughput_b64_fps", "batched", "threads", "reason"]
    writer = csv.DictWriter(out, fieldnames=fields)
    writer.writeheader()
    for r in rows:
        flat: dict[str, Any] = {k: v for k, v in asdict(r).items() if k != "mse"}
        flat.update({f"mse_{k}": v for k, v in r.mse.items()})
        writer.writerow(flat)
    return out.getvalue()


def figure_png(rows: list[OfflineRow]) -> bytes:
    """Latency (p50 bar, p95 whisker), size and MSE per agent, side by side."""
    from matplotlib.figure import Figure

    from simeval.eval.plots import figure_png as png

    ok = [r for r in rows if not r.reason]
    names = [r.agent for r in ok]
    fig = Figure(figsize=(13, 4.2), layout="constrained")
    axes = fig.subplots(1, 3)
    y = np.arange(len(ok))
    p50 = np.array([r.latency_p50_ms for r in ok])
    p95 = np.array([r.latency_p95_ms for r in ok])
    axes[0].barh(y, p50, xerr=[np.zeros_like(p50), p95 - p50], color="#3b75af", capsize=3)
    axes[0].set_xlabel("batch-1 latency (ms): median, whisker to p95")
    axes[1].barh(y, [r.size_mb for r in ok], color="#519e3e")
    axes[1].set_xlabel("model size (MB)")
    axes[2].barh(y, [r.mse["all"] for r in ok], color="#ef8636")
    axes[2].set_xlabel("test MSE (normalised labels)")
    for ax in axes:
        ax.set_yticks(y, names if ax is axes[0] else [""] * len(names))
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
    return png(fig)


