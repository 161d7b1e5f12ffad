#!/usr/bin/env bash
# The DCGAN speed figure of the GAN issue, side by side: milliseconds per
# training step (D step + G step, batch 64) of experiments/dcgan_fashion
# in dgm and of the same model in PyTorch (bench/gan_torch.py), both on 2
# threads, and the ratio. The first WARM steps (primitive creation, cache
# warm-up) are left out of both.
# Usage: bench/compare_gan.sh [STEPS] [WARM]   (from the repository root,
# after a Release build in build/; DGM=path/to/dgm picks another binary)
set -euo pipefail
steps=${1:-200}
warm=${2:-20}
dgm=${DGM:-./build/bin/dgm}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$dgm" run experiments/dcgan_fashion.yaml train.steps=$((warm + steps)) \
  train.log_every="$warm" train.samples=0 threads=2 --run-dir "$dir/dgm" \
  --quiet
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
  /usr/bin/python3 bench/gan_torch.py --bench-steps "$steps" \
  --warmup "$warm" --threads 2 | tail -n 1 > "$dir/torch.json"
/usr/bin/python3 - "$dir/dgm/metrics.jsonl" "$dir/torch.json" "$warm" \
  "$steps" <<'PY'
import json, sys
warm, steps = int(sys.argv[3]), int(sys.argv[4])
times = {}
for line in open(sys.argv[1]):
    j = json.loads(line)
    if "time" in j:
        times[j["step"]] = j["time"]
d_ms = 1000.0 * (times[warm + steps] - times[warm]) / steps
t = json.load(open(sys.argv[2]))
t_ms = t["ms_per_step"]
print(f"{'DCGAN step, batch 64':24}{'dgm':>12}{'pytorch':>12}{'ratio':>10}")
print(f"{'ms per D+G step':24}{d_ms:12.1f}{t_ms:12.1f}{t_ms / d_ms:9.2f}x")
PY
