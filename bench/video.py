"""What ``--video`` costs: a lap written with and without lap.mp4, and where the time goes.

    python bench/video.py [--agent torch-fp32] [--circuit montreal]

Both runs drive the same lap in this one process (the agent loaded once, so start-up is left out),
then the video's frames are made again without encoding, to split the cost between drawing the
frames (camera re-render, map, text) and ffmpeg. Wall and CPU seconds; ffmpeg's CPU is its own
process's, read from the children's resource usage.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import resource  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from simeval.agents import load_agent  # noqa: E402
from simeval.agents.base import close_agent  # noqa: E402
from simeval.eval.replay import read_run  # noqa: E402
from simeval.eval.run import RunConfig, run_and_save  # noqa: E402
from simeval.eval.video import VIDEO_FILE, lap_frames, read_steps  # noqa: E402


def timed(work) -> tuple[float, float, float]:
    """(wall s, this process's CPU s, its children's CPU s) that ``work()`` took."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - wall, time.process_time() - cpu, (after.ru_utime + after.ru_stime) - (children.ru_utime + children.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agent", default="torch-fp32")
    parser.add_argument("--circuit", default="montreal")
    args = parser.parse_args()
    agent = load_agent(args.agent)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            plain, filmed = Path(tmp) / "plain", Path(tmp) / "filmed"
            config = RunConfig(agent=args.agent, circuit=args.circuit, plot=False)
            without = timed(lambda: run_and_save(agent, config, plain))
            with_video = timed(lambda: run_and_save(agent, RunConfig(agent=args.agent, circuit=args.circuit, plot=False, video=True), filmed))
            steps = read_steps(filmed)
            run = read_run(filmed)
            env = run.make_env()
            drawing = timed(lambda: sum(1 for _ in lap_frames(env, run.seed, steps)))
            env.close()
            size = (filmed / VIDEO_FILE).stat().st_size
            same = (plain / "trajectory.csv").read_bytes() == (filmed / "trajectory.csv").read_bytes()
    finally:
        close_agent(agent)
    n = len(steps)
    added = with_video[0] - without[0]
    print(f"{args.agent} on {args.circuit}: {n} steps, lap.mp4 {size / 1e6:.2f} MB ({size / n / 1e3:.2f} kB a frame), "
          f"trajectory.csv {'byte-identical' if same else 'DIFFERENT'} with and without --video")
    print(f"  run without --video: {without[0]:6.2f} s wall, {without[1]:6.2f} s CPU")
    print(f"  run with --video:    {with_video[0]:6.2f} s wall, {with_video[1]:6.2f} s CPU + ffmpeg {with_video[2]:5.2f} s CPU")
    print(f"  added by --video:    {added:6.2f} s wall, {added / n * 1e3:5.2f} ms a frame")
    print(f"  of which drawing the frames: {drawing[0]:5.2f} s wall, {drawing[1] / n * 1e3:5.2f} ms CPU a frame; "
          f"ffmpeg (H.264) {with_video[2] / n * 1e3:5.2f} ms CPU a frame, in its own process")


if __name__ == "__main__":
    main()
