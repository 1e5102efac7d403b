"""The report's tables (pandas), its figures' axes and its two renderings, on small known inputs;
the whole report of a real sweep is in test_report_html.py and test_sweep.py."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from simeval.eval.report import render_markdown
from simeval.eval.report_document import Cell, Heading, Link, Paragraph, Report, Table
from simeval.eval.report_html import render_html
from simeval.eval.stats import NO_DIFFERENCE
from simeval.eval.tables import aggregate, comparisons, estimate_of, model_facts, parents_in

COLUMNS = ["run", "agent", "circuit", "scenario", "seed", "termination", "completed_pct", "progress_pct", "lap_time_s",
           "speed_mps", "deviation_mae_m", "inference_ms", "brain_hz"]


def frame(rows: list[tuple]) -> pd.DataFrame:
    """A runs frame as ``runs_frame`` makes it: (agent, seed, completed, lap time, deviation) per run."""
    return pd.DataFrame([
        (f"simple__{agent}__{seed}", agent, "simple", "nominal", seed, "lap_completed" if done else "off_track",
         100.0 * done, 100.0 if done else 40.0, lap if done else math.nan, 12.0, deviation, 2.0, 300.0)
        for agent, seed, done, lap, deviation in rows], columns=COLUMNS)


def test_aggregate_gives_a_row_per_agent_with_wilson_and_bootstrap_intervals() -> None:
    runs = frame([("parent", 0, True, 30.1, 0.050), ("parent", 1, True, 30.3, 0.062), ("parent", 2, False, 0, 0.090),
                  ("child", 0, True, 30.0, 0.050), ("child", 1, True, 30.0, 0.050), ("child", 2, True, 30.0, 0.050)])
    stats = aggregate(runs).set_index("agent")
    assert list(stats.index) == ["parent", "child"]
    parent, child = stats.loc["parent"], stats.loc["child"]
    assert (parent["runs"], parent["completed"]) == (3, 2)
    rate = estimate_of(parent, "completion_rate")
    assert rate.value == pytest.approx(2 / 3) and round(rate.low, 3) == 0.208 and round(rate.high, 3) == 0.939
    lap = estimate_of(parent, "lap_time_s")
    assert lap.n == 2 and lap.value == pytest.approx(30.2), "a lap time only where the lap was completed"
    assert (estimate_of(child, "deviation_mae_m").low, estimate_of(child, "deviation_mae_m").high) == (0.05, 0.05)
    assert bool(parent["spread"]) and not bool(child["spread"]), "identical laps have no spread"


def test_comparisons_pair_the_same_seeds_and_give_a_verdict() -> None:
    parent = [("torch-fp32", s, True, 30.0 + 0.1 * s, 0.050 + 0.004 * s) for s in range(5)]
    variant = [("torch-static", s, True, 30.0 + 0.1 * s, 0.047 + 0.004 * s) for s in range(4)]  # seed 4 missing
    found = comparisons(frame(parent + variant), {"torch-static": "torch-fp32"}).set_index("metric")
    assert set(found["difference_n"]) == {4}, "only the seeds both ran"
    deviation = found.loc["deviation_mae_m"]
    assert deviation["difference"] == pytest.approx(-0.003) and deviation["verdict"] == "better by 0.0030 m (5.4%)"
    assert found.loc["lap_time_s", "verdict"] == NO_DIFFERENCE
    assert comparisons(frame(parent), {"torch-static": "torch-fp32"}).empty


def test_parents_come_from_the_model_cards() -> None:
    facts = {agent: model_facts(agent, []) for agent in ("torch-fp32", "torch-static", "expert", "tflite-int8")}
    assert parents_in(facts) == {"torch-static": "torch-fp32"}, "tflite-int8's parent tf-fp32 is not in the sweep"
    assert facts["torch-static"].size_bytes and 0 < facts["torch-static"].mse["montmelo"] < 0.01
    assert facts["expert"].size_bytes is None and facts["expert"].parent is None


@pytest.mark.parametrize("latencies", [[1.3, 2.2, 6.6], [0.05, 0.3, 40.0], [0.0, 3.0], [2.0], [150.0, 151.0]])
def test_the_latency_axis_always_has_tick_labels(latencies: list[float]) -> None:
    """A symlog axis over 1.3-6.6 ms showed no tick at all; every span now gets labelled ticks."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from simeval.eval.report_plots import latency_axis

    fig = Figure()
    ax = fig.add_subplot()
    ax.scatter(latencies, [0.05] * len(latencies))
    latency_axis(ax, latencies)
    FigureCanvasAgg(fig).draw()
    low, high = ax.get_xlim()
    shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and low <= t.get_position()[0] <= high]
    assert len(shown) >= 2, (latencies, shown)


def test_both_renderings_escape_what_a_cell_holds() -> None:
    error = "raised ValueError: <script>alert(1)</script> | bad"
    report = Report("Sweep report: x", (
        Heading("Failed runs"), Paragraph("use `--seeds 5`", warning=True),
        Table("failed", ("Run", "Error"), ((Cell("a", links=(Link("a", "runs/a/"),)), Cell(error)),)),
    ))
    page = render_html(report)
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert '<a href="runs/a/">a</a>' in page and "<code>--seeds 5</code>" in page and 'class="warning"' in page
    markdown = render_markdown(report)
    assert "| [a](runs/a/) | raised ValueError: \\<script>alert(1)\\</script> \\| bad |" in markdown
    assert "> **Warning:** use `--seeds 5`" in markdown


def test_figures_drawn_side_by_side_equal_those_drawn_one_by_one(tmp_path) -> None:
    """The report's figures come out the same from forked processes as from the sweep's own."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "sweep"
    subprocess.run([sys.executable, "-m", "simeval.sweep", "--agents", "expert,pure-pursuit", "--circuits", "simple",
                    "--seeds", "2", "--max-time-s", "3", "--jobs", "1", "--no-plot", "--no-progress", "--out", str(out)],
                   cwd=root, check=True, capture_output=True)
    script = (  # a process of its own: figures fork only from a single-threaded process
        "import sys, threading; from pathlib import Path; from simeval.eval.report import write_report\n"
        "out = Path(sys.argv[1]); assert threading.active_count() == 1\n"
        "pngs = {}\n"
        "for jobs in (1, 2):\n"
        "    write_report(out, jobs=jobs); pngs[jobs] = {p.name: p.read_bytes() for p in sorted(out.glob('*.png'))}\n"
        "assert pngs[1] == pngs[2] and len(pngs[1]) == 3, sorted(pngs[1])\n"
    )
    subprocess.run([sys.executable, "-c", script, str(out)], cwd=root, check=True)
