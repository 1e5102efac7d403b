"""``python -m simeval.models``: describe a model file with a contract, and check it drives sensibly.

    python -m simeval.models init path/to/model.pth --preset dls-pilotnet-torch   # writes model.simeval.toml
    python -m simeval.models check path/to/model.onnx [--contract FILE]          # loads, runs, compares
    python -m simeval.models presets                                             # the named presets

A contract (``simeval.agents.contract``) says what the model's tensors mean; with it, the model
file drives wherever an agent name is accepted (``--agent path/to/model.onnx``).

Exit codes: 0 done (check: nothing looks wrong); 1 check found likely mistakes (listed);
2 bad input (a file, a contract, a format that carries code without --trust-model, a missing runtime);
130 interrupted (Ctrl-C): a contract file is written whole or not at all.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from simeval.errors import run_command
from simeval.options import command_parser

if TYPE_CHECKING:
    from simeval.agents.contract import OutputChannel

EXIT_FINDINGS = 1


def cmd_init(args: argparse.Namespace) -> int:
    """Write the contract of a model file, from a preset, to edit."""
    import dataclasses

    from simeval.agents.card import sha256_of
    from simeval.agents.contract import contract_path, preset, write_contract
    from simeval.agents.formats import FORMATS, format_of, get_format
    from simeval.errors import ContractError

    model = Path(args.model)
    if not model.exists():
        raise ContractError(f"{model}: no such model file")
    fmt = args.format or format_of(model)
    own = None
    if fmt == "sb3" and args.preset is None:  # a policy's saved spaces say its preset (sb3-native or sb3-symmetric)
        from simeval.agents.sb3_zip import policy_contract

        own = policy_contract(model)
    base = own or preset(args.preset or "simeval-pilotnet")
    fmt = fmt or (base.artifact.format if args.preset else None)
    if fmt is None:
        raise ContractError(f"{model}: cannot tell the model's format from its name; pass --format (one of "
                            f"{', '.join(sorted(FORMATS))}) or a --preset")
    get_format(fmt)
    architecture = base.artifact.architecture if fmt == "torch-state-dict" else None
    artifact = dataclasses.replace(
        base.artifact, path=model.name, format=fmt, architecture=architecture or ("simeval-pilotnet" if fmt == "torch-state-dict" else None),
        sha256=sha256_of(model) if args.pin and model.is_file() else None,
    )
    out = Path(args.out) if args.out else contract_path(model)
    if out.exists() and not args.force:
        raise ContractError(f"{out} already exists; pass --force to replace it")
    path = write_contract(out, dataclasses.replace(base, artifact=artifact, preset=args.preset or (own and own.preset)))
    print(f"wrote {path}: edit it, then `python -m simeval.models check {model}`")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Load a model through its contract and compare its commands with the expert's on a test lap."""
    from simeval.eval.model_check import check_model

    report = check_model(Path(args.model), contract=args.contract, circuit=args.circuit, frames=args.frames,
                         trust_model=args.trust_model)
    print(f"model: {report.name}")
    print(f"format: {report.contract.artifact.format}" + (f" ({report.contract.artifact.architecture})" if report.contract.artifact.architecture else "")
          + (f", preset {report.contract.preset}" if report.contract.preset else ""))
    print("inputs:  " + ", ".join(i.describe() for i in report.inputs))
    print("outputs: " + ", ".join(o.describe() for o in report.outputs))
    spec = report.contract.input
    crop = "no crop" if spec.crop_rows is None and spec.crop_cols is None else f"crop rows {spec.crop_rows} cols {spec.crop_cols}"
    print(f"input pipeline: {spec.image} image, {crop}, resize {spec.resize} "
          f"({spec.interpolation}), {spec.colour}, x{spec.scale:.6g}, mean {list(spec.mean)}, std {list(spec.std)}, "
          f"{spec.layout} {spec.dtype}, history {spec.history}")
    out = report.contract.output
    print(f"outputs used: v = {_affine(out.v)} m/s, w = {_affine(out.w)} rad/s")
    print(f"on the expert's lap of {report.circuit} ({report.frames} frames):")
    print(f"  v {report.v_range[0]:.2f}..{report.v_range[1]:.2f} m/s (expert {report.expert_v_range[0]:.2f}..{report.expert_v_range[1]:.2f}), "
          f"MSE {report.mse_v:.4g} m²/s²")
    print(f"  w {report.w_range[0]:.2f}..{report.w_range[1]:.2f} rad/s (expert {report.expert_w_range[0]:.2f}..{report.expert_w_range[1]:.2f}), "
          f"MSE {report.mse_w:.4g} rad²/s²")
    for finding in report.findings:
        print(f"likely mistake: {finding}")
    if not report.findings:
        print("nothing looks wrong: drive it with `python -m simeval.run --agent " + str(args.model)
              + (" --trust-model" if args.trust_model else "") + "`")
    return EXIT_FINDINGS if report.findings else 0


def _affine(channel: OutputChannel) -> str:
    """``scale * out[tensor][index] + offset`` as a person writes it."""
    sign = "-" if channel.offset < 0 else "+"
    return f"{channel.scale:g} * out[{channel.tensor}][{channel.index}] {sign} {abs(channel.offset):g}"


def cmd_presets(args: argparse.Namespace) -> int:
    """List the named contract presets."""
    from simeval.agents.contract import PRESETS

    width = max(len(n) for n in PRESETS)
    for name, contract in PRESETS.items():
        print(f"{name:<{width}}  {contract.artifact.format:<16}  {contract.notes}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from simeval.agents.contract import PRESETS
    from simeval.agents.formats import FORMATS

    parser = command_parser("python -m simeval.models", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="write a model file's contract (model.simeval.toml) to edit")
    init.add_argument("model", type=Path, help="the model file (or SavedModel folder)")
    init.add_argument("--preset", choices=sorted(PRESETS), help="start from a preset (default: simeval's own conventions)")
    init.add_argument("--format", choices=sorted(FORMATS), help="the file's format (default: from the preset or the file name)")
    init.add_argument("--pin", action="store_true", help="record the file's sha256, so a changed file is refused")
    init.add_argument("--out", type=Path, help="contract file to write (default: beside the model)")
    init.add_argument("--force", action="store_true", help="replace an existing contract")
    init.set_defaults(run=cmd_init)
    check = sub.add_parser("check", help="load a model through its contract and compare it with the expert on a test lap")
    check.add_argument("model", type=Path, help="the model file, or its contract file")
    check.add_argument("--contract", type=Path, help="the contract (default: the .simeval.toml beside the model)")
    check.add_argument("--circuit", default="simple", help="the test circuit whose expert lap to run it on (default simple)")
    check.add_argument("--frames", type=int, default=None, help="only the lap's first N frames (a quicker check)")
    check.add_argument("--trust-model", action="store_true", help="load a format that carries code (TorchScript, .pt2, SavedModel, engine, SB3 zip)")
    check.set_defaults(run=cmd_check)
    sub.add_parser("presets", help="list the named contract presets").set_defaults(run=cmd_presets)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.run(args), "interrupted: a contract file is written whole or not at all")


if __name__ == "__main__":
    raise SystemExit(main())
