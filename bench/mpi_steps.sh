#!/usr/bin/env bash
# mpi_steps.sh - the step times of docs/performance.md: the VAE and the
# DCGAN of experiments/ on 2 ranks x 1 thread (mpirun) against 1 process x
# 2 threads, and 1 process x 2 threads of the char-LSTM and the
# char-transformer (the alpha-beta model's compute). Prints, per run: steps
# per second, ms per step, parameters, and with 2 ranks the time in the
# gradient sums and the part of it spent waiting after backward.
# usage: bench/mpi_steps.sh [BUILD_DIR] [STEPS]
set -eu
build=${1:-build}
steps=${2:-60}
dgm=$(cd "$build" && pwd)/bin/dgm
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/tests/mpi_env.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/dgm-mpi-steps.XXXXXX")
trap 'rm -rf "$work"' EXIT
printf '%-18s %-7s %8s %9s %10s %12s %14s\n' model layout steps/s ms/step params \
  allreduce_ms wait_ms/step
one() { # NAME LAYOUT YAML
  local d=$work/$1-$2 s
  case $2 in
  1x2) "$dgm" run "$here/experiments/$3" --quiet --run-dir "$d" --threads 2 \
         train.steps="$steps" train.samples=0 'metrics=[]' >"$d.out" 2>&1 ;;
  2x1) mpirun -np 2 "$dgm" run "$here/experiments/$3" --quiet --run-dir "$d" \
         --threads 1 train.steps="$steps" train.samples=0 'metrics=[]' \
         >"$d.out" 2>&1 ;;
  esac || { echo "$1 $2 failed:"; cat "$d.out"; return 0; }
  /usr/bin/python3 - "$d/summary.json" "$1" "$2" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
n = s["steps"]
ar = s.get("allreduce_s")
print(f"{sys.argv[2]:<18} {sys.argv[3]:<7} {s['steps_per_s']:8.2f} "
      f"{1e3 / s['steps_per_s']:9.2f} {s['params_trainable']:10d} "
      f"{(1e3 * ar / n) if ar is not None else float('nan'):12.2f} "
      f"{(1e3 * s['allreduce_wait_s'] / n) if ar is not None else float('nan'):14.2f}")
PY
}
one vae 1x2 vae_fashion.yaml
one vae 2x1 vae_fashion.yaml
one dcgan 1x2 dcgan_fashion.yaml
one dcgan 2x1 dcgan_fashion.yaml
one char_lstm 1x2 char_lstm_fortunes.yaml
one char_transformer 1x2 char_transformer_fortunes.yaml
