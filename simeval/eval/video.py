"""``lap.mp4``: a lap as a video, one frame per agent step, made from what its run folder records.

A frame is ``simeval.sim.views.LapView``'s picture: the camera frame the agent saw, scaled up
nearest-neighbour, beside the heading-up map around the car with the path driven so far, and a
line of text (simulated time, the agent's command v and w, the lateral deviation d, its inference
time). Frames stream to ffmpeg (imageio-ffmpeg's writer, the one imageio's FFMPEG plugin wraps,
with the binary that its wheel ships): H.264, yuv420p, one frame per control period (20 fps),
never all in memory, into a temporary file renamed into place when whole.

Why the frames are made from the folder and not collected during the lap: trajectory.csv holds the
poses to 1 µm and 1 µrad, so a lap can only be re-rendered exactly from poses rounded so. Both
``run --video`` (from the folder it is writing) and ``replay --video`` (from a finished folder,
without the agent) render the camera frame at each recorded pose with an env reset with the run's
seed, whose frame stream then draws every scenario's perturbation (camera noise included) as the
lap drew it (``FollowLineEnv.camera_frame_at``): the two give the same frames, byte for byte. The
first frame is the reset's own observation; each later one differs from the frame the agent saw
only by the pose's rounding (a few grey levels on a pixel or two of some frames, below what H.264
itself changes). The lap itself is untouched: trajectory.csv is the same with and without a video.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from simeval.atomic import atomic_file
from simeval.env import FollowLineEnv
from simeval.errors import ConfigError, RunFolderError
from simeval.eval.results import TIMING_COLUMNS, TRAJECTORY_COLUMNS
from simeval.sim.views import LapView, status_line

PACKAGE = "imageio_ffmpeg"
INSTALL_HINT = "--video needs imageio-ffmpeg (its wheel ships ffmpeg): pip install 'simeval[video]'"
CRF = 20
"""H.264 constant rate factor: 0 lossless, 51 worst; 20 keeps the camera's pixel blocks crisp."""
PRESET = "veryfast"
"""x264 speed preset: for these pictures 1.6 kB a frame at 4 ms of CPU (medium: 1.4 kB at 7 ms)."""


def check_video_available() -> None:
    """Raise the one line that says how to install what ``--video`` needs, if it is missing."""
    if importlib.util.find_spec(PACKAGE) is None:
        raise ConfigError(INSTALL_HINT)


@dataclass(frozen=True)
class RecordedStep:
    """One agent step as the run folder records it (trajectory.csv and timing.csv)."""

    t_s: float
    x_m: float
    y_m: float
    yaw_rad: float
    d_m: float
    v_mps: float
    """The agent's command for this frame."""
    w_radps: float
    inference_s: float
    """NaN for an agent that makes no model call (pure pursuit)."""


@dataclass(frozen=True)
class VideoFacts:
    """What writing a video took and made."""

    path: Path
    frames: int
    bytes: int
    wall_s: float


def read_steps(folder: Path) -> list[RecordedStep]:
    """The agent steps of the run in ``folder``, read back from trajectory.csv and timing.csv
    (the final-state row, which has no command, is not a step)."""
    folder = Path(folder)
    trajectory = _read_table(folder / "trajectory.csv", TRAJECTORY_COLUMNS)
    timing = _read_table(folder / "timing.csv", TIMING_COLUMNS)
    rows = [row for row in trajectory if row["v_cmd_mps"] != ""]
    if len(rows) != len(timing):
        raise RunFolderError(
            f"{folder}: trajectory.csv has {len(rows)} steps but timing.csv {len(timing)}; the run folder is damaged, rerun the run"
        )
    return [
        RecordedStep(
            t_s=_number(r, "t_s", folder), x_m=_number(r, "x_m", folder), y_m=_number(r, "y_m", folder),
            yaw_rad=_number(r, "yaw_rad", folder), d_m=_number(r, "d_m", folder), v_mps=_number(r, "v_cmd_mps", folder),
            w_radps=_number(r, "w_cmd_radps", folder), inference_s=_number(t, "inference_s", folder, missing_ok=True),
        )
        for r, t in zip(rows, timing, strict=True)
    ]


