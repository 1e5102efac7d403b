"""The offline table: every model's size, test MSE, latency and throughput, measured here.

For each model (a shipped variant, or a user's file with its contract): method, model size and
sha256, MSE on each test circuit and overall (normalised labels, as the published table; physical
units; the model's own outputs), batch-1 latency median and p95 over ``calls`` model calls after a
warm-up, and throughput at batch 64. Models that cannot run here are listed with the reason. The
test laps are the expert's noise-free laps of the test circuits (the data set's test sets, or
driven afresh), rendered for the camera image each model's contract asks for.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from simeval.agents.card import model_dir, read_card
from simeval.agents.contract import OutputSpec
from simeval.agents.model import ModelAgent
from simeval.agents.pilotnet import LabelRange
from simeval.agents.registry import load_agent, shipped
from simeval.agents.variants import BY_NAME, VARIANTS
from simeval.build.dataset.store import load_manifest, load_test_set
from simeval.build.evaluate import mse_report
from simeval.errors import SimevalError, UnknownNameError
from simeval.eval.expert_laps import EvaluationLap, expert_lap
from simeval.track.catalogue import evaluation_circuits

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
    """One model's line of the table; ``reason`` is set when it cannot run here."""

    agent: str
    method: str = ""
    framework: str = ""
    precision: str = ""
    format: str = ""
    """The artifact's format (``simeval.agents.formats``)."""
    size_mb: float | None = None
    sha256: str | None = None
    """Of the model file (a folder model has none)."""
    mse: dict[str, float] = field(default_factory=dict)
    """'<circuit>' and 'all': MSE on normalised labels (simeval's training label range, the
    published table's unit); 'all_v_mps2', 'all_w_radps2' in physical units; 'all_contract' on the
    model's own outputs, before its contract's scale and offset."""
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    throughput_b64_fps: float | None = None
    batched: bool = True
    """False when the model runs a batch frame by frame (its throughput is then 64 single calls)."""
    threads: int = 1
    reason: str = ""


def model_agents() -> list[str]:
    """Every model variant of ``simeval.agents.variants`` (the experts have no model to measure)."""
    return [v.name for v in VARIANTS]


def laps(data: Path | None, circuits: Sequence[str] | None = None) -> list[EvaluationLap]:
    """The test laps of ``circuits`` (default: every test circuit): the data set's test sets where
    ``data`` holds one (their frames are stored), else driven now; the two are the same laps. An
    unknown circuit is an ``UnknownNameError`` before anything is driven."""
    manifest = load_manifest(data) if data is not None and (Path(data) / "manifest.json").is_file() else None
    available = sorted(manifest.test_sets) if manifest else evaluation_circuits()
    for name in circuits or ():
        if name not in available:
            raise UnknownNameError("test circuit", name, available)
    chosen = [name for name in available if circuits is None or name in circuits]
    if manifest is None:
        return [expert_lap(name) for name in chosen]
    found = []
    for name in chosen:
        stored = load_test_set(data, name, ("frames", "labels", "pose"))
        found.append(EvaluationLap(name, stored["pose"].astype(np.float64), stored["labels"].astype(np.float64), stored["frames"]))
    return found


def label_range(name: str) -> LabelRange:
    """The range the labels are normalised with: the model's card's, else simeval's training labels'
    (torch-fp32's card), so every row of the table uses the same unit."""
    return read_card(model_dir(name if shipped(name) else "torch-fp32")).labels


def _latencies(agent: ModelAgent, single: np.ndarray, calls: int) -> np.ndarray:
    for _ in range(WARMUP_CALLS):
        agent.infer(single)
    times = np.empty(calls)
    for i in range(calls):
        start = time.perf_counter()
        agent.infer(single)
        times[i] = time.perf_counter() - start
    return times


def _throughput(agent: ModelAgent, inputs: np.ndarray, repeats: int = 5) -> float:
    batch = inputs[:BATCH]
    agent.infer_batch(batch)
    start = time.perf_counter()
    for _ in range(repeats):
        agent.infer_batch(batch)
    return repeats * len(batch) / (time.perf_counter() - start)


