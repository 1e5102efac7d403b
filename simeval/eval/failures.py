"""Runs that failed without a run folder: their worker died, or the run itself crashed.

A run that ends in an agent failure has its folder like any other (termination 'agent_error');
one whose process died, or that raised outside the agent, has nothing to show but why. A sweep
records it as ``DIR/failed/<run>.json`` so that summary.csv and report.md list it as a row, and a
rerun retries it (its run folder is still missing) and drops the record once the run is done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simeval.atomic import write_text_atomic
from simeval.eval.results import RUNS_DIR
from simeval.eval.run import RunConfig

FAILED_DIR = "failed"


@dataclass(frozen=True)
class FailedRun:
    """A run with no folder: its settings and why it failed."""

    name: str
    """The run folder's name it would have had."""
    run: dict[str, Any]
    """Its ``RunConfig``, as config.json would hold it."""
    termination: str
    """'worker_died' (the process ended under it) or 'error' (the run raised outside the agent)."""
    error: str


def record_failure(out: Path, config: RunConfig, result: dict[str, Any]) -> Path:
    """Write the record of a failed run (replacing an earlier one of the same run)."""
    record = {"run": config.as_dict(), "termination": result.get("termination") or "error", "error": result.get("error") or ""}
    return write_text_atomic(Path(out) / FAILED_DIR / f"{Path(config.out).name}.json", json.dumps(record, indent=2) + "\n")


def remove_resolved(out: Path) -> None:
    """Drop the records of runs that have their folder now (a later sweep did them)."""
    for path in _records(out):
        if (Path(out) / RUNS_DIR / path.stem).exists():
            path.unlink(missing_ok=True)


def load_failures(out: Path) -> list[FailedRun]:
    """Every failed run recorded under ``out``, in name order."""
    failures = []
    for path in _records(out):
        record = json.loads(path.read_text())
        failures.append(FailedRun(path.stem, record["run"], record["termination"], record["error"]))
    return failures


def _records(out: Path) -> list[Path]:
    folder = Path(out) / FAILED_DIR
    return sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")) if folder.is_dir() else []
