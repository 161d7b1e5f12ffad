#!/usr/bin/env bash
# mpi_steps.sh - the step times of docs/distributed-performance.md: the VAE and the
# DCGAN of experiments/ on 2 ranks x 1 thread (mpirun) against 1 process x
# 2 threads, and 1 process x 2 threads of the char-LSTM and the
# char-transformer (the alpha-beta model's compute). The 2-rank runs go
# three times: 2x1 with the gradient sums on the path dgm chooses (a shared
# window when both ranks are on this node, with the optimizer step split
# between the ranks), 2x1-repl on the window with every rank stepping every
# parameter (DGM_MPI_SHARD=0) and 2x1-iar forced onto MPI_Iallreduce
# buckets (DGM_MPI_SHM=0). Prints, per run: steps per second, ms per step,
# parameters, with 2 ranks the path and the optimizer step (split or
# replicated), the time in the gradient sums (and, split, the exchange of
# new values) and the part of it spent waiting after backward, and the CPU
# seconds of the whole command (user + system, start-up included).
# ROUNDS > 1 repeats the layouts of each model in turn (A, B, C, A, B, C,
# ...) and then prints each layout's median ms/step.
# usage: bench/mpi_steps.sh [BUILD_DIR] [STEPS] [ROUNDS] [MODEL...]
#   MODEL: vae dcgan char_lstm char_transformer (default: all)
#   LAYOUTS="1x2 2x1 2x1-repl" in the environment: only those layouts of the
#   VAE and the DCGAN, in that order each round
set -eu
build=${1:-build}
steps=${2:-60}
rounds=${3:-1}
shift $(($# < 3 ? $# : 3))
models=${*:-vae dcgan char_lstm char_transformer}
dgm=$(cd "$build" && pwd)/bin/dgm
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/tests/mpi_env.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/dgm-mpi-steps.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf '%-18s %-9s %8s %9s %10s %-10s %-10s %12s %14s %7s\n' model layout \
  steps/s ms/step params path opt_step allreduce_ms wait_ms/step cpu_s
one() { # NAME LAYOUT YAML ROUND
  local d=$work/$1-$2-$4 t0 t1
  local args=(run "$here/experiments/$3" --quiet --run-dir "$d"
    train.steps="$steps" train.samples=0 'metrics=[]')
  t0=$(cut -d' ' -f14-17 /proc/$$/stat)
  case $2 in
  1x2) "$dgm" "${args[@]}" --threads 2 >"$d.out" 2>&1 ;;
  2x1) mpirun -np 2 "$dgm" "${args[@]}" --threads 1 >"$d.out" 2>&1 ;;
  2x1-repl) DGM_MPI_SHARD=0 mpirun -np 2 "$dgm" "${args[@]}" --threads 1 \
              >"$d.out" 2>&1 ;;
  2x1-iar) DGM_MPI_SHM=0 mpirun -np 2 "$dgm" "${args[@]}" --threads 1 \
             >"$d.out" 2>&1 ;;
  esac || { echo "$1 $2 failed:"; cat "$d.out"; return 0; }
  t1=$(cut -d' ' -f14-17 /proc/$$/stat)
  /usr/bin/python3 - "$d/summary.json" "$1" "$2" "$t0" "$t1" \
    "$(getconf CLK_TCK)" "$work/rows" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
n = s["steps"]
ar = s.get("allreduce_s")
# the children's user + system ticks (fields 16, 17 of /proc/self/stat)
a = [int(x) for x in sys.argv[4].split()]
b = [int(x) for x in sys.argv[5].split()]
cpu = (b[2] + b[3] - a[2] - a[3]) / float(sys.argv[6])
ms = 1e3 / s["steps_per_s"]
print(f"{sys.argv[2]:<18} {sys.argv[3]:<9} {s['steps_per_s']:8.2f} "
      f"{ms:9.2f} {s['params_trainable']:10d} "
      f"{s.get('allreduce_path', '-'):<10} "
      f"{s.get('optimizer_step', '-'):<10} "
      f"{(1e3 * ar / n) if ar is not None else float('nan'):12.2f} "
      f"{(1e3 * s['allreduce_wait_s'] / n) if ar is not None else float('nan'):14.2f} "
      f"{cpu:7.1f}")
with open(sys.argv[7], "a") as f:
    f.write(f"{sys.argv[2]} {sys.argv[3]} {ms}\n")
PY
}
for m in $models; do
  case $m in
  vae) y=vae_fashion.yaml l=${LAYOUTS:-"1x2 2x1 2x1-repl 2x1-iar"} ;;
  dcgan) y=dcgan_fashion.yaml l=${LAYOUTS:-"1x2 2x1 2x1-repl 2x1-iar"} ;;
  char_lstm) y=char_lstm_fortunes.yaml l=1x2 ;;
  char_transformer) y=char_transformer_fortunes.yaml l=1x2 ;;
  *) echo "unknown model $m"; exit 2 ;;
  esac
  for r in $(seq "$rounds"); do
    for lay in $l; do one "$m" "$lay" "$y" "$r"; done
  done
done
[ "$rounds" -gt 1 ] && /usr/bin/python3 - "$work/rows" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    m, lay, ms = line.split()
    rows.setdefault((m, lay), []).append(float(ms))
print("median over rounds:")
for (m, lay), v in rows.items():
    print(f"{m:<18} {lay:<9} {statistics.median(v):9.2f} ms/step ({len(v)} runs)")
PY
exit 0
