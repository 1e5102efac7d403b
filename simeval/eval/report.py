"""A sweep's summary.csv, report.md, report.html and figures, rebuilt from its run folders alone.

Everything here reads ``DIR/runs/*/`` and the agents' cards, so a report can be regenerated at
any time, also after a sweep was killed and resumed. The report's content is one ``Report``
document (``report_layout``); this module writes its figures and renders it as Markdown, and
``report_html`` renders the same document as one self-contained HTML page.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from simeval.atomic import write_bytes_atomic, write_text_atomic
from simeval.eval.failures import load_failures
from simeval.eval.report_document import Bullets, Cell, Heading, Image, Paragraph, Report, Table
from simeval.eval.sweep_runs import load_runs
from simeval.eval.tables import summary_csv

HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"
REPORT_MODULES = (
    "simeval.eval.report_layout", "simeval.eval.report_html", "simeval.eval.report_plots", "scipy.stats",
    "matplotlib.figure", "matplotlib.backends.backend_agg", "matplotlib.ticker", "simeval.track.loader",
)
"""What writing a report imports (about a second): ``warm_up`` imports it ahead."""


def warm_up() -> None:
    """Import what ``write_report`` needs, so that a sweep can do it while its last runs drive
    (on cores its finished workers left idle) instead of after them."""
    for name in REPORT_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            return  # write_report meets it again and says what is missing


def write_report(out: Path, *, agents: list[str] | None = None, circuits: list[str] | None = None,
                 scenarios: list[str] | None = None, unavailable: dict[str, str] | None = None,
                 plots: bool = True, jobs: int = 1) -> Path:
    """Write summary.csv, report.md, report.html and the figures in ``out`` from the run folders
    found there; returns report.md's path.

    ``plots=False`` (an interrupted sweep, which must stop at once) writes the tables alone and
    says that the plots come with the next complete sweep. ``jobs``: processes that draw the figures."""
    from simeval.eval.report_html import render_html
    from simeval.eval.report_layout import Scope, build_report
    from simeval.eval.report_plots import draw_figures
    from simeval.track.loader import load_circuit

    out = Path(out)
    runs, failures = load_runs(out), load_failures(out)
    write_text_atomic(out / "summary.csv", summary_csv(runs, failures))
    scope = Scope(
        agents=[a for a in (agents or sorted({r.agent for r in runs})) if any(r.agent == a for r in runs)],
        circuits=[c for c in (circuits or sorted({r.circuit for r in runs})) if any(r.circuit == c for r in runs)],
        scenarios=[s for s in (scenarios or sorted({r.scenario for r in runs})) if any(r.scenario == s for r in runs)],
        unavailable=dict(unavailable or {}), plots=plots,
    )

    def circuit_of(name: str):
        return load_circuit(name, next((r.run.get("circuit_scale") for r in runs if r.circuit == name), None))

    report = draw_figures(build_report(out, runs, failures, scope, circuit_of), jobs)
    for image in report.images():
        write_bytes_atomic(out / image.file, image.png)
    write_text_atomic(out / HTML_FILE, render_html(report))
    return write_text_atomic(out / MARKDOWN_FILE, render_markdown(report))


def render_markdown(report: Report) -> str:
    """The report as Markdown: figures link the PNGs written beside it."""
    lines = [f"# {report.title}", ""]
    for block in report.blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [("> **Warning:** " if block.warning else "") + block.text, ""]
        elif isinstance(block, Bullets):
            lines += [*(f"- {item}" for item in block.items), ""]
        elif isinstance(block, Table):
            lines += [*markdown_table(block), ""]
        elif isinstance(block, Image):
            lines += [f"![{block.alt}]({block.file})", ""]
    return "\n".join(lines)


def markdown_table(table: Table) -> list[str]:
    return ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns),
            *("| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in table.rows)]


def _markdown_cell(cell: Cell) -> str:
    if cell.links:
        return " · ".join(f"[{_escape(link.label)}]({link.href})" for link in cell.links)
    return _escape(cell.text)


def _escape(text: str) -> str:
    """``text`` as one Markdown table cell (an error message's ``<...>`` stays text, not HTML)."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "\\<")
