"""GPU check of the torch PilotNet: latency on CUDA against the CPU, and a closed-loop lap on CUDA.

    python bench/gpu_check.py [--calls 1000] [--circuit montreal]

Runs on a machine with PyTorch and a CUDA GPU (no TensorFlow or TensorRT needed). It loads the
shipped agents/torch-fp32 model and prints, in one table: batch-1 latency (median, p95) and
batch-64 throughput on the CPU (one thread) and on CUDA in fp32 and fp16 (autocast), then drives
one lockstep lap with the model on CUDA and reports its metrics. Without CUDA it prints the CPU
rows and says so.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from simeval.agents import load_agent  # noqa: E402
from simeval.agents.card import load_verified  # noqa: E402
from simeval.agents.formats.torch_state_dict import load_pilotnet  # noqa: E402
from simeval.agents.pilotnet import preprocess  # noqa: E402

WARMUP = 50


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def latency(model, batch: torch.Tensor, calls: int, device: str, half: bool) -> np.ndarray:
    """Wall time of one call, output copied back to the host (what a driving agent waits for)."""
    times = np.empty(calls)
    with torch.inference_mode(), torch.autocast(device_type=device, dtype=torch.float16, enabled=half):
        for _ in range(WARMUP):
            model(batch).cpu()
        for i in range(calls):
            start = time.perf_counter()
            model(batch).cpu()
            times[i] = time.perf_counter() - start
    return times


def throughput(model, batch: torch.Tensor, device: str, half: bool, repeats: int = 20) -> float:
    with torch.inference_mode(), torch.autocast(device_type=device, dtype=torch.float16, enabled=half):
        model(batch).cpu()
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            model(batch).cpu()
        _sync(device)
    return repeats * len(batch) / (time.perf_counter() - start)


def lap(circuit: str, device: str) -> dict:
    """One lockstep lap with the model on ``device``, through the real env and runner."""
    from simeval.env import FollowLineEnv
    from simeval.eval.metrics import compute_metrics
    from simeval.eval.run import RunConfig, run_episode

    agent = load_agent("torch-fp32")
    model = agent.runtime.model.to(device)

    def infer(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model(torch.from_numpy(batch).to(device))
            return out.cpu().numpy()

    agent.runtime.infer = infer
    env = FollowLineEnv(circuit)
    record = run_episode(env, agent, RunConfig(agent=f"torch-fp32@{device}", circuit=circuit))
    return compute_metrics(record, env.circuit).as_dict()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--circuit", default="montreal")
    args = parser.parse_args()
    torch.set_num_threads(1)
    _, path = load_verified("torch-fp32")
    frames = (np.random.default_rng(0).integers(0, 256, (64, 66, 200, 3))).astype(np.uint8)
    x = torch.from_numpy(preprocess(frames))
    rows = []
    setups = [("cpu", False)] + ([("cuda", False), ("cuda", True)] if torch.cuda.is_available() else [])
    for device, half in setups:
        model = load_pilotnet(path).to(device)
        b1, b64 = x[:1].to(device), x.to(device)
        t = latency(model, b1, args.calls, device, half)
        rows.append((f"{device} {'fp16' if half else 'fp32'}", np.median(t) * 1e3, np.percentile(t, 95) * 1e3, throughput(model, b64, device, half)))
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA GPU"
    print(f"torch {torch.__version__}; {gpu}; CPU threads 1; {args.calls} calls after {WARMUP} warm-up")
    print(f"{'setup':<12} {'p50 ms':>8} {'p95 ms':>8} {'b64 frames/s':>13}")
    for name, p50, p95, fps in rows:
        print(f"{name:<12} {p50:8.3f} {p95:8.3f} {fps:13.0f}")
    for device in [d for d, _ in setups if d == "cuda"] or ["cpu"]:
        m = lap(args.circuit, device)
        print(
            f"lap {args.circuit} on {device}: {m['termination']}, {m['percentage_completed']:.1f}%, lap {m['lap_time_s']} s, "
            f"speed {m['average_speed_mps']:.2f} m/s, MAE {m['deviation_mae_m']:.3f} m, "
            f"inference mean {m['inference_time_mean_s'] * 1e3:.3f} ms, brain RT {m['brain_frequency_rt_hz']:.0f} Hz"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
