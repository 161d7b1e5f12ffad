#!/usr/bin/env bash
# The sequence-model figures of the issue, side by side: dgm's
# experiments/char_<model>_fortunes.yaml and the PyTorch reference
# (bench/char_torch.py) with the same corpus, sizes and recipe, both on 2
# threads; prints ms per training step, validation bits per character and
# ratios. Usage (from the repository root, after a Release build in build/):
#   bench/compare_char.sh [lstm|gru|transformer] [STEPS]
# Environment: DGM_BUILD, the build folder (default build); KEEP_RUN, a
# folder to keep dgm's run in (for `dgm sample --prompt`) instead of a
# temporary one.
set -euo pipefail
model=${1:-lstm}
steps=${2:-3000}
case "$model" in lstm | gru | transformer) ;; *)
  echo "usage: $0 [lstm|gru|transformer] [STEPS]" >&2
  exit 2
  ;;
esac
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
run=${KEEP_RUN:-$dir/dgm}
# Both sides time the steps after the first 10 (PyTorch's --warmup default:
# allocation and primitive creation apart): dgm logs its training clock at
# step 10 and at the last step.
warm=10
"./${DGM_BUILD:-build}/bin/dgm" run "experiments/char_${model}_fortunes.yaml" \
  train.steps="$steps" threads=2 train.log_every=$warm --run-dir "$run" \
  --quiet
LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
  /usr/bin/python3 bench/char_torch.py --model "$model" --steps "$steps" \
  --threads 2 | tail -n 1 > "$dir/torch.json"
/usr/bin/python3 - "$run/summary.json" "$dir/torch.json" "$run/metrics.jsonl" \
  "$warm" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = json.load(open(sys.argv[2]))
warm = int(sys.argv[4])
clock = {r["step"]: r["time"] for r in map(json.loads, open(sys.argv[3]))
         if "time" in r}
n = d["steps"]
if warm in clock and n in clock and n > warm:
    ms = 1000 * (clock[n] - clock[warm]) / (n - warm)
else:  # too few steps to leave the warm-up out
    ms = 1000 * d["train_time_s"] / n
print(f"{t['model']}, {d['steps']} steps")
print(f"{'':26}{'dgm':>10}{'pytorch':>10}{'ratio':>9}")
print(f"{'ms per training step':26}{ms:10.1f}{t['ms_per_step']:10.1f}"
      f"{t['ms_per_step'] / ms:8.2f}x")
b = d["final"]["bits_per_char"]
print(f"{'validation bits/char':26}{b:10.4f}{t['bits_per_char']:10.4f}"
      f"{100 * (b - t['bits_per_char']) / t['bits_per_char']:+8.2f}%")
PY