def evaluate(name: str, test: list[EvaluationLap], calls: int, *, contract: Path | None = None,
             trust_model: bool = False) -> OfflineRow:
    """Measure one model on the test laps; one that cannot load here gives a row with the reason."""
    try:
        agent = load_agent(name, contract=contract, trust_model=trust_model)
    except SimevalError as exc:
        return OfflineRow(agent=name, reason=str(exc))
    if not isinstance(agent, ModelAgent):
        agent.close()
        return OfflineRow(agent=name, reason="not a model: nothing to measure offline")
    variant = BY_NAME.get(name)
    row = OfflineRow(
        agent=name, framework=agent.info.framework, precision=agent.info.precision, format=agent.contract.artifact.format,
        method=variant.summary if variant else agent.contract.notes, size_mb=(agent.info.artifact_bytes or 0) / 1e6,
        sha256=agent.info.artifact_sha256, threads=agent.contract.runtime.threads,
    )
    try:
        row.mse = _mse(agent, test, label_range(name))
        inputs = agent.pipeline.sequence(test[0].first(BATCH).images(agent.camera, chunk=BATCH))
        times = _latencies(agent, inputs[:1], calls)
        row.latency_p50_ms = float(np.median(times) * 1e3)
        row.latency_p95_ms = float(np.percentile(times, 95) * 1e3)
        row.throughput_b64_fps = _throughput(agent, inputs)
        row.batched = agent.batched
    finally:
        agent.close()
    return row


MEASURES = ("", "_v_mps2", "_w_radps2", "_contract")
"""Per circuit and over all: MSE on normalised labels, of v in m²/s², of w in rad²/s², and on the
model's own outputs (the labels put through its contract's scale and offset backwards)."""


def _mse(agent: ModelAgent, test: list[EvaluationLap], labels: LabelRange) -> dict[str, float]:
    """The ``MEASURES`` on each test lap (keyed ``<circuit><measure>``) and on all of them (``all<measure>``)."""
    out = agent.contract.output
    mse: dict[str, float] = {}
    seen: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for lap in test:
        predicted, raw = agent.predict(lap.images(agent.camera))
        seen.append((predicted, raw, lap.labels))
        mse |= _measures(lap.circuit, predicted, raw, lap.labels, labels, out)
    predicted, raw, expected = (np.concatenate(parts) for parts in zip(*seen, strict=True))
    return mse | _measures("all", predicted, raw, expected, labels, out)


def _measures(key: str, predicted: np.ndarray, raw: np.ndarray, expected: np.ndarray, labels: LabelRange,
              out: OutputSpec) -> dict[str, float]:
    report = mse_report(predicted, expected, labels)
    targets = (expected - [out.v.offset, out.w.offset]) / [out.v.scale, out.w.scale]
    values = (report["mse_normalized"], report["mse_v_mps2"], report["mse_w_radps2"], float(np.mean((raw - targets) ** 2)))
    return {key + measure: value for measure, value in zip(MEASURES, values, strict=True)}


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def measured_circuits(rows: list[OfflineRow]) -> list[str]:
    """The test circuits the rows were measured on (the data set's test sets), sorted."""
    return sorted({k for r in rows for k in r.mse if k != "all" and not k.endswith(MEASURES[1:])})


def markdown(rows: list[OfflineRow], calls: int) -> str:
    """The published table's columns, then this tool's extra columns; unavailable agents below."""
    circuits = measured_circuits(rows)
    head = ("| Method | Model size (MB) | " + "".join(f"MSE {c} | " for c in circuits) + "MSE all | MSE v (m²/s²) | "
            "MSE w (rad²/s²) | MSE model outputs | Latency p50 (ms) | Latency p95 (ms) | Batch-64 throughput (frames/s) |")
    lines = [
        f"Offline evaluation ({datetime.now():%Y-%m-%d %H:%M}); MSE on normalised labels unless stated (model "
        "outputs: on the model's own outputs, the labels put through its contract's output scale and offset backwards); "
        f"latency = one model call at batch 1, {calls} calls after {WARMUP_CALLS} warm-up, one thread.",
        "",
        head,
        "|" + "---|" * (head.count("|") - 1),
    ]
    for r in rows:
        if r.reason:
            continue
        lines.append(
            f"| {r.agent} ({r.precision if r.precision != 'unknown' else r.format}) | {_fmt(r.size_mb, 2)} | "
            + " | ".join(_fmt(r.mse.get(c), 5) for c in (*circuits, "all"))
            + f" | {_fmt(r.mse.get('all_v_mps2'), 3)} | {_fmt(r.mse.get('all_w_radps2'), 4)} | {_fmt(r.mse.get('all_contract'), 5)} | "
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
    fields = ["agent", "method", "framework", "precision", "format", "size_mb", "sha256",
              *(f"mse_{c}{m}" for c in (*measured_circuits(rows), "all") for m in MEASURES), "latency_p50_ms", "latency_p95_ms", "throughput_b64_fps", "batched", "threads", "reason"]
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


