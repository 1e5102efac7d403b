"""report.html: the sweep report as one self-contained page to open in a browser.

The same ``Report`` document as report.md, rendered as HTML: figures embedded as base64 PNG,
tables sortable by clicking (or pressing Enter on) a header, with a few lines of inline
JavaScript; no external URL, so the page opens offline and can be mailed or archived as one file.
Links to run folders, plots and videos are relative: they work beside the sweep's ``runs/``.
"""

from __future__ import annotations

import base64
import html
import re

from simeval.eval.report_document import Bullets, Cell, Heading, Image, Paragraph, Report, Table

STYLE = """
:root { color-scheme: light; --line: #d0d7de; --head: #f3f5f7; --muted: #57606a; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328; }
main { max-width: 1480px; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
h1 { font-size: 1.6rem; margin: 0 0 .8rem; word-break: break-all; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 .6rem; padding-bottom: .3rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.05rem; margin: 1.4rem 0 .4rem; }
p { margin: .4rem 0 .8rem; max-width: 60rem; }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; background: #eff1f3; padding: 0 .25em; border-radius: 4px; }
nav { font-size: .9rem; margin: .6rem 0 1rem; }
nav a { margin-right: 1rem; }
.warning { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: .5rem .8rem; }
.scroll { overflow-x: auto; margin: .4rem 0 1rem; }
table { border-collapse: collapse; font-size: 13.5px; }
th, td { border: 1px solid var(--line); padding: .3rem .55rem; text-align: left; vertical-align: top; }
th { background: var(--head); cursor: pointer; user-select: none; min-width: 4.5em; vertical-align: bottom; }
th:hover, th:focus { background: #e6ebf0; }
th::after { content: " \\2195"; color: #8c959f; font-size: .8em; }
th[aria-sort="ascending"]::after { content: " \\25B2"; color: #1f2328; }
th[aria-sort="descending"]::after { content: " \\25BC"; color: #1f2328; }
td { white-space: nowrap; }
#failed td { white-space: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #f8f9fa; }
td.good { color: #1a7f37; font-weight: 600; }
td.bad { color: #cf222e; font-weight: 600; }
td.neutral { color: var(--muted); }
figure { margin: 1rem 0; }
figure img { max-width: min(100%, 1000px); height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: .85rem; }
footer { color: var(--muted); font-size: .85rem; margin-top: 3rem; }
"""

SCRIPT = """
(function () {
  "use strict";
  function value(cell) {
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (raw === "" || raw === "-") { return null; }
    var number = Number(raw);
    return isFinite(number) && cell.hasAttribute("data-sort") ? number : raw.toLowerCase();
  }
  function compare(a, b) {
    if (a === b) { return 0; }
    if (typeof a === typeof b) { return a < b ? -1 : 1; }
    return typeof a === "number" ? -1 : 1;
  }
  function sortBy(table, header, column) {
    var ascending = header.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.map.call(body.rows, function (row, index) {
      return { row: row, index: index, value: value(row.cells[column]) };
    });
    rows.sort(function (a, b) {
      if (a.value === null || b.value === null) {  // empty cells last, whichever the direction
        return a.value === b.value ? a.index - b.index : (a.value === null ? 1 : -1);
      }
      return (ascending ? 1 : -1) * compare(a.value, b.value) || a.index - b.index;
    });
    rows.forEach(function (item) { body.appendChild(item.row); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      header.tabIndex = 0;
      header.title = "sort by this column";
      header.addEventListener("click", function () { sortBy(table, header, column); });
      header.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(table, header, column); }
      });
    });
  });
})();
"""


def render_html(report: Report) -> str:
    """The whole page."""
    from simeval import __version__

    sections = [b for b in report.blocks if isinstance(b, Heading) and b.level == 2]
    nav = " ".join(f'<a href="#{_anchor(h.text)}">{_text(h.text)}</a>' for h in sections)
    body = "\n".join(_block(block) for block in report.blocks)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_text(report.title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{_text(report.title)}</h1>\n<nav>{nav}</nav>\n{body}\n"
        f"<footer>simeval {html.escape(__version__)}; click a column header to sort.</footer>\n"
        f"</main>\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )


def _block(block: object) -> str:
    if isinstance(block, Heading):
        anchor = f' id="{_anchor(block.text)}"' if block.level == 2 else ""
        return f"<h{block.level}{anchor}>{_text(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f'<p class="warning">{_text(block.text)}</p>' if block.warning else f"<p>{_text(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{_text(item)}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(block.alt)}">'
                f"<figcaption>{_text(block.alt)} ({html.escape(block.file)})</figcaption></figure>")
    raise TypeError(f"not a report block: {block!r}")


def _table(table: Table) -> str:
    head = "".join(f'<th scope="col">{_text(column)}</th>' for column in table.columns)
    rows = "\n".join("<tr>" + "".join(_cell(cell) for cell in row) + "</tr>" for row in table.rows)
    return (f'<div class="scroll"><table class="sortable" id="{html.escape(table.key)}">'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody></table></div>")


def _cell(cell: Cell) -> str:
    classes = [c for c in (cell.tone, "num" if isinstance(cell.sort, (int, float)) else None) if c]
    attributes = f' class="{" ".join(classes)}"' if classes else ""
    if cell.sort is not None:
        attributes += f' data-sort="{html.escape(str(cell.sort))}"'
    if cell.links:
        content = " · ".join(f'<a href="{html.escape(link.href)}">{html.escape(link.label)}</a>' for link in cell.links)
    else:
        content = html.escape(cell.text)
    return f"<td{attributes}>{content}</td>"


def _text(text: str) -> str:
    """Escaped text with ``code`` in backquotes set as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _anchor(text: str) -> str:
    return "s-" + re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
