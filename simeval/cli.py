"""``simeval COMMAND [ARGS]``: every ``python -m simeval.COMMAND`` as one console command.

``simeval run --agent expert --circuit montreal`` is ``python -m simeval.run --agent expert
--circuit montreal``: the command's own ``main`` parses the rest, and its exit code is returned.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from simeval.errors import UnknownNameError

COMMANDS = ("run", "sweep", "replay", "models", "circuits", "dataset", "train", "optimize", "offline")
"""The command modules (``simeval/<name>.py``), in the order a user meets them."""


def summary(command: str) -> str:
    """The first line of a command's docstring, without the call it shows: ``...``: what it does.
    Read from the source, so ``simeval --help`` imports none of the commands."""
    source = (Path(__file__).parent / f"{command}.py").read_text(encoding="utf-8")
    paragraph = " ".join((ast.get_docstring(ast.parse(source)) or "").split("\n\n")[0].split())
    return paragraph.split("``: ", 1)[-1].split(". ")[0].rstrip(".")


def usage() -> str:
    width = max(len(c) for c in COMMANDS)
    lines = ["usage: simeval COMMAND [ARGS]   (simeval COMMAND --help for a command's options)", "", "commands:"]
    lines += [f"  {c:<{width}}  {summary(c)}" for c in COMMANDS]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    if args[0] == "--version":
        from simeval import __version__

        print(f"simeval {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"error: {UnknownNameError('command', command, COMMANDS)}", file=sys.stderr)
        return 2
    return int(importlib.import_module(f"simeval.{command}").main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
