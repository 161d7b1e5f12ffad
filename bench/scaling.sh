#!/usr/bin/env bash
# How each workload's training step grows with the work, dgm and PyTorch
# side by side (the PyTorch twins: bench/vae_torch.py, gan_torch.py,
# char_torch.py, same models and recipes): ms per step, GFLOP/s and peak
# RSS against batch size (VAE, DCGAN), width (VAE hidden layer,
# transformer), sequence length (char LSTM, transformer; the transformer
# again with the fused attention op, dgm only) and threads
# (all), each against the measured SGEMM ceiling (PyTorch's torch.mm at
# 1024^3 on the same threads: OpenMP OpenBLAS). Writes OUT/scaling.tsv
# and, with gnuplot, OUT/scaling_<workload>_<axis>.png (three panels:
# ms per step, GFLOP/s with the ceiling, peak RSS).
# Usage (repository root, after a Release build in build/):
#   bench/scaling.sh [--full | --smoke | --plot] [--workloads LIST] [OUT]
#   LIST: comma-separated, of vae,dcgan,lstm,transformer (default: all)
#   OUT: default scaling-out
# The default run is short (three points per sweep, 10 timed steps each:
# 5-8 minutes on a quiet 2-core machine by the estimate in
# docs/scaling.md); --full sweeps every point with more steps (15-25
# minutes); --plot only
# redraws the plots from OUT/scaling.tsv; --smoke runs the smallest point
# of each sweep (both of threads) and one timed step (figures meaningless: it checks that every
# workload runs in both frameworks and every plot is drawn). Progress goes
# to stderr, the total time at the end.
# Environment: DGM_BUILD (default build); SCALING_WARM, SCALING_STEPS
# (untimed and timed steps per point).
set -euo pipefail
full=0 smoke=0 plot_only=0 workloads=vae,dcgan,lstm,transformer
while [ $# -gt 0 ]; do
  case "$1" in
    --full) full=1 && shift ;;
    --plot) plot_only=1 && shift ;;
    --smoke) smoke=1 && shift ;;
    --workloads) workloads=$2 && shift 2 ;;
    --workloads=*) workloads=${1#*=} && shift ;;
    -*) echo "scaling: unknown option $1" >&2 && exit 2 ;;
    *) break ;;
  esac
done
for w in ${workloads//,/ }; do
  case $w in vae | dcgan | lstm | transformer) ;;
    *) echo "scaling: unknown workload '$w' (vae, dcgan, lstm, transformer)" >&2
       exit 2 ;;
  esac
done
want() { [[ ",$workloads," == *",$1,"* ]]; }
out=${1:-scaling-out}
mkdir -p "$out"
dgm="./${DGM_BUILD:-build}/bin/dgm"
torch_env=(env LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu/openblas-openmp)
if [ $full = 1 ]; then
  warm=5 steps=20 batches="16 32 64 128 256 512"
  hiddens="128 256 512 1024 2048" widths="64 128 256 512"
  seqs="32 64 128 256 512" tbatches="16 32 64 128"
elif [ $smoke = 1 ]; then
  warm=1 steps=1 batches=16 hiddens=128 widths=64 seqs=32 tbatches=16
else
  warm=3 steps=10 batches="16 64 256" hiddens="128 512 2048"
  widths="64 128 256" seqs="32 128 512" tbatches=""
fi
warm=${SCALING_WARM:-$warm} steps=${SCALING_STEPS:-$steps}
# the VAE's steps cost milliseconds: time more of them (not in a smoke run)
vae_warm=$((warm * 4)) vae_steps=$((steps * 10))
[ $smoke = 1 ] && vae_warm=$warm vae_steps=$steps
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$(date +%s)

