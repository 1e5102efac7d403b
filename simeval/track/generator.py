"""A seeded generator of smooth closed training loops (``gen-000``, ``gen-001``, ...)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from simeval.errors import CircuitError
from simeval.track.circuit import Circuit, CircuitMeta
from simeval.track.geometry import loop_length, resample_loop, with_widths
from simeval.track.simple import PROJECT_LICENCE

GEN_SPACING_M = 1.0
"""Control-point spacing of generated loops (m): their bends are gentle."""

GEN_HARMONICS = range(2, 7)
"""Harmonics of the radius that shape a generated loop: 2 makes it oval, 6 adds wiggles."""


def _candidate_loop(rng: np.random.Generator, lap_m: float) -> NDArray[np.float64]:
    """A circle whose radius is perturbed by random harmonics, scaled to ``lap_m``, random direction."""
    phi = np.linspace(0.0, 2 * math.pi, 4000, endpoint=False)
    radius = np.ones_like(phi)
    for k in GEN_HARMONICS:
        radius += rng.uniform(0.0, 0.4 / k**0.5) * np.cos(k * phi + rng.uniform(0.0, 2 * math.pi))
    if radius.min() < 0.15:  # a pinched shape: let the caller retry
        return np.empty((0, 2))
    xy = np.column_stack([radius * np.cos(phi), radius * np.sin(phi)])
    xy *= lap_m / loop_length(xy)
    if rng.random() < 0.5:  # clockwise as often as counter-clockwise
        xy = xy[::-1]
    return xy


def generate_loop(
    seed: int,
    *,
    road_width_m: float = 3.0,
    lap_range_m: tuple[float, float] = (600.0, 1800.0),
    min_bend_radius_m: float = 4.0,
    line_width_m: float = 0.10,
    max_attempts: int = 100,
) -> Circuit:
    """A smooth closed training loop, the same for the same arguments.

    Attempt ``n`` draws from ``numpy.random.default_rng([seed, n])``: a lap length in
    ``lap_range_m``, a circle perturbed by random radius harmonics and a driving direction. An
    attempt with a bend tighter than ``min_bend_radius_m`` or one that ``Circuit.from_points``
    refuses (overlapping road) is dropped for the next. Named ``gen-<seed>``; role 'train'.
    """
    for attempt in range(max_attempts):
        rng = np.random.default_rng([seed, attempt])
        xy = _candidate_loop(rng, rng.uniform(*lap_range_m))
        if len(xy) == 0:
            continue
        rows = with_widths(resample_loop(xy, round(loop_length(xy) / GEN_SPACING_M)), road_width_m)
        meta = CircuitMeta(
            name=f"gen-{seed:03d}",
            role="train",
            source=f"simeval.track.generator.generate_loop(seed={seed}), attempt {attempt}",
            licence=PROJECT_LICENCE,
            line_width_m=line_width_m,
        )
        try:
            circuit = Circuit.from_points(rows, meta)
        except CircuitError:
            continue
        if circuit.min_radius_m >= min_bend_radius_m:
            return circuit
    raise CircuitError(f"generate_loop(seed={seed}): no valid loop in {max_attempts} attempts; try another seed")