def _read_table(path: Path, columns: Sequence[str]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != tuple(columns):
                raise RunFolderError(f"{path}: columns {reader.fieldnames} are not {list(columns)}; not a simeval run file")
            return [{**row, "_line": str(reader.line_num)} for row in reader]
    except FileNotFoundError:
        raise RunFolderError(f"{path} is missing; pass a run folder that simeval.run or a sweep wrote whole") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise RunFolderError(f"{path} cannot be read: {exc}") from None


def _number(row: dict[str, str], key: str, folder: Path, missing_ok: bool = False) -> float:
    """``row[key]`` as a finite number (or NaN, with ``missing_ok``: an agent without a model call
    records no inference time)."""
    try:
        value = float(row[key])
    except (TypeError, ValueError):
        value = None
    if value is None or not (np.isfinite(value) or (missing_ok and np.isnan(value))):
        raise RunFolderError(f"{folder}: line {row['_line']} has {key} = {row[key]!r}, not a finite number; the run folder is damaged")
    return value


def lap_frames(env: FollowLineEnv, seed: int, steps: Sequence[RecordedStep]) -> Iterator[NDArray[np.uint8]]:
    """The lap view of every recorded step, in order, drawn in ``env`` (the run's world, camera and
    scenario), which this resets with the run's ``seed``."""
    obs, _ = env.reset(seed=seed)
    view = LapView(env.sim.grid, env.vehicle, env.camera)
    xy = np.array([(s.x_m, s.y_m) for s in steps], dtype=np.float64).reshape(-1, 2)
    for k, step in enumerate(steps):
        pose = (step.x_m, step.y_m, step.yaw_rad)
        frame = obs if k == 0 else env.camera_frame_at(*pose)
        text = status_line(step.t_s, step.v_mps, step.w_radps, step.d_m, step.inference_s)
        yield view.render(frame, pose, xy[:k + 1], text)


def write_video(path: Path, frames: Iterable[NDArray[np.uint8]], fps: float) -> VideoFacts:
    """Encode ``frames`` (equal RGB uint8 pictures with even sides) as H.264 into ``path`` whole."""
    check_video_available()
    import imageio_ffmpeg

    started = time.perf_counter()
    count = 0
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise RunFolderError(f"{path}: no frame to write (the lap has no step)")
    with atomic_file(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            str(tmp), (first.shape[1], first.shape[0]), fps=fps, codec="libx264", pix_fmt_out="yuv420p", quality=None,
            macro_block_size=1, ffmpeg_log_level="error", output_params=["-f", "mp4", "-crf", str(CRF), "-preset", PRESET],
        )
        writer.send(None)  # starts ffmpeg
        try:
            for frame in itertools.chain([first], frames):
                writer.send(np.ascontiguousarray(frame))
                count += 1
        except BaseException:  # Ctrl-C reaches ffmpeg too: what it says on the way out must not hide why
            with contextlib.suppress(Exception):
                writer.close()
            raise
        writer.close()
    return VideoFacts(Path(path), count, Path(path).stat().st_size, time.perf_counter() - started)


def write_lap_video(path: Path, env: FollowLineEnv, seed: int, folder: Path) -> VideoFacts:
    """``path``: the video of the run whose records are in ``folder``, drawn in ``env`` (a fresh
    env, or the run's own: it is reset) with the run's ``seed``."""
    steps = read_steps(folder)
    if not steps:
        raise RunFolderError(f"{folder}: the lap has no step, so there is no frame to show")
    fps = 1e6 / env.config.sim.control_dt_us
    return write_video(path, lap_frames(env, seed, steps), fps)