# GFLOP of one training step: 3x the forward's multiply-adds (x2 FLOPs),
# the same count for both frameworks.
gflop() { # workload N T D
  awk -v w="$1" -v N="$2" -v T="$3" -v D="$4" 'BEGIN {
    if (w == "vae") # 784-D-(20,20)-D-784
      fwd = 2 * N * D * (784 + 40 + 20 + 784)
    else if (w == "dcgan") { # G 64-6272, 128->64 @7->14, 64->1 @14->28;
      # D 1->64 @28->14, 64->128 @14->7, 6272->1; per step 3 G + 8 D
      # forwards (the PyTorch example: G once, D on real and fake and
      # again on fake, each backward 2x its forward, D-only data
      # gradients in the G phase)
      G = 64 * 6272 + 49 * 128 * 64 * 16 + 196 * 64 * 16
      Dm = 196 * 64 * 16 + 49 * 128 * 64 * 16 + 6272
      printf "%.4f", 2 * N * (3 * G + 8 * Dm) / 1e9; exit }
    else if (w == "lstm") # 2 layers, hidden 256, embedding 64, vocab ~100
      fwd = 2 * N * T * (4 * 256 * (64 + 256) + 4 * 256 * 512 + 256 * 100)
    else # transformer, 4 layers: linear layers and the causal attention
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

rss_mb() { awk 'END { printf "%.0f", $1 / 1024 }' "$tmp/rss"; }

# dgm on one point: prints "ms rss_mb" (ms per step over the logged steps
# after the first W; peak RSS), or "nan nan" when the run fails.
dgm_point() { # workload N T D threads axis
  local d="$tmp/run" w=$warm s=$steps
  local -a set
  rm -rf "$d"
  case $1 in
    vae) w=$vae_warm s=$vae_steps
      set=(experiments/vae_fashion.yaml data.batch_size="$2"
        "model.encoder.hidden=[$4]" "model.decoder.hidden=[$4]") ;;
    dcgan) set=(experiments/dcgan_fashion.yaml data.batch_size="$2"
        model.reuse_fake=true) ;;
    lstm) set=(experiments/char_lstm_fortunes.yaml data.batch_size="$2"
        data.seq_len="$3") ;;
    transformer) set=(experiments/char_transformer_fortunes.yaml
        data.batch_size="$2" data.seq_len="$3" model.width="$4") ;;
  esac
  # the seq sweep again with the fused attention op (dgm only)
  [ "$6" = seqfused ] && set+=(model.block.fused_attention=true)
  if ! /usr/bin/time -f %M -o "$tmp/rss" "$dgm" run "${set[@]}" \
    threads="$5" "train={steps: $((w + s)), log_every: 1, samples: 0}" \
    metrics=[] --run-dir "$d" --quiet > "$tmp/log" 2>&1; then
    echo "scaling: dgm failed on $*: $(tail -n 1 "$tmp/log")" >&2
    echo "nan nan"
    return
  fi
  /usr/bin/python3 - "$d/metrics.jsonl" "$w" "$(rss_mb)" <<'PY'
import json, sys
t = [json.loads(l)["time"] for l in open(sys.argv[1]) if '"time"' in l]
w = int(sys.argv[2])
print(f"{1000 * (t[-1] - t[w - 1]) / (len(t) - w):.2f} {sys.argv[3]}")
PY
}

torch_point() { # workload N T D threads axis
  local -a cmd
  if [ "$6" = seqfused ]; then # PyTorch has no such switch
    echo "nan nan"
    return
  fi
  case $1 in
    vae) cmd=(bench/vae_torch.py --bench-steps "$vae_steps" --warmup
        "$vae_warm" --batch "$2" --hidden "$4") ;;
    dcgan) cmd=(bench/gan_torch.py --bench-steps "$steps" --warmup "$warm"
        --batch "$2") ;;
    lstm) cmd=(bench/char_torch.py --model lstm --steps $((warm + steps))
        --warmup "$warm" --batch "$2" --seq-len "$3" --time-only) ;;
    transformer) cmd=(bench/char_torch.py --model transformer
        --steps $((warm + steps)) --warmup "$warm" --batch "$2"
        --seq-len "$3" --width "$4" --time-only) ;;
  esac
  if ! /usr/bin/time -f %M -o "$tmp/rss" "${torch_env[@]}" /usr/bin/python3 \
    "${cmd[@]}" --threads "$5" > "$tmp/torch.json" 2> "$tmp/log"; then
    echo "scaling: PyTorch failed on $*: $(tail -n 1 "$tmp/log")" >&2
    echo "nan nan"
    return
  fi
  /usr/bin/python3 - "$tmp/torch.json" "$(rss_mb)" <<'PY'
