"""Checks of setting values: one ConfigError line per bad value, never a TypeError later on.

The sim's records (camera, vehicle, clock, scenarios) and the env's settings all take numbers that
must be real, finite and in range, and names from a fixed list. A ``bool`` is refused where a
number is due, although Python counts it as an int: ``True`` for a speed is a slip, not a value.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Collection
from typing import Any

from simeval.errors import ConfigError, UnknownNameError

REPR_LIMIT = 60
"""Characters of a bad value that a message quotes (an array's repr runs to many lines)."""


def brief(value: Any) -> str:
    """``repr(value)`` on one line and cut short, for error messages."""
    text = " ".join(repr(value).split())
    return text if len(text) <= REPR_LIMIT else text[: REPR_LIMIT - 3] + "..."


def is_number(value: Any, *, integer: bool = False) -> bool:
    """A finite int or float (an integer only, with ``integer``), and not a bool."""
    if isinstance(value, bool) or not isinstance(value, int if integer else (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)  # a huge int has no float to test


def check_number(
    key: str,
    value: Any,
    *,
    above: float | None = None,
    at_least: float | None = None,
    below: float | None = None,
    at_most: float | None = None,
    integer: bool = False,
) -> None:
    """Refuse ``value`` unless it is a finite number (an integer, with ``integer``) within the bounds given."""
    bounds = [
        (symbol, limit, test)
        for symbol, limit, test in ((">", above, operator.gt), (">=", at_least, operator.ge),
                                    ("<", below, operator.lt), ("<=", at_most, operator.le))
        if limit is not None
    ]
    if is_number(value, integer=integer) and all(test(value, limit) for _, limit, test in bounds):
        return
    what = "an integer" if integer else "a finite number"
    limits = "".join(f" {'and ' if k else ''}{symbol} {limit:g}" for k, (symbol, limit, _) in enumerate(bounds))
    raise ConfigError(f"{key} must be {what}{limits}, got {brief(value)}")


def check_name(kind: str, value: Any, known: Collection[str]) -> None:
    """Refuse ``value`` unless it is one of the ``known`` names (a near miss gets a 'did you mean')."""
    if not isinstance(value, str):
        raise ConfigError(f"{kind} must be a name ({', '.join(known)}), got {type(value).__name__} {brief(value)}")
    if value not in known:
        raise UnknownNameError(kind, value, known)
