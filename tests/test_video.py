"""Videos of laps: `run --video`, `replay --video`, and the env's render views under RecordVideo.

Real laps, real agents, the real encoder: every video is decoded again and its frames compared
(`sweep --video`: tests/test_sweep.py).
"""

from __future__ import annotations

import csv
import sys

import gymnasium
import numpy as np
import pytest

from simeval import ENV_ID
from simeval.agents.expert import ExpertAgent
from simeval.env import FollowLineEnv
from simeval.errors import UnknownNameError
from simeval.eval.rollout import rollout
from simeval.eval.video import write_video
from simeval.replay import main as replay
from simeval.run import main as run
from simeval.sim.views import camera_view

imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")


def decode(path) -> tuple[dict, np.ndarray]:
    """The video's metadata (fps, codec, size) and all its frames, (N, H, W, 3) uint8."""
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return meta, np.stack([np.frombuffer(f, dtype=np.uint8).reshape(height, width, 3) for f in reader])


def steps_of(folder) -> int:
    """The agent steps in trajectory.csv (its last row is the final state, with no command)."""
    return sum(1 for row in csv.DictReader((folder / "trajectory.csv").open()) if row["v_cmd_mps"])


def lap(tmp_path, name: str, *args: str) -> object:
    out = tmp_path / name
    assert run(["--no-plot", "--out", str(out), *args]) == 0
    return out


def test_run_video_is_the_lap_at_20_fps_in_h264_and_replay_gives_the_same_frames(tmp_path, capsys):
    args = ("--agent", "expert", "--circuit", "simple", "--max-time-s", "2")
    plain, filmed = lap(tmp_path, "plain", *args), lap(tmp_path, "filmed", *args, "--video")
    assert f"video: {filmed / 'lap.mp4'}" in capsys.readouterr().out
    assert (filmed / "trajectory.csv").read_bytes() == (plain / "trajectory.csv").read_bytes()
    assert not (plain / "lap.mp4").exists()

    meta, frames = decode(filmed / "lap.mp4")
    assert meta["codec"] == "h264" and meta["fps"] == 20.0 and meta["size"] == (1064, 288)
    assert len(frames) == steps_of(filmed) == 40

    # the camera half is the agent's frame scaled up x4, here the reset's observation
    obs, _ = FollowLineEnv("simple").reset(seed=0)
    assert np.abs(frames[0][:264, :800].astype(int) - camera_view(obs, 4)).mean() < 2.0

    assert replay([str(filmed), "--video", "--out", str(tmp_path / "again.mp4")]) == 0
    assert np.array_equal(decode(tmp_path / "again.mp4")[1], frames)
    assert (tmp_path / "again.mp4").read_bytes() == (filmed / "lap.mp4").read_bytes()
    assert replay([str(plain), "--video"]) == 0  # a run without a video gets it, beside its files
    replayed = decode(plain / "lap.mp4")[1]  # the same lap; only the inference times in the text differ
    assert replayed.shape == frames.shape and np.abs(replayed[:, :256].astype(int) - frames[:, :256]).mean() < 0.5


def test_a_model_agent_under_camera_noise_replays_to_the_same_frames(tmp_path):
    """torch-fp32 through the noisy camera: replay draws the same noise from the run's seed."""
    pytest.importorskip("torch")
    args = ("--agent", "torch-fp32", "--circuit", "simple", "--max-time-s", "1", "--scenario", "camera-noise", "--seed", "3")
    filmed = lap(tmp_path, "filmed", *args, "--video")
    meta, frames = decode(filmed / "lap.mp4")
    assert len(frames) == steps_of(filmed) == 20
    assert replay([str(filmed), "--video", "--out", str(tmp_path / "again.mp4")]) == 0
    assert np.array_equal(decode(tmp_path / "again.mp4")[1], frames)


