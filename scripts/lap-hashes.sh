#!/usr/bin/env bash
# The regression laps' fingerprints, to show that a refactor keeps behaviour:
#   scripts/lap-hashes.sh OUT            (before the change: OUT=/tmp/before; after: /tmp/after)
#   diff /tmp/before/hashes.txt /tmp/after/hashes.txt
# Drives the CPU gate (every agent that loads here x the test circuits), the experts and torch-fp32
# under every scenario, seeded starts, fixed latency and the pybullet renderer, then writes one
# line per run to OUT/hashes.txt: its folder, the sha256 of trajectory.csv, and the sha256 of its
# metrics.json without the fields that measure this machine (wall times, inference times, the rate).
set -euo pipefail
OUT=${1:?usage: scripts/lap-hashes.sh OUT}
PY=${PY:-.venv/bin/python}
rm -rf "$OUT" && mkdir -p "$OUT"
sweep() { "$PY" -m simeval.sweep --no-plot --no-progress "$@" >/dev/null || [ $? -eq 2 ]; }  # 2: TensorRT cannot load here
sweep --agents all --circuits all --out "$OUT/gate"
sweep --agents expert,pure-pursuit,torch-fp32 --circuits all --scenarios all --out "$OUT/scenarios"
sweep --agents expert,torch-fp32 --circuits montreal --seeds 5 --out "$OUT/seeds"
sweep --agents expert,torch-fp32 --circuits simple --start random --seeds 3 --out "$OUT/random"
sweep --agents torch-fp32,tf-fp32 --circuits simple --timing latency --latency-ms 30 --out "$OUT/latency"
sweep --agents expert,torch-fp32 --circuits simple --renderer pybullet --out "$OUT/pybullet"
"$PY" - "$OUT" <<'PYEOF'
import hashlib, json, sys
from pathlib import Path

out = Path(sys.argv[1])
MEASURED = {"real_time_factor", "brain_frequency_rt_hz"}  # and every inference_time_*
lines = []
for trajectory in sorted(out.glob("*/runs/*/trajectory.csv")):
    run = trajectory.parent
    metrics = json.loads((run / "metrics.json").read_text())
    kept = {k: v for k, v in metrics.items() if k not in MEASURED and not k.startswith("inference_time")}
    lines.append(f"{run.relative_to(out)} {hashlib.sha256(trajectory.read_bytes()).hexdigest()} "
                 f"{hashlib.sha256(json.dumps(kept, sort_keys=True).encode()).hexdigest()[:16]}")
(out / "hashes.txt").write_text("\n".join(lines) + "\n")
print(f"{len(lines)} runs -> {out / 'hashes.txt'}")
PYEOF
