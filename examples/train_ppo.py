"""Train a Stable-Baselines3 PPO policy to drive a simeval circuit from its camera, then drive it.

    python examples/train_ppo.py                                  # 20k steps on simple into ppo_simple/
    python examples/train_ppo.py --total-timesteps 256 --n-steps 64 --out /tmp/ppo   # a smoke test
    python -m simeval.run --agent ppo_simple/policy.zip --trust-model --circuit simple

One file, CleanRL-style: the settings are the dataclass ``Args`` (one command-line option per
field), then the env, the model, the training loop and an evaluation lap, in that order. The env is
``simeval/FollowLine-v0`` with ``action="symmetric"``: the action box is [-1, 1] x [-1, 1] (speed
mapped onto 0..25 m/s), the one SB3's Gaussian policies and ``check_env`` expect, so an untrained
policy starts at 12.5 m/s rather than standing still. The reward is the progress along the centre
line in metres; an episode ends at a wall, at the finish line, or on the env's time and stuck
limits. Training episodes start at seeded random points of the lap, so every bend is seen from the
first rollouts. The rewards are normalised for training (SB3's ``VecNormalize``, rewards only):
without it the value loss, in metres, swamps the CNN the policy shares, and the policy learns to
drive fast and crash. The observations are not normalised, so the saved policy needs nothing but
the frame. With these settings, 20,000 steps learn to lap simple (README, "Reinforcement learning").

The policy is saved as OUT/policy.zip (SB3's ``model.save``), then driven for one lap from the
circuit's spawn by simeval's own runner (``python -m simeval.run``), which writes OUT/eval_lap/. An
SB3 zip holds pickled Python objects, so simeval loads it only with ``--trust-model``; simeval
reads the action mode from the policy's saved action space and decodes its actions to m/s and
rad/s, so the policy drives in any simeval env. Needs ``pip install 'simeval[rl]'``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym

import simeval  # noqa: F401 - registers simeval/FollowLine-v0
from simeval.options import add_dataclass_arguments, command_parser, dataclass_from_args


@dataclass(frozen=True)
class Args:
    """Every setting of a training run (PPO's defaults where not said otherwise)."""

    total_timesteps: int = field(default=20_000, metadata={"help": "env steps to train for (50 ms of simulated time each)"})
    seed: int = field(default=0, metadata={"help": "seed of the env's start points, the policy's initial weights and its sampling"})
    out: Path = field(default=Path("ppo_simple"), metadata={"help": "folder for policy.zip and the evaluation lap"})
    circuit: str = field(default="simple", metadata={"help": "circuit to train and drive on"})
    start: str = field(default="random", metadata={"help": "where training episodes start: random (a seeded point of the lap) or spawn"})
    n_steps: int = field(default=512, metadata={"help": "env steps per rollout (one PPO update each)"})
    batch_size: int = field(default=64, metadata={"help": "minibatch size of the PPO update"})
    n_epochs: int = field(default=4, metadata={"help": "passes over each rollout"})
    learning_rate: float = field(default=3e-4, metadata={"help": "Adam's learning rate"})
    gamma: float = field(default=0.99, metadata={"help": "discount per 50 ms step (a horizon of about 5 s)"})
    log_std_init: float = field(default=-1.0, metadata={"help": "initial log standard deviation of the Gaussian policy (std 0.37 of the box)"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads (1 is fastest on a shared machine: more threads spin against other work)"})
    evaluate: bool = field(default=True, metadata={"help": "drive one lap with simeval's runner after training"})


def make_env(args: Args) -> gym.Env:
    """The training env: the camera frame in, a symmetric action out."""
    return gym.make("simeval/FollowLine-v0", circuit=args.circuit, action="symmetric", start=args.start)


def progress_callback(lap_length_m: float):
    """Prints one line per rollout: steps, episodes, and how far the recent episodes got."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Progress(BaseCallback):
        def _on_training_start(self) -> None:
            self.started, self.episodes = time.perf_counter(), 0

        def _on_step(self) -> bool:
            self.episodes += int(sum(self.locals["dones"]))
            return True

        def _on_rollout_end(self) -> None:
            recent = [info["r"] / lap_length_m for info in list(self.model.ep_info_buffer)[-10:]]  # reward = progress (m)
            reached = f"{100 * sum(recent) / len(recent):5.1f} % (best {100 * max(recent):5.1f} %)" if recent else "-"
            rate = self.num_timesteps / (time.perf_counter() - self.started)
            print(f"{self.num_timesteps:>8} steps  {self.episodes:>5} episodes  the last 10 reached {reached} of a lap  "
                  f"{rate:4.0f} steps/s", flush=True)

    return Progress()


def main(argv: list[str] | None = None) -> int:
    parser = command_parser("python examples/train_ppo.py", __doc__)
    add_dataclass_arguments(parser, Args)
    args = dataclass_from_args(Args, parser.parse_args(argv))
    policy, lap = args.out / "policy.zip", args.out / "eval_lap"
    if policy.exists() or lap.exists():
        print(f"error: {args.out} already holds a trained policy; choose another --out", file=sys.stderr)
        return 2
    try:
        import torch
        from stable_baselines3 import PPO
        from stable_baselines3.common.env_util import make_vec_env
        from stable_baselines3.common.vec_env import VecNormalize
    except ImportError:
        print("error: this example needs Stable-Baselines3: pip install 'simeval[rl]'", file=sys.stderr)
        return 2

    torch.set_num_threads(args.threads)
    env = VecNormalize(make_vec_env(make_env, env_kwargs={"args": args}, seed=args.seed), norm_obs=False, gamma=args.gamma)
    lap_length_m = env.get_attr("circuit")[0].length_m
    model = PPO(
        "CnnPolicy", env, n_steps=args.n_steps, batch_size=min(args.batch_size, args.n_steps), n_epochs=args.n_epochs,
        learning_rate=args.learning_rate, gamma=args.gamma, policy_kwargs={"log_std_init": args.log_std_init},
        seed=args.seed, device="cpu", verbose=0,
    )
    print(f"training PPO (CnnPolicy) on {args.circuit} ({lap_length_m:.0f} m lap) for {args.total_timesteps} steps", flush=True)
    started = time.perf_counter()
    model.learn(total_timesteps=args.total_timesteps, callback=progress_callback(lap_length_m))
    env.close()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save(policy)
    print(f"trained in {time.perf_counter() - started:.0f} s; saved {policy}")
    drive = ["--agent", str(policy), "--trust-model", "--circuit", args.circuit]
    if args.evaluate:
        from simeval.run import main as run_main

        code = run_main([*drive, "--out", str(lap)])
        if code != 0:
            return code
    print(f"drive it again: python -m simeval.run {' '.join(drive)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
