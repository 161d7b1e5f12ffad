#!/usr/bin/env bash
# The gan model's reuse_fake measured: ms per DCGAN training step
# (experiments/dcgan_fashion.yaml, D step + G step, batch 64, 2 threads)
# with the generator run twice per step (the default) and once
# (model.reuse_fake=true), in alternating rounds so that a change of the
# machine's load hits both alike. Prints each round and the median of
# each, and the ratio. The first WARM steps of each run are left out.
# Usage: bench/gan_reuse.sh [ROUNDS] [STEPS] [WARM]   (repository root,
# after a Release build in build/; DGM=path/to/dgm picks another binary)
set -euo pipefail
rounds=${1:-5}
steps=${2:-100}
warm=${3:-10}
dgm=${DGM:-./build/bin/dgm}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
ms() { # metrics.jsonl -> ms per step after the warm-up
  /usr/bin/python3 - "$1" "$warm" "$steps" <<'PY'
import json, sys
warm, steps = int(sys.argv[2]), int(sys.argv[3])
t = {}
for line in open(sys.argv[1]):
    j = json.loads(line)
    if "time" in j:
        t[j["step"]] = j["time"]
print(f"{1000.0 * (t[warm + steps] - t[warm]) / steps:.1f}")
PY
}
for r in $(seq "$rounds"); do
  for reuse in false true; do
    "$dgm" run experiments/dcgan_fashion.yaml train.steps=$((warm + steps)) \
      train.log_every="$warm" train.samples=0 threads=2 metrics=[] \
      model.reuse_fake=$reuse --run-dir "$dir/$reuse" --quiet
    m=$(ms "$dir/$reuse/metrics.jsonl")
    echo "$m" >> "$dir/$reuse.ms"
    echo "round $r reuse_fake=$reuse: $m ms/step (load $(cut -d' ' -f1 /proc/loadavg))"
    rm -rf "${dir:?}/$reuse"
  done
done
/usr/bin/python3 - "$dir/false.ms" "$dir/true.ms" <<'PY'
import statistics, sys
a = [float(x) for x in open(sys.argv[1])]
b = [float(x) for x in open(sys.argv[2])]
ma, mb = statistics.median(a), statistics.median(b)
print(f"median ms/step: reuse_fake=false {ma:.1f}, true {mb:.1f}; "
      f"false/true {ma / mb:.2f}x")
PY
