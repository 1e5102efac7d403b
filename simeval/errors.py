"""One small exception tree: library code raises these, only ``main()`` turns them into exit codes.

Every message says what went wrong, where (file, row, name), and what to do about it.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Iterable

EXIT_BAD_INPUT = 2
"""A command's exit code when its input is bad (a name, file, number, model or agent): one line says what."""
EXIT_INTERRUPTED = 130
"""A command's exit code after Ctrl-C (128 + SIGINT, as a shell reports it)."""


def run_command(body: Callable[[], int], interrupted: str = "interrupted: nothing was written") -> int:
    """A command line's ``body``, whose errors end as one line and an exit code, never a traceback:
    a ``SimevalError`` as ``error: ...`` (exit 2), Ctrl-C as ``interrupted``, which says what was
    kept (exit 130)."""
    try:
        return body()
    except SimevalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return EXIT_INTERRUPTED


class SimevalError(Exception):
    """Base of every error simeval raises on purpose (bad input, missing files, bad models)."""


class UnknownNameError(SimevalError, KeyError):
    """A circuit, agent or option name that is not registered."""

    def __init__(self, kind: str, name: str, known: Iterable[str]):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        close = difflib.get_close_matches(self.name, self.known, n=1, cutoff=0.5)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        return f"unknown {self.kind} '{self.name}'.{hint} Known {self.kind}s: {', '.join(self.known)}"

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.message


class CircuitError(SimevalError, ValueError):
    """A circuit file that is missing, malformed, or describes an impossible road."""


class AgentError(SimevalError):
    """An agent that cannot be loaded (missing or bad artifact, missing dependency or hardware)."""


class UnavailableError(AgentError):
    """An agent that cannot run on this machine (a missing framework, engine or GPU): the registry
    adds the agents that do run here."""


class ContractError(AgentError, ValueError):
    """A model contract that is malformed, or that does not fit its model: the model agent cannot load."""


class ConfigError(SimevalError, ValueError):
    """A run setting with a wrong type or value."""


class DatasetError(SimevalError):
    """A data set that is missing, incomplete, corrupt, or made with other settings."""


class ResultsError(SimevalError):
    """A results folder that cannot be written."""


class RunFolderError(SimevalError):
    """A run folder that cannot be read back (not a run folder, a missing or damaged file)."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first line of an exception's message (libraries' errors run to many lines), or its type."""
    text = str(exc).strip()
    return text.splitlines()[0][:limit] if text else type(exc).__name__