def test_replayed_camera_frames_are_what_the_agent_saw(tmp_path):
    """Before any encoding: the video's camera half against the observations of the lap itself,
    noise included; they differ only where trajectory.csv's 1 µm rounding of the pose moves an
    anti-aliased edge by a grey level or so."""
    from simeval.eval.replay import read_run
    from simeval.eval.video import lap_frames, read_steps

    ran = lap(tmp_path, "ran", "--agent", "expert", "--circuit", "simple", "--max-time-s", "3", "--scenario", "camera-noise")
    seen = []
    rollout(FollowLineEnv("simple", scenario="camera-noise", max_time_s=3.0), ExpertAgent(), seed=0,
            on_step=lambda step: seen.append(step.observation))
    recorded = read_run(ran)
    shown = [frame[:264, :800] for frame in lap_frames(recorded.make_env(), recorded.seed, read_steps(ran))]
    assert len(shown) == len(seen) == 60
    assert np.array_equal(shown[0], camera_view(seen[0], 4))
    differences = np.stack([np.abs(s.astype(int) - camera_view(o, 4)) for s, o in zip(shown, seen, strict=True)])
    assert differences.max() <= 8 and (differences > 0).mean() < 1e-3


def test_an_interrupted_video_leaves_no_file(tmp_path):
    def frames():
        for k in range(5):
            yield np.full((64, 64, 3), 40 * k, dtype=np.uint8)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_video(tmp_path / "lap.mp4", frames(), fps=20.0)
    assert list(tmp_path.iterdir()) == []


def test_record_video_records_the_camera_view(tmp_path):
    """gymnasium's RecordVideo over render_view='camera' films what the agent sees."""
    pytest.importorskip("moviepy")
    env = gymnasium.make(ENV_ID, circuit="simple", render_mode="rgb_array", render_view="camera", max_time_s=1.0)
    env = gymnasium.wrappers.RecordVideo(env, str(tmp_path / "videos"), episode_trigger=lambda episode: True, name_prefix="lap")
    seen = []
    record = rollout(env, ExpertAgent(), seed=0, on_step=lambda step: seen.append(step.observation))
    env.close()
    meta, frames = decode(tmp_path / "videos" / "lap-episode-0.mp4")
    assert meta["size"] == (800, 264) and len(frames) == len(record.t) + 1 == 21  # the reset's frame, then one per step
    for frame, observation in zip(frames, seen, strict=False):
        assert np.abs(frame.astype(int) - camera_view(observation, 4)).mean() < 2.0


def test_render_views_of_the_env():
    pictures = {}
    for view in ("map", "camera", "combined"):
        env = FollowLineEnv("simple", render_mode="rgb_array", render_view=view)
        obs, _ = env.reset(seed=0)
        for _ in range(10):
            obs, *_ = env.step(env.to_action(8.0, 0.0))
        pictures[view] = env.render()
        env.close()
    assert pictures["map"].shape == (256, 256, 3)
    assert np.array_equal(pictures["camera"], camera_view(obs, 4))
    assert np.array_equal(pictures["combined"][:264, :800], pictures["camera"]) and pictures["combined"].shape == (288, 1064, 3)
    with pytest.raises(UnknownNameError, match="Did you mean 'camera'"):
        FollowLineEnv("simple", render_view="camra")


def test_bad_replays_and_a_missing_encoder_are_one_line_each(tmp_path, capsys, monkeypatch):
    filmed = lap(tmp_path, "filmed", "--agent", "expert", "--circuit", "simple", "--max-time-s", "1", "--video")
    capsys.readouterr()
    cases = [
        ([str(tmp_path / "nowhere"), "--video"], "is not a folder"),
        ([str(tmp_path), "--video"], "is not a run folder (no config.json)"),
        ([str(filmed)], "pass --video"),
        ([str(filmed), "--video"], "lap.mp4 already exists"),
        ([str(filmed), "--video", "--out", str(tmp_path / "lap.avi")], "must be an .mp4 file"),
    ]
    (filmed / "trajectory.csv").rename(tmp_path / "kept.csv")
    cases.append(([str(filmed), "--video", "--out", str(tmp_path / "x.mp4")], "trajectory.csv is missing"))
    for argv, message in cases:
        assert replay(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if simeval[video] were not installed
    assert run(["--agent", "expert", "--video", "--out", str(tmp_path / "none")]) == 2
    assert "pip install 'simeval[video]'" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
