"""Command-line options generated from config dataclasses, so flags, defaults and saved configs agree.

A field's ``metadata["help"]`` is its help text; bools become ``--flag/--no-flag``.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any


def opt(help_text: str, **kwargs: Any) -> dict[str, Any]:
    """``field(**opt("what it does", default=...))``: a config field with its CLI help."""
    return {"metadata": {"help": help_text}, **kwargs}


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, exclude: tuple[str, ...] = ()) -> None:
    """One ``--kebab-case`` option per field of dataclass ``cls`` that has help text, but those in ``exclude``."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in exclude or "help" not in f.metadata:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} (default: {f.default})"
        hint = hints[f.name]
        if hint is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text)
            continue
        kind = next((t for t in (int, float, Path, str) if t is hint or t in typing.get_args(hint)), str)
        parser.add_argument(flag, type=kind, default=f.default, help=help_text)


def dataclass_from_args(cls: type, args: argparse.Namespace, exclude: tuple[str, ...] = (), **fixed: Any) -> Any:
    """Build ``cls`` from parsed arguments (but ``exclude``) and ``fixed`` values (its own
    validation runs in ``__post_init__``)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.name not in exclude and hasattr(args, f.name)}
    return cls(**given | fixed)
