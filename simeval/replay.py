"""``python -m simeval.replay RUN_DIR --video``: render a finished run's lap again from its folder, without its agent.

The world is deterministic: config.json (circuit, env settings, camera, seed) and trajectory.csv
(every step's pose and command, with timing.csv's inference times) give the same frames as the
run's own ``--video``, byte for byte, camera-perturbing scenarios included. A run driven without
``--video`` (every run of a sweep, say) gets its video so.

Exit codes: 0 the video was written; 2 bad input (not a run folder, a missing or damaged file in
it, a circuit that is gone or changed since the run, the video packages missing, an output that
exists or is not .mp4); 130 interrupted (Ctrl-C): nothing is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from simeval.errors import ConfigError, ResultsError, run_command
from simeval.options import command_parser


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("python -m simeval.replay", __doc__)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder written by simeval.run or a sweep (DIR/runs/<run>)")
    parser.add_argument("--video", action="store_true", help="write the lap's video (H.264, 20 fps; pip install 'simeval[video]')")
    parser.add_argument("--out", type=Path, default=None, help="the video file, .mp4 (default: RUN_DIR/lap.mp4)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: _replay(args))


def _replay(args: argparse.Namespace) -> int:
    from simeval.atomic import ensure_writable
    from simeval.eval.replay import read_run, replay_video
    from simeval.eval.results import VIDEO_FILE
    from simeval.eval.video import check_video_available

    if not args.video:
        raise ConfigError("nothing to replay into: pass --video (the lap's video is what replay makes)")
    check_video_available()
    read_run(args.run_dir)  # a bad folder fails here, before any output is checked
    out = args.out or args.run_dir / VIDEO_FILE
    if out.suffix.lower() != ".mp4":
        raise ConfigError(f"--out must be an .mp4 file, got {out}")
    if out.exists():
        raise ResultsError(f"{out} already exists; pass --out with another file or remove it")
    ensure_writable(out.parent)
    facts = replay_video(args.run_dir, out)
    print(f"video: {facts.path} ({facts.frames} frames, {facts.bytes / 1e6:.1f} MB, {facts.wall_s:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
