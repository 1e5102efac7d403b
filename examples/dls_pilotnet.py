"""Models made the way JdeRobot DeepLearningStudio makes them, to try simeval's model contracts on
without a model of your own.

    python examples/dls_pilotnet.py torch OUT
        simeval's torch-fp32 as DLS's PyTorch PilotNet (their key names, their output convention
        v = 17.5 p0 + 6.5, w = 14.2 p1 - 7.1, their input: rows 240:480 of the 640x480 camera image
        resized to 200x66, NCHW): OUT/pilot_net_model_best.pth (state dict), OUT/baseline.pt
        (TorchScript trace, as their optimisation script writes) and OUT/pilot_net.onnx.
    python examples/dls_pilotnet.py keras OUT [--data DATA] [--frames 2048] [--epochs 2]
        DLS's Keras PilotNet ('same' padding, about 17.0 M parameters, the whole image resized,
        ImageNet mean and std), trained briefly here on a simeval data set (`python -m
        simeval.dataset`): OUT/pilotnet_dls_keras.h5 and its TFLite conversion.

The files come bare, as your own export would; `python -m simeval.models init FILE --preset
dls-pilotnet-torch` (or dls-torchscript, dls-pilotnet-keras, dls-tflite) writes their contract.
`--contracts` writes it with them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simeval.agents.card import model_dir
from simeval.build.dls import train_dls_keras, write_dls_models
from simeval.paths import dataset_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind", choices=("torch", "keras"), help="which DeepLearningStudio PilotNet to write")
    parser.add_argument("out", type=Path, help="folder to write the model files to")
    parser.add_argument("--contracts", action="store_true", help="write each file's contract beside it")
    parser.add_argument("--data", type=Path, default=dataset_dir(), help=f"keras: the simeval data set to train on (default {dataset_dir()})")
    parser.add_argument("--frames", type=int, default=2048, help="keras: training frames (default 2048)")
    parser.add_argument("--epochs", type=int, default=2, help="keras: epochs (default 2)")
    args = parser.parse_args(argv)
    if args.kind == "torch":
        paths = write_dls_models(model_dir("torch-fp32") / "model.pt", args.out, contracts=args.contracts)
    else:
        if not (args.data / "manifest.json").is_file():
            print(f"error: no data set in {args.data}: make one with `python -m simeval.dataset`", file=sys.stderr)
            return 2
        paths = train_dls_keras(args.data, args.out, frames=args.frames, epochs=args.epochs, contracts=args.contracts)
    for path in paths.values():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
