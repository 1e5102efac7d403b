"""Simulator benchmark: renderer frame rates, env steps per second, expert lap wall time, memory.

    python bench/sim.py [--frames 2000] [--laps simple,montreal,montmelo]

One thread (BLAS/OpenMP pinned before numpy loads); ratios are taken within this one run, so they
hold on any machine. Prints a table with the issue's targets beside the measured figures.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import gymnasium  # noqa: E402
import numpy as np  # noqa: E402

from simeval.agents import load_agent  # noqa: E402
from simeval.env import FollowLineEnv  # noqa: E402
from simeval.eval.metrics import LapMetrics, compute_metrics  # noqa: E402
from simeval.eval.rollout import rollout  # noqa: E402
from simeval.eval.run import RunConfig, run_episode  # noqa: E402
from simeval.sim.camera import CameraConfig  # noqa: E402
from simeval.sim.renderer import make_renderer  # noqa: E402
from simeval.track.circuit import Circuit  # noqa: E402


def poses(circuit: Circuit, count: int, seed: int = 0) -> list[tuple[float, float, float]]:
    """Poses spread over the lap, off the line and askew, as a driving car would see them."""
    rng = np.random.default_rng(seed)
    s = rng.uniform(0, circuit.length_m, count)
    d = rng.uniform(-0.6, 0.6, count)
    xy = circuit.position(s, d)
    yaw = circuit.heading_at(s) + rng.uniform(-0.15, 0.15, count)
    return [(float(x), float(y), float(h)) for (x, y), h in zip(xy, yaw, strict=True)]


def frame_seconds(name: str, circuit: Circuit, count: int) -> float:
    """Median-free mean wall time of one frame over ``count`` poses (after 20 warm-up frames)."""
    renderer = make_renderer(name, circuit, CameraConfig())
    try:
        todo = poses(circuit, count + 20)
        for pose in todo[:20]:
            renderer.render(*pose)
        start = time.perf_counter()
        for pose in todo[20:]:
            renderer.render(*pose)
        return (time.perf_counter() - start) / count
    finally:
        renderer.close()


class StepTimer(gymnasium.Wrapper):
    """Adds up the wall time spent inside ``env.step``."""

    def __init__(self, env: gymnasium.Env):
        super().__init__(env)
        self.spent_s, self.steps = 0.0, 0

    def step(self, action):
        start = time.perf_counter()
        result = self.env.step(action)
        self.spent_s += time.perf_counter() - start
        self.steps += 1
        return result


def env_steps_per_second(circuit: Circuit, steps: int) -> float:
    """env.step alone (car + frame + progress), driven by pure pursuit so the car stays on the road."""
    env = StepTimer(FollowLineEnv(circuit))
    agent = load_agent("pure-pursuit")
    seed = 0
    while env.steps < steps:
        rollout(env, agent, seed=seed, options={"start": "random"}, max_steps=steps - env.steps)
        seed += 1
    return env.steps / env.spent_s


def expert_lap(name: str) -> tuple[float, LapMetrics]:
    start = time.perf_counter()
    env = FollowLineEnv(name)
    record = run_episode(env, load_agent("expert"), RunConfig(agent="expert", circuit=name))
    wall = time.perf_counter() - start
    return wall, compute_metrics(record, env.circuit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000, help="raster frames to time (pybullet: a tenth)")
    parser.add_argument("--steps", type=int, default=5000, help="env steps to time")
    parser.add_argument("--laps", default="simple,montreal,montmelo", help="circuits for the expert lap timing")
    args = parser.parse_args(argv)

    montreal = Circuit.from_name("montreal")
    raster = frame_seconds("raster", montreal, args.frames)
    bullet = frame_seconds("pybullet", montreal, max(50, args.frames // 10))
    steps = env_steps_per_second(montreal, args.steps)
    rows = [
        ("raster frame (ms)", f"{raster * 1e3:.3f}", ""),
        ("pybullet frame (ms)", f"{bullet * 1e3:.3f}", ""),
        ("raster speed-up over pybullet", f"{bullet / raster:.1f}x", ">= 15x"),
        ("env.step (steps/s)", f"{steps:,.0f}", ">= 3,000"),
    ]
    for name in args.laps.split(","):
        wall, metrics = expert_lap(name)
        target = "<= 5 s" if name == "montreal" else ""
        lap = metrics.lap_time_s
        rows.append((
            f"expert lap {name} (wall s)",
            f"{wall:.2f}",
            target,
        ))
        rows.append((
            f"  {name}: lap time s / mean speed m/s / MAE m",
            f"{lap:.1f} / {metrics.average_speed_mps:.1f} / {metrics.deviation_mae_m:.3f}" if lap else str(metrics.termination),
            "",
        ))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows.append(("peak memory (MB)", f"{peak_mb:.0f}", "<= 1,024"))
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>22}  target")
    for label, value, target in rows:
        print(f"{label:<{width}}  {value:>22}  {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
