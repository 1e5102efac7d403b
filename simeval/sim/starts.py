"""Where an episode starts: the circuit's spawn, a seeded point of the lap, or such a point with a
small seeded offset and heading error.

A start is drawn from the env's seeded ``np_random``, so the same seed gives the same start, and it
is returned as a record (``StartPose``) that says what was drawn: a run writes it to config.json,
so a reader of a sweep knows where each seed began without re-running it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from simeval.track.circuit import Circuit

Pose = tuple[float, float, float]

STARTS = ("spawn", "random", "perturbed")
"""spawn: the circuit's spawn pose; random: a uniformly drawn point of the centre line, heading
along the road; perturbed: such a point, moved across the road and turned by a small drawn amount."""

OFFSET_FRACTION = 0.2
"""A perturbed start lies at most this fraction of the road's half-width (the narrower side) off
the centre line: 0.3 m on the shipped circuits' 1.5 m, well inside the walls for the car."""
HEADING_ERROR_RAD = 0.1
"""A perturbed start is turned at most this much (about 6 degrees) from the road's heading: enough
that a lap begins with a correction, small enough that every sane agent can make it."""


@dataclass(frozen=True)
class StartPose:
    """Where an episode started and what was drawn to put it there."""

    kind: str
    """'spawn', 'random', 'perturbed' (``STARTS``), or 'given' (a pose passed to ``reset``)."""
    pose: Pose
    """(x m, y m, yaw rad) the car started from, after any scenario moved it."""
    s_m: float | None = None
    """Arc length of the drawn point of the lap (m); None for the spawn and a given pose."""
    offset_m: float = 0.0
    """Drawn lateral offset from the centre line (m, left +)."""
    heading_error_rad: float = 0.0
    """Drawn heading error from the road's direction (rad, counter-clockwise +)."""


def draw_start(kind: str, circuit: Circuit, rng: np.random.Generator) -> StartPose:
    """The start of ``kind`` on ``circuit``, drawn from ``rng`` (the spawn draws nothing)."""
    if kind == "spawn":
        return StartPose("spawn", circuit.spawn_pose)
    s = float(rng.uniform(0.0, circuit.length_m))
    x, y = (float(v) for v in circuit.position(s))
    road = float(circuit.heading_at(s))
    if kind == "random":
        return StartPose("random", (x, y, road), s_m=s)
    right, left = (float(w) for w in circuit.width_at(s))
    reach = OFFSET_FRACTION * min(right, left)
    offset = float(rng.uniform(-reach, reach))
    error = float(rng.uniform(-HEADING_ERROR_RAD, HEADING_ERROR_RAD))
    pose = (x - math.sin(road) * offset, y + math.cos(road) * offset, road + error)
    return StartPose("perturbed", pose, s_m=s, offset_m=offset, heading_error_rad=error)
