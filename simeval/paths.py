"""Where things live: the shipped data (circuits/, agents/: beside the package in a checkout, inside it
in a wheel), and the default folders of results, the data set and training checkpoints.

In a checkout, paths never depend on the working directory, so ``python -m simeval.run`` works from anywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def data_dir(name: str) -> Path:
    """The shipped data folder ``name`` ('circuits' or 'agents').

    A built wheel carries it as ``simeval/_data/<name>``; a checkout or editable install has it at
    the repository root.
    """
    bundled = PACKAGE_DIR / "_data" / name
    return bundled if bundled.is_dir() else REPO_ROOT / name


def user_circuits_dir() -> Path:
    """Where ``simeval.circuits import`` writes a user's circuits (``$SIMEVAL_CIRCUITS_DIR`` overrides)."""
    env = os.environ.get("SIMEVAL_CIRCUITS_DIR")
    return Path(env).expanduser() if env else Path.home() / ".simeval" / "circuits"


def results_dir() -> Path:
    """Default parent of run folders: ``results/`` in the working tree of a checkout, else ``./results``."""
    env = os.environ.get("SIMEVAL_RESULTS_DIR")
    if env:
        return Path(env).expanduser()
    return _work_tree() / "results"


def dataset_dir() -> Path:
    """Default data set folder: ``data/pilotnet`` in the working tree of a checkout, else ``./data/pilotnet``."""
    return _work_tree() / "data" / "pilotnet"


def training_dir(framework: str) -> Path:
    """Default checkpoint folder of a training run: ``data/training/<framework>``."""
    return _work_tree() / "data" / "training" / framework


def _work_tree() -> Path:
    return REPO_ROOT if (REPO_ROOT / "pyproject.toml").is_file() else Path.cwd()
