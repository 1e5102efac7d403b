"""Circuits: the road a lap is driven on (``Circuit``), its file format, and the catalogue by name."""

from simeval.track.circuit import Circuit
from simeval.track.circuit_file import CircuitMeta

__all__ = ["Circuit", "CircuitMeta"]
