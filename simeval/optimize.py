"""``python -m simeval.optimize NAME [NAME ...] | all``: build optimized PilotNet variants from the
shipped fp32 models, each into ``agents/<NAME>/`` with its card.

The variants and their recipes are the table in ``simeval.agents.variants``; the builds are
``simeval.build.optimize``. With ``all``, variants that need hardware or libraries missing here
(TensorRT) are reported and skipped.

Exit codes: 0 every named variant was built; 2 bad input, or a named variant could not be built here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simeval.agents.variants import built_variants
from simeval.errors import AgentError, SimevalError
from simeval.options import command_parser


def build_parser() -> argparse.ArgumentParser:
    names = ", ".join(v.name for v in built_variants())
    parser = command_parser("python -m simeval.optimize", __doc__)
    parser.add_argument("names", nargs="+", help=f"variants to build, or 'all': {names}")
    parser.add_argument("--data", type=Path, default=None, help="data set folder (default data/pilotnet)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the calibration sample")
    return parser


def main(argv: list[str] | None = None) -> int:
    from simeval.build.optimize.builder import build
    from simeval.build.optimize.context import BuildContext
    from simeval.paths import dataset_dir

    args = build_parser().parse_args(argv)
    every = args.names == ["all"]
    names = [v.name for v in built_variants()] if every else args.names
    context = BuildContext(data=args.data or dataset_dir(), seed=args.seed)
    failures = 0
    for name in names:
        try:
            card = build(name, context)
        except AgentError as exc:
            print(f"{name}: skipped: {exc}", file=sys.stderr)
            failures += 0 if every else 1
            continue
        except SimevalError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(f"{name}: {card.size_bytes / 1e6:.2f} MB, test MSE {card.test['all']['mse_normalized']:.5f} "
              f"(parent {card.test['parent_all']['mse_normalized']:.5f})")
    return 2 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
