"""``python -m simeval.train --framework torch|tf``: fit PilotNet on the data set, ship it with its card.

The training itself is ``simeval.build.training.trainer``: validation on held-out training
circuits after every epoch, early stopping, a checkpoint per epoch (rerun the same command to
resume; ``--fresh`` starts over); the model and its card go to ``agents/<torch-fp32|tf-fp32>/``.

Exit codes: 0 trained and shipped; 2 bad input (settings, missing or unfinished data set);
130 interrupted (Ctrl-C): the last finished epoch's checkpoint is kept, and the same command resumes from it.
"""

from __future__ import annotations

import argparse

from simeval.errors import run_command
from simeval.options import add_dataclass_arguments, command_parser, dataclass_from_args


def build_parser() -> argparse.ArgumentParser:
    from simeval.build.training.config import TrainConfig

    parser = command_parser("python -m simeval.train", __doc__)
    add_dataclass_arguments(parser, TrainConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    from simeval.build.training.config import TrainConfig
    from simeval.build.training.trainer import train

    args = build_parser().parse_args(argv)

    def body() -> int:
        card = train(dataclass_from_args(TrainConfig, args))
        all_test = card.test["all"]
        print(
            f"{card.name}: {card.parameters:,} parameters, {card.size_bytes / 1e6:.2f} MB, "
            f"validation MSE {card.validation['mse_normalized']:.5f}, test MSE {all_test['mse_normalized']:.5f} "
            f"(v {all_test['mse_v_mps2']:.3f} m2/s2, w {all_test['mse_w_radps2']:.4f} rad2/s2), "
            f"{card.training['seconds']:.0f} s"
        )
        return 0

    return run_command(body, "interrupted: the last finished epoch's checkpoint is kept; run the same command to resume from it")


if __name__ == "__main__":
    raise SystemExit(main())