import json, sys
ms = json.loads(open(sys.argv[1]).read().splitlines()[-1])["ms_per_step"]
print(f"{ms:.2f} {sys.argv[2]}")
PY
}

# The points: "workload axis x N T D threads", one per line.
points() {
  local b h wd s n
  if want vae; then
    for b in $batches; do echo "vae batch $b $b 0 400 2"; done
    for h in $hiddens; do echo "vae width $h 128 0 $h 2"; done
    for n in 1 2; do echo "vae threads $n 128 0 400 $n"; done
  fi
  if want dcgan; then
    for b in $batches; do echo "dcgan batch $b $b 0 64 2"; done
    for n in 1 2; do echo "dcgan threads $n 64 0 64 $n"; done
  fi
  if want lstm; then
    for s in $seqs; do echo "lstm seq $s 32 $s 256 2"; done
    for n in 1 2; do echo "lstm threads $n 32 64 256 $n"; done
  fi
  if want transformer; then
    for b in $tbatches; do echo "transformer batch $b $b 64 128 2"; done
    for wd in $widths; do echo "transformer width $wd 32 64 $wd 2"; done
    for s in $seqs; do echo "transformer seq $s 32 $s 128 2"; done
    for s in $seqs; do echo "transformer seqfused $s 32 $s 128 2"; done
    for n in 1 2; do echo "transformer threads $n 32 64 128 $n"; done
  fi
}

