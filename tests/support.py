"""Helpers shared by the tests: the real shipped circuits, loaded once (they are immutable)."""

from __future__ import annotations

import functools

from simeval.circuit import Circuit

TEST_CIRCUITS = ("simple", "montreal", "montmelo")


@functools.cache
def circuit(name: str) -> Circuit:
    return Circuit.from_name(name)
