#!/usr/bin/env bash
# sweep_overhead.sh - what `dgm sweep` adds around its trials: 100 trials
# that do almost nothing (1 step of a tiny VAE on 64 8x8 images) run with
# `dgm sweep -j 2`, against the same 100 runs started back to back on 2
# workers (`xargs -P 2` of `dgm run`). Prints both wall times and the
# ratio (target: at most 1.3).
# usage: bench/sweep_overhead.sh [BUILD_DIR] [TRIALS]
set -eu
build=${1:-build}
n=${2:-100}
dgm=$(cd "$build" && pwd)/bin/dgm
[ -x "$dgm" ] || { echo "no $dgm: build first" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/dgm-sweep-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/data"
/usr/bin/python3 - "$work/data" <<'PY'
import struct, sys
d = sys.argv[1]
for name, n in (("t", 64), ("s", 16)):
    with open(f"{d}/{name}-img", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 8, 8))
        for i in range(n):
            f.write(bytes(230 if k // 16 == i % 4 else 10 for k in range(64)))
    with open(f"{d}/{name}-lab", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(i % 4 for i in range(n)))
PY
cat > "$work/tiny.yaml" <<YAML
name: overhead
seed: 0
threads: 1
data: {plugin: idx, path: $work/data, train_images: t-img, train_labels: t-lab, test_images: s-img, test_labels: s-lab, batch_size: 16}
model:
  plugin: vae
  latent: 2
  encoder: {plugin: mlp, hidden: [8]}
  decoder: {plugin: mlp, hidden: [8]}
optimizer: {plugin: adam, lr: 0.01}
train: {steps: 1, log_every: 1, samples: 0}
metrics: []
sweep: {seeds: $n}
YAML
now() { date +%s.%N; }

t0=$(now)
seq 0 $((n - 1)) | xargs -P 2 -I{} "$dgm" run "$work/tiny.yaml" seed={} \
  --run-dir "$work/plain/{}" --threads 1 --quiet
t1=$(now)
"$dgm" sweep "$work/tiny.yaml" -j 2 --threads 1 --quiet \
  --sweep-dir "$work/sweep" > "$work/sweep.out" || { cat "$work/sweep.out"; exit 1; }
t2=$(now)
tail -n 1 "$work/sweep.out"
done_plain=$(ls "$work"/plain/*/summary.json | wc -l)
awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$n" -v p="$done_plain" 'BEGIN {
  plain = b - a; sweep = c - b;
  printf "%d runs back to back on 2 workers (xargs -P 2 dgm run): %.2f s (%d summaries)\n", n, plain, p;
  printf "dgm sweep -j 2 of the same %d trials:                   %.2f s\n", n, sweep;
  printf "ratio sweep / plain: %.2f (target <= 1.3)\n", sweep / plain }'
