"""The recipe of the shipped circuits: which source track becomes which circuit, at what scale.

``build_circuits(sources)`` makes every file of ``circuits/`` from the source data that ships in
``circuits/sources/`` (the TUMFTM tracks with their licence, SimpleCircuit's measured description
and its recorded fit), so a clean clone rebuilds them byte for byte:

- test circuits: ``simple`` (straights and arcs), ``montreal`` and ``montmelo`` (TUMFTM, at the
  sizes of the Gazebo circuits of the published results);
- training circuits: every other TUMFTM track at the smallest size from ~1 km up that validates
  and has no bend under ``TRAIN_MIN_RADIUS_M``, and the generated loops ``gen-000`` .. ``gen-005``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from simeval.errors import CircuitError
from simeval.paths import data_dir
from simeval.track.circuit import Circuit, CircuitMeta
from simeval.track.generator import generate_loop
from simeval.track.geometry import loop_length
from simeval.track.simple import fit_parameters, read_fit, simple_circuit, write_fit
from simeval.track.tumftm import convert, database_source, read_tumftm


@dataclass(frozen=True)
class TumftmCircuit:
    """A shipped circuit made from one TUMFTM file."""

    name: str
    file: str
    scale: float
    road_width_m: float = 3.0
    line_width_m: float = 0.10
    reference_lap_time_s: float | None = None


SIMPLE_REFERENCE_LAP_TIME_S = 68.0
"""Lap time of the explicit brain on SimpleCircuit in Gazebo (s)."""
SIMPLE_DESCRIPTION = "simple_circuit.json"
SIMPLE_FIT = "simple_fit.json"

TEST_TUMFTM = (
    TumftmCircuit("montreal", "Montreal.csv", 1 / 3.03, 3.0, 0.10, 225.0),
    TumftmCircuit("montmelo", "Catalunya.csv", 1 / 6.25, 3.0, 0.12, 111.0),
)
"""The TUMFTM test circuits at the sizes of the Gazebo circuits of the published results."""

TRAIN_ROAD_WIDTH_M = 3.0
TRAIN_LAP_TARGET_M = 1000.0
TRAIN_LAP_MAX_M = 2000.0
TRAIN_LAP_STEP = 1.1
"""A training track is tried at a ~1 km lap, then 10% larger each time, up to 2 km."""
TRAIN_MIN_RADIUS_M = 2.0
"""Tightest bend allowed on a training circuit (m): about montmelo's tightest, so experts can drive it."""
GENERATED_SEEDS = range(6)
TUMFTM_LICENCE = "LGPL-3.0"
SMOOTHING_NOTE = "centre line Gaussian-smoothed (simeval.track.tumftm.smooth_loop), control points every ~1 m"


def sources_dir() -> Path:
    """The source data of the shipped circuits: ``circuits/sources``."""
    return data_dir("circuits") / "sources"


def _tumftm_circuit(sources: Path, spec: TumftmCircuit, role: str) -> Circuit:
    path = sources / "tumftm" / spec.file
    meta = CircuitMeta(
        name=spec.name,
        role=role,
        source=database_source(path),
        licence=TUMFTM_LICENCE,
        scale=spec.scale,
        line_width_m=spec.line_width_m,
        reference_lap_time_s=spec.reference_lap_time_s,
        notes=SMOOTHING_NOTE,
    )
    return convert(path, meta, road_width_m=spec.road_width_m)


def _training_circuit(sources: Path, file: str) -> Circuit:
    """The smallest training circuit from ~1 km up that validates and has no bend under 2 m."""
    raw_lap = loop_length(read_tumftm(sources / "tumftm" / file)[:, :2])
    lap, reason = TRAIN_LAP_TARGET_M, ""
    while lap <= TRAIN_LAP_MAX_M:
        spec = TumftmCircuit(Path(file).stem.lower(), file, 1 / round(raw_lap / lap, 2), TRAIN_ROAD_WIDTH_M)
        lap *= TRAIN_LAP_STEP
        try:
            circuit = _tumftm_circuit(sources, spec, "train")
        except CircuitError as exc:
            reason = str(exc)
            continue
        if circuit.min_radius_m >= TRAIN_MIN_RADIUS_M:
            return circuit
        reason = f"tightest bend {circuit.min_radius_m:.2f} m < {TRAIN_MIN_RADIUS_M} m"
    raise CircuitError(f"{file}: no scale with a lap of at most {TRAIN_LAP_MAX_M:.0f} m works ({reason})")


def simple(sources: Path, *, refit: bool = False) -> Circuit:
    """SimpleCircuit from its description and recorded fit; ``refit`` solves the fit again and
    records the new solution in ``sources``."""
    description = sources / SIMPLE_DESCRIPTION
    if refit:
        write_fit(sources / SIMPLE_FIT, fit_parameters(description))
    parameters = read_fit(sources / SIMPLE_FIT)
    return simple_circuit(description, parameters, reference_lap_time_s=SIMPLE_REFERENCE_LAP_TIME_S)


def build_circuits(sources: Path, *, refit: bool = False) -> tuple[list[Circuit], list[str]]:
    """Every shipped circuit from the source data, and the tracks skipped (with why)."""
    if not (sources / "tumftm").is_dir():
        raise CircuitError(f"{sources}: no tumftm/ folder of source tracks here; pass --sources DIR")
    built = [simple(sources, refit=refit)]
    built += [_tumftm_circuit(sources, spec, "test") for spec in TEST_TUMFTM]
    test_files = {spec.file for spec in TEST_TUMFTM}
    skipped = []
    for path in sorted((sources / "tumftm").glob("*.csv")):
        if path.name in test_files:
            continue
        try:
            built.append(_training_circuit(sources, path.name))
        except CircuitError as exc:
            skipped.append(str(exc))
    built += [generate_loop(seed, road_width_m=TRAIN_ROAD_WIDTH_M) for seed in GENERATED_SEEDS]
    return built, skipped
