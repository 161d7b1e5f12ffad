#!/usr/bin/env bash
# The VAE figures of the issue, side by side: dgm's experiments/vae_fashion
# and the PyTorch reference (bench/vae_torch.py) with the same recipe, both
# on 2 threads; prints seconds per epoch, test negative ELBO and ratios.
# Usage: bench/compare_vae.sh [EPOCHS]   (from the repository root, after a
# Release build in build/)
set -euo pipefail
epochs=${1:-10}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
./build/bin/dgm run experiments/vae_fashion.yaml train.epochs="$epochs" \
  threads=2 --run-dir "$dir/dgm" --quiet
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
  /usr/bin/python3 bench/vae_torch.py --epochs "$epochs" --threads 2 \
  | tail -n 1 > "$dir/torch.json"
/usr/bin/python3 - "$dir/dgm/summary.json" "$dir/torch.json" "$epochs" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = json.load(open(sys.argv[2]))
epochs = int(sys.argv[3])
d_epoch = d["train_time_s"] / epochs
print(f"{'':24}{'dgm':>12}{'pytorch':>12}{'ratio':>10}")
print(f"{'seconds per epoch':24}{d_epoch:12.3f}{t['s_per_epoch']:12.3f}"
      f"{t['s_per_epoch'] / d_epoch:9.2f}x")
ne = d["final"]["neg_elbo"]
print(f"{'test -ELBO (nats)':24}{ne:12.2f}{t['test_neg_elbo']:12.2f}"
      f"{100 * (ne - t['test_neg_elbo']) / t['test_neg_elbo']:+9.2f}%")
if "iwae_nll" in d["final"]:
    print(f"{'test IWAE NLL, k=64':24}{d['final']['iwae_nll']:12.2f}")
PY