tsv="$out/scaling.tsv"
if [ $plot_only = 0 ]; then
  c1=$(ceiling 1)
  c2=$(ceiling 2)
  echo "# SGEMM 1024^3 ceiling: $c1 GFLOP/s (1 thread), $c2 (2 threads); load: $(cut -d' ' -f1-3 /proc/loadavg); $( [ $full = 1 ] && echo full || { [ $smoke = 1 ] && echo smoke; } || echo short) run" > "$tsv"
  printf "workload\taxis\tx\tN\tT\tD\tthreads\tgflop\tdgm_ms\tdgm_rss_mb\ttorch_ms\ttorch_rss_mb\n" >> "$tsv"
  points > "$tmp/points"
  total=$(wc -l < "$tmp/points")
  echo "scaling: $total points ($workloads), SGEMM ceiling $c1 / $c2 GFLOP/s on 1 / 2 threads" >&2
  k=0
  while read -r w axis x N T D th; do
    k=$((k + 1))
    g=$(gflop "$w" "$N" "$T" "$D")
    dm=$(dgm_point "$w" "$N" "$T" "$D" "$th" "$axis" < /dev/null)
    tm=$(torch_point "$w" "$N" "$T" "$D" "$th" "$axis" < /dev/null)
    printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$w" "$axis" "$x" \
      "$N" "$T" "$D" "$th" "$g" "${dm// /$'\t'}" "${tm// /$'\t'}" >> "$tsv"
    printf "[%d/%d %4ds] %-11s %-7s %5s: dgm %9s ms, PyTorch %9s ms (%s GFLOP/step)\n" \
      "$k" "$total" $(($(date +%s) - start)) "$w" "$axis" "$x" "${dm%% *}" \
      "${tm%% *}" "$g" >&2
  done < "$tmp/points"
fi
c1=$(sed -n 's/^# SGEMM 1024^3 ceiling: \([0-9.]*\) .*/\1/p' "$tsv")
c2=$(sed -n 's/^# SGEMM.*GFLOP\/s (1 thread), \([0-9.]*\) .*/\1/p' "$tsv")

# Parallel efficiency from the threads sweeps: t(1) / (2 t(2)).
awk -F'\t' '$2 == "threads" { t[$1 "," $7] = $9; p[$1 "," $7] = $11; w[$1] = 1 }
  END { for (k in w) if (t[k ",2"] > 0 && p[k ",2"] > 0)
    printf "scaling: %s on 2 threads: parallel efficiency dgm %.0f%%, PyTorch %.0f%%\n",
      k, 50 * t[k ",1"] / t[k ",2"], 50 * p[k ",1"] / p[k ",2"] }' "$tsv"

if ! command -v gnuplot > /dev/null; then
  echo "scaling: gnuplot not found (Debian package gnuplot-nox): no plots" >&2
else
  n_plots=0
  for pair in vae:batch vae:width vae:threads dcgan:batch dcgan:threads \
    lstm:seq lstm:threads transformer:batch transformer:width \
    transformer:seq transformer:threads; do
    w=${pair%%:*} axis=${pair#*:}
    want "$w" || continue
    grep -qP "^$w\t$axis\t" "$tsv" || continue
    case $w in
      vae) name="MLP VAE 784-H-20" ;;
      dcgan) name="DCGAN 28x28 (D + G step)" ;;
      lstm) name="char LSTM 2x256" ;;
      transformer) name="char transformer, 4 layers, 4 heads" ;;
    esac
    case $pair in # the settings the sweep holds fixed
      vae:batch) fixed="H 400, 2 threads" ;;
      vae:width) fixed="batch 128, 2 threads" ;;
      vae:threads) fixed="batch 128, H 400" ;;
      dcgan:batch) fixed="2 threads" ;;
      dcgan:threads) fixed="batch 64" ;;
      lstm:seq) fixed="batch 32, 2 threads" ;;
      lstm:threads) fixed="batch 32, T 64" ;;
      transformer:batch) fixed="T 64, width 128, 2 threads" ;;
      transformer:width) fixed="batch 32, T 64, 2 threads" ;;
      transformer:seq) fixed="batch 32, width 128, 2 threads" ;;
      transformer:threads) fixed="batch 32, T 64, width 128" ;;
    esac
    case $axis in
      batch) xl="batch size" ;;
      width) [ "$w" = vae ] && xl="hidden width H" || xl="width" ;;
      seq) xl="sequence length T" ;;
      threads) xl="threads" ;;
    esac
    sel="< grep -P '^$w\t$axis\t' $tsv"
    fused=(); fused_g=(); fused_r=()
    if [ "$pair" = transformer:seq ] && grep -qP '^transformer\tseqfused\t' "$tsv"; then
      f="\"< grep -P '^transformer\\tseqfused\\t' $tsv\""
      fused=(", $f using 3:9 with linespoints lw 2 dt 3 title 'dgm, fused attention'")
      fused_g=(", $f using 3:(\$8/\$9*1000) with linespoints lw 2 dt 3 title 'dgm, fused attention'")
      fused_r=(", $f using 3:10 with linespoints lw 2 dt 3 title 'dgm, fused attention'")
    fi
    if [ "$axis" = threads ]; then
      xs='set xtics 1; set xrange [0.5:2.5]'
      ceil="\"\" using 3:(\$3 == 1 ? $c1 : $c2) with linespoints dt 2 lc rgb 'gray40' title 'SGEMM ceiling'"
    else
      xs='set logscale x 2'
      ceil="$c2 with lines dt 2 lc rgb 'gray40' title 'SGEMM ceiling (2 threads)'"
    fi
    gnuplot <<GP
set terminal pngcairo size 1260,400 noenhanced font ",9"
set output "$out/scaling_${w}_${axis}.png"
set multiplot layout 1,3 title "$name: against $xl ($fixed)"
set grid
set key left top
set xlabel "$xl"
$xs
set ylabel "ms per training step"
set logscale y
plot "$sel" using 3:9 with linespoints lw 2 title "dgm", \
     "" using 3:11 with linespoints lw 2 title "PyTorch" ${fused[*]}
unset logscale y
set yrange [0:*]
set ylabel "GFLOP/s (3x forward multiply-adds / step time)"
plot "$sel" using 3:(\$8/\$9*1000) with linespoints lw 2 title "dgm", \
     "" using 3:(\$8/\$11*1000) with linespoints lw 2 title "PyTorch", \
     $ceil ${fused_g[*]}
set ylabel "peak RSS (MB)"
plot "$sel" using 3:10 with linespoints lw 2 title "dgm", \
     "" using 3:12 with linespoints lw 2 title "PyTorch" ${fused_r[*]}
unset multiplot
GP
    n_plots=$((n_plots + 1))
  done
  echo "scaling: $n_plots plots $out/scaling_*.png" >&2
fi
echo "scaling: $tsv; total time $(($(date +%s) - start)) s"
