"""Command-line options generated from config dataclasses, so flags, defaults and saved configs agree.

A field's ``metadata["help"]`` is its help text; bools become ``--flag/--no-flag``.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def opt(help_text: str, *, choices: Sequence[str] | None = None, **kwargs: Any) -> dict[str, Any]:
    """``field(**opt("what it does", default=...))``: a config field with its CLI help; ``choices``
    are shown in the help (the config validates the value itself, with a "did you mean")."""
    metadata: dict[str, Any] = {"help": help_text}
    if choices is not None:
        metadata["choices"] = tuple(choices)
    return {"metadata": metadata, **kwargs}


def command_parser(prog: str, doc: str) -> argparse.ArgumentParser:
    """A command's parser: its docstring's first paragraph as the description (without the call
    it shows, and without reStructuredText's double backticks), its 'Exit codes:' paragraph, if
    any, after the options."""
    paragraphs = [" ".join(p.split()).replace("``", "`") for p in doc.strip().split("\n\n")]
    description = paragraphs[0].split("`: ", 1)[-1]
    exits = next((p for p in paragraphs if p.startswith("Exit codes:")), None)
    return argparse.ArgumentParser(prog=prog, description=description[:1].upper() + description[1:], epilog=exits)


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, exclude: tuple[str, ...] = ()) -> None:
    """One ``--kebab-case`` option per field of dataclass ``cls`` that has help text, but those in ``exclude``."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in exclude or "help" not in f.metadata:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f.metadata["help"]
        hint = hints[f.name]
        if hint is bool:
            shown = flag if f.default else "--no-" + flag[2:]
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default, help=f"{help_text} (default: {shown})")
            continue
        if f.default is not None and "default" not in help_text:  # a None default is explained in the text
            help_text += f" (default: {f.default})"
        kind = next((t for t in (int, float, Path, str) if t is hint or t in typing.get_args(hint)), str)
        choices = f.metadata.get("choices")
        metavar = "{" + ",".join(choices) + "}" if choices else None
        parser.add_argument(flag, type=kind, default=f.default, help=help_text, metavar=metavar)


def dataclass_from_args(cls: type, args: argparse.Namespace, exclude: tuple[str, ...] = (), **fixed: Any) -> Any:
    """Build ``cls`` from parsed arguments (but ``exclude``) and ``fixed`` values (its own
    validation runs in ``__post_init__``)."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if f.name not in exclude and hasattr(args, f.name)}
    return cls(**given | fixed)
