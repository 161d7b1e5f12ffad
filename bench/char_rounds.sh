#!/usr/bin/env bash
# A character model's training step against PyTorch's and against the
# machine's measured GEMM ceiling, in alternating rounds. Each round
# measures the SGEMM ceiling (bench_sgemm: dnnl_sgemm 1024^3 on 2 threads),
# then dgm's step (experiments/char_<model>_fortunes.yaml) and PyTorch's
# (bench/char_torch.py, same sizes and recipe), their order swapped every
# round. Both time the steps after the first 10 in-process, on 2 threads;
# no evaluation. Per round and as medians it prints ms per step, the share
# of the ceiling (the useful FLOPs of dgm's op profile, the same for both:
# PyTorch's causal attention also computes the masked half of the scores,
# which is not counted) and PyTorch's time over dgm's.
# Usage (from the repository root, after a Release build):
#   bench/char_rounds.sh [lstm|gru|transformer] [ROUNDS] [STEPS]
# Environment: DGM_BUILD, the build folder (default build).
set -euo pipefail
model=${1:-transformer}
rounds=${2:-8}
steps=${3:-60}
case "$model" in lstm | gru | transformer) ;; *)
  echo "usage: $0 [lstm|gru|transformer] [ROUNDS] [STEPS]" >&2
  exit 2
  ;;
esac
warm=10
if ! [[ $rounds =~ ^[1-9][0-9]*$ && $steps =~ ^[0-9]+$ ]] || ((steps <= warm)); then
  echo "$0: ROUNDS must be >= 1 and STEPS > $warm (got '$rounds', '$steps')" >&2
  exit 2
fi
build=${DGM_BUILD:-build}
for b in "$build/bin/dgm" "$build/bin/bench_sgemm"; do
  [ -x "$b" ] || {
    echo "$0: $b not found: build first (cmake --build $build)" >&2
    exit 2
  }
done
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

run_dgm() { # -> "ms GFLOP_per_step"
  rm -rf "$dir/run"
  "$build/bin/dgm" run "experiments/char_${model}_fortunes.yaml" \
    train.steps="$steps" train.log_every=$warm 'metrics=[]' --threads 2 \
    --profile --quiet --run-dir "$dir/run" > /dev/null
  /usr/bin/python3 - "$dir/run" "$warm" "$steps" <<'PY'
import json, re, sys
run, warm, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
clock = {r["step"]: r["time"] for r in map(json.loads, open(run + "/metrics.jsonl"))
         if "time" in r}
if warm not in clock or n not in clock:
    sys.exit(f"char_rounds: no training clock at steps {warm} and {n} in {run}/metrics.jsonl")
total = open(run + "/profile.txt").read().strip().splitlines()[-1]
m = re.search(r"([0-9.]+) GFLOP/step", total)
if not m:
    sys.exit(f"char_rounds: no GFLOP/step in the profile's last line: {total}")
print(f"{1000 * (clock[n] - clock[warm]) / (n - warm):.2f} {m.group(1)}")
PY
}

run_torch() { # -> ms
  LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp \
    /usr/bin/python3 bench/char_torch.py --model "$model" --steps "$steps" \
    --warmup $warm --threads 2 --time-only | tail -n 1 |
    /usr/bin/python3 -c 'import json, sys; print("%.2f" % json.load(sys.stdin)["ms_per_step"])'
}

echo "char $model, $rounds rounds of $steps steps (the first $warm untimed), 2 threads; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%5s %9s %9s %8s %9s %8s %7s\n' round ceiling "dgm ms" "dgm %" "torch ms" "torch %" ratio
: > "$dir/rows"
for r in $(seq 1 "$rounds"); do
  c=$(OMP_NUM_THREADS=2 "$build/bin/bench_sgemm" | awk '{print $(NF-1)}')
  [[ $c =~ ^[0-9]+(\.[0-9]+)?$ ]] || {
    echo "$0: bench_sgemm printed no GFLOP/s (got '$c')" >&2
    exit 1
  }
  if ((r % 2)); then
    d=$(run_dgm)
    t=$(run_torch)
  else
    t=$(run_torch)
    d=$(run_dgm)
  fi
  read -r dms gf <<< "$d"
  awk -v r="$r" -v c="$c" -v d="$dms" -v t="$t" -v f="$gf" 'BEGIN {
    printf "%5d %9.1f %9.2f %7.1f%% %9.2f %7.1f%% %6.2fx\n", r, c, d,
      100 * f / (d / 1000) / c, t, 100 * f / (t / 1000) / c, t / d }' |
    tee -a "$dir/rows"
done
# medians of each column over the rounds
/usr/bin/python3 - "$dir/rows" <<'PY'
import statistics, sys
rows = [l.replace("%", "").replace("x", "").split()[1:]
        for l in open(sys.argv[1])]
m = [statistics.median(float(r[i]) for r in rows) for i in range(6)]
print("%6s %8.1f %9.2f %7.1f%% %9.2f %7.1f%% %6.2fx" % ("median", *m))
PY
