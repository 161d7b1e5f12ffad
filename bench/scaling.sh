#!/usr/bin/env bash
# How the char transformer's training step grows with the work, dgm and
# PyTorch side by side (bench/char_torch.py, same model and recipe):
# ms per step, GFLOP/s and peak RSS against batch size, width, sequence
# length and threads, each against the measured SGEMM ceiling (PyTorch's
# torch.mm at 1024^3 on the same threads: OpenMP OpenBLAS). Writes
# OUT/scaling.tsv and, with gnuplot, OUT/scaling_{batch,width,seq,threads,
# rss}.png.
# Usage (repository root, after a Release build in build/):
#   bench/scaling.sh [--full | --plot] [OUT]   (OUT default: scaling-out)
# The default run is short (a few points, a few steps each: minutes on a
# quiet machine); --full sweeps batch 16-512, width 64-512, T 32-512 with
# more steps; --plot only redraws the plots from OUT/scaling.tsv.
# Environment: DGM_BUILD (default build).
set -euo pipefail
full=0 plot_only=0
case "${1:-}" in
  --full) full=1 && shift ;;
  --plot) plot_only=1 && shift ;;
esac
out=${1:-scaling-out}
mkdir -p "$out"
dgm="./${DGM_BUILD:-build}/bin/dgm"
torch_env=(env LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp)
if [ $full = 1 ]; then
  steps=30 batches="16 32 64 128 256 512" widths="64 128 256 512"
  seqs="32 64 128 256 512"
else
  steps=8 batches="16 32 64" widths="64 128 256" seqs="32 64 128"
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# GFLOP of one training step (3x the forward's multiply-adds): per layer the
# four linear layers and the attention products over the causal half of the
# T x T pairs, then the head (vocabulary 100, about the corpus's).
gflop() { # N T D
  awk -v N="$1" -v T="$2" -v D="$3" 'BEGIN {
    fwd = 4 * (2 * N * T * D * 12 * D + 2 * N * T * (T + 1) * D) + 2 * N * T * D * 100
    printf "%.4f", 3 * fwd / 1e9 }'
}

ceiling() { # threads -> SGEMM GFLOP/s
  "${torch_env[@]}" /usr/bin/python3 - "$1" <<'PY'
import sys, time, torch
torch.set_num_threads(int(sys.argv[1]))
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
for _ in range(3):
    a @ b
best = 1e9
for _ in range(10):
    t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
print(f"{2 * 1024**3 / best / 1e9:.1f}")
PY
}

# One point for each framework: prints "ms rss_mb" (steady-state ms per
# step: the logged times of the steps after the first; peak RSS).
dgm_point() { # N T D threads
  local d="$tmp/run"
  rm -rf "$d"
  /usr/bin/time -f %M -o "$tmp/rss" "$dgm" run \
    experiments/char_transformer_fortunes.yaml data.batch_size="$1" \
    data.seq_len="$2" model.width="$3" threads="$4" train.steps="$steps" \
    train.log_every=1 metrics=[] --run-dir "$d" --quiet
  /usr/bin/python3 - "$d/metrics.jsonl" "$tmp/rss" <<'PY'
import json, sys
t = [json.loads(l)["time"] for l in open(sys.argv[1]) if '"time"' in l]
ms = 1000 * (t[-1] - t[0]) / (len(t) - 1)
print(f"{ms:.2f} {int(open(sys.argv[2]).read().split()[-1]) / 1024:.0f}")
PY
}

torch_point() { # N T D threads
  /usr/bin/time -f %M -o "$tmp/rss" "${torch_env[@]}" /usr/bin/python3 \
    bench/char_torch.py --model transformer --steps $((steps + 10)) \
    --batch "$1" --seq-len "$2" --width "$3" --threads "$4" --time-only \
    > "$tmp/torch.json"
  /usr/bin/python3 - "$tmp/torch.json" "$tmp/rss" <<'PY'
import json, sys
ms = json.loads(open(sys.argv[1]).read().splitlines()[-1])["ms_per_step"]
print(f"{ms:.2f} {int(open(sys.argv[2]).read().split()[-1]) / 1024:.0f}")
PY
}

tsv="$out/scaling.tsv"
if [ $plot_only = 0 ]; then
  c1=$(ceiling 1)
  c2=$(ceiling 2)
  echo "# SGEMM 1024^3 ceiling: $c1 GFLOP/s (1 thread), $c2 (2 threads); load: $(cut -d' ' -f1-3 /proc/loadavg)" > "$tsv"
  printf "axis\tx\tN\tT\tD\tthreads\tgflop\tdgm_ms\tdgm_rss_mb\ttorch_ms\ttorch_rss_mb\n" >> "$tsv"
  point() { # axis x N T D threads
    local g dm tm
    g=$(gflop "$3" "$4" "$5")
    dm=$(dgm_point "$3" "$4" "$5" "$6")
    tm=$(torch_point "$3" "$4" "$5" "$6")
    printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$1" "$2" "$3" "$4" "$5" \
      "$6" "$g" "${dm// /$'\t'}" "${tm// /$'\t'}" | tee -a "$tsv"
  }
  for b in $batches; do point batch "$b" "$b" 64 128 2; done
  for w in $widths; do point width "$w" 32 64 "$w" 2; done
  for s in $seqs; do point seq "$s" 32 "$s" 128 2; done
  for n in 1 2; do point threads "$n" 32 64 128 "$n"; done
fi
c1=$(sed -n 's/^# SGEMM 1024^3 ceiling: \([0-9.]*\) .*/\1/p' "$tsv")
c2=$(sed -n 's/^# SGEMM.*GFLOP\/s (1 thread), \([0-9.]*\) .*/\1/p' "$tsv")

command -v gnuplot > /dev/null || {
  echo "scaling: gnuplot not found (Debian package gnuplot-nox): no plots" >&2
  exit 0
}
for axis in batch width seq threads; do
  case $axis in
    batch) xl="batch size (T 64, width 128)" ;;
    width) xl="width (batch 32, T 64)" ;;
    seq) xl="sequence length T (batch 32, width 128)" ;;
    threads) xl="threads (batch 32, T 64, width 128)" ;;
  esac
  ceil=$c2
  gnuplot <<GP
set terminal pngcairo size 720,420 noenhanced
set output "$out/scaling_$axis.png"
set title "char transformer training step: GFLOP/s against $axis"
set xlabel "$xl"
set ylabel "GFLOP/s (3x forward multiply-adds / step time)"
set key left top
set grid
$( [ $axis = threads ] && echo 'set xtics 1' || echo 'set logscale x 2' )
set yrange [0:*]
plot "< grep -P '^$axis\t' $tsv" using 2:(\$7/\$8*1000) with linespoints lw 2 title "dgm", \
     "" using 2:(\$7/\$10*1000) with linespoints lw 2 title "PyTorch", \
     $( [ $axis = threads ] && echo "\"\" using 2:(\$2 == 1 ? $c1 : $c2) with lines dt 2 title \"SGEMM ceiling\"" || echo "$ceil with lines dt 2 title \"SGEMM ceiling (2 threads)\"" )
GP
done
gnuplot <<GP
set terminal pngcairo size 720,420 noenhanced
set output "$out/scaling_rss.png"
set title "peak RSS of the training process"
set xlabel "point (batch, width, T sweeps in order)"
set ylabel "MB"
set key left top
set grid
plot "< grep -vP '^(#|axis)' $tsv" using 0:9 with linespoints lw 2 title "dgm", \
     "" using 0:11 with linespoints lw 2 title "PyTorch"
GP
echo "scaling: $tsv and $out/scaling_*.png"
