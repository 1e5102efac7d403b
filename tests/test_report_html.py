"""report.html of a real small sweep: self-contained, the same tables as report.md, one row per
run linking its files, a paired verdict, and, in a real headless browser (Debian's chromium), a
page that sorts when a header is clicked and logs no error. The browser's screenshot is kept in
``test-artifacts/report.png``."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from simeval.eval.report import write_report
from simeval.paths import REPO_ROOT
from simeval.sweep import main

AGENTS = ("torch-fp32", "torch-static")
SEEDS = 2
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL = "apt-get install chromium chromium-driver"
BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")
SCREENSHOT = REPO_ROOT / "test-artifacts" / "report.png"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A variant and its parent, two seeds each (seed 0 from the spawn, seed 1 from a seeded point
    of the lap: the seeds differ), two seconds a lap; one run gets the video a ``--video`` run
    records, then the report is rebuilt from the folders."""
    pytest.importorskip("torch", reason="the shipped torch models need torch: pip install -e '.[test]'")
    out = tmp_path_factory.mktemp("report") / "sweep"
    assert main(["--agents", ",".join(AGENTS), "--circuits", "simple", "--seeds", str(SEEDS),
                 "--max-time-s", "2", "--jobs", "2", "--no-progress", "--out", str(out)]) == 0
    (out / "runs" / "simple__torch-static__1" / "lap.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42")
    write_report(out, agents=list(AGENTS), circuits=["simple"], scenarios=["nominal"])
    return out


class Tables(HTMLParser):
    """Every table of a page as rows of cell texts, and every src/href."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.urls: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value or "" for name, value in attrs if name in ("src", "href")]
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def markdown_tables(text: str) -> list[list[list[str]]]:
    """report.md's tables as rows of cell texts (links as their labels, the separator row dropped)."""
    tables: list[list[list[str]]] = []
    previous = ""
    for line in text.splitlines():
        if line.startswith("|") and not line.startswith("|---"):
            if not previous.startswith("|"):
                tables.append([])
            cells = re.split(r"(?<!\\)\|", line)[1:-1]
            tables[-1].append([re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", c).replace("\\|", "|").strip() for c in cells])
        previous = line
    return tables


def test_report_html_is_self_contained_and_holds_the_tables_of_report_md(sweep: Path) -> None:
    page = (sweep / "report.html").read_text()
    parsed = Tables()
    parsed.feed(page)
    assert parsed.tables == markdown_tables((sweep / "report.md").read_text()), "the same tables, cell for cell"
    assert "http://" not in page and "https://" not in page and "<link" not in page, "nothing fetched from anywhere"
    images = [u for u in parsed.urls if u.startswith("data:image/png;base64,")]
    assert len(images) == 3, "trajectories, deviation and latency figures embedded"
    links = [u for u in parsed.urls if not u.startswith(("data:", "#"))]
    assert links and all((sweep / link).exists() for link in links), "relative links to the run folders and files"
    runs = next(t for t in parsed.tables if t[0][0] == "Run")
    assert len(runs) - 1 == len(AGENTS) * SEEDS
    assert "runs/simple__torch-static__1/lap.mp4" in links and sum(link.endswith("lap.mp4") for link in links) == 1
    assert sum(link.endswith("trajectory.png") for link in links) == len(AGENTS) * SEEDS

    report = (sweep / "report.md").read_text()
    assert "| Method | Parent | Model size (MB) | Test MSE (normalised labels) | Inference time (ms) |" in report
    assert "| torch-static | torch-fp32 | 1.64 |" in report
    assert "Lap time (s)" in report and "Position deviation MAE (m)" in report
    assert f"Only {SEEDS} seeds: too few to tell" in report
    paired = next(t for t in parsed.tables if t[0][0] == "Variant")
    assert {row[2] for row in paired[1:]} >= {"Laps completed (pp)", "Position deviation MAE (m)", "Inference time (ms)"}
    assert all(re.fullmatch(r"no detectable difference|(better|worse) by .+", row[5]) for row in paired[1:])


@pytest.fixture
def browser(tmp_path: Path):
    """Debian's chromium, headless and offline, driven through its chromedriver."""
    if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
        pytest.skip(f"no headless browser here: {INSTALL} (as root, or with sudo)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is missing: pip install -e '.[test]'")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_html_sorts_and_logs_no_error_in_a_real_browser(sweep: Path, browser) -> None:
    from selenium.webdriver.common.by import By

    browser.get((sweep / "report.html").as_uri())
    rows = browser.find_elements(By.CSS_SELECTOR, "table#runs tbody tr")
    assert len(rows) == len(AGENTS) * SEEDS, "one row per run"

    def seeds() -> list[str]:
        return [row.find_elements(By.TAG_NAME, "td")[4].text for row in browser.find_elements(By.CSS_SELECTOR, "table#runs tbody tr")]

    before = seeds()
    header = next(th for th in browser.find_elements(By.CSS_SELECTOR, "table#runs th") if th.text.startswith("Seed"))
    header.click()
    assert seeds() != before and seeds() == sorted(before) and header.get_attribute("aria-sort") == "ascending"
    header.click()
    assert seeds() == sorted(before, reverse=True) and header.get_attribute("aria-sort") == "descending"
    assert browser.execute_script("return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)")

    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(int(height) + 40, 16000))
    browser.execute_script("window.scrollTo(0, 0)")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))
    print(f"screenshot: {SCREENSHOT}")

