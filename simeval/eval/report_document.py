"""The report as a document: headings, paragraphs, tables and figures, before any file format.

report.md and report.html render the same ``Report`` (``report.py``, ``report_html.py``), so the
two always hold the same tables and numbers. Links are relative to the report's folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Link:
    label: str
    href: str
    """Relative to the report's folder (``runs/<run>/``)."""


@dataclass(frozen=True)
class Cell:
    """One table cell: its text, what a sortable table sorts it by, and links shown instead of the
    text where there are any."""

    text: str
    sort: float | str | None = None
    """The value that sorts the column (a number sorts numerically); None: the text."""
    links: tuple[Link, ...] = ()
    tone: str | None = None
    """'good', 'bad' or 'neutral' for a verdict (a colour in HTML; Markdown shows the words alone)."""


@dataclass(frozen=True)
class Table:
    key: str
    """A name unique in the report (the HTML table's id)."""
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """Text, with ``code`` in backquotes; a warning is set apart."""

    text: str
    warning: bool = False


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Image:
    """A figure: report.md links the PNG written beside it, report.html embeds its bytes."""

    file: str
    alt: str
    png: bytes = b""
    draw: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)
    """How to draw it while not drawn yet (``report_plots.draw_figures`` draws a report's figures
    side by side): a picklable callable, a ``functools.partial`` of a module-level function."""


Block = Heading | Paragraph | Bullets | Table | Image


@dataclass(frozen=True)
class Report:
    title: str
    blocks: tuple[Block, ...]

    def images(self) -> list[Image]:
        return [b for b in self.blocks if isinstance(b, Image)]

    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]
