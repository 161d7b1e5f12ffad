#!/usr/bin/env python3
"""scaling_model.py - the alpha-beta model of docs/distributed-performance.md.

  bench/scaling_model.py ALLREDUCE.txt STEPS.txt PNG [ALPHA_US]

ALLREDUCE.txt is what bench/mpi_allreduce printed (its fit line gives the
latency alpha; its overlap line the fraction f of an allreduce hidden behind
compute), STEPS.txt what bench/mpi_steps.sh printed (each model's step time
on one process and its parameter count). For each model, p ranks, a network
of bandwidth W:

  compute   T_c = c * b            c: seconds per example, measured; b: the
                                   per-rank batch (the experiment's)
  allreduce T_ar = 2 (p - 1) alpha + 2 (p - 1) / p * 4 P / W
                                   ring allreduce of P float gradients
  exposed   T_x = max(0, T_ar - f * 2/3 * T_c)
                                   backward is about 2/3 of a step; the
                                   fraction f of it that can hide a sum
  step      T = T_c + T_x          efficiency E = T_c / T

and the smallest global batch B = p * b with E >= 80%:
  b >= T_ar / (c * (0.25 + 2 f / 3)).
ALPHA_US replaces the measured latency (one machine's shared memory, or a
loaded machine's scheduler, says little about a network's). Prints the
markdown table; writes the plot (gnuplot, PNG): efficiency at 512 ranks
against the per-rank batch, on 10 and 100 Gb/s."""
import math
import os
import re
import subprocess
import sys
import tempfile

BATCH = {"vae": 128, "dcgan": 64, "char_lstm": 32, "char_transformer": 32}
RANKS = (8, 64, 512)
NETS = (10, 25, 100)  # Gb/s


def read_bench(path):
    alpha = f = None
    for line in open(path):
        m = re.search(r"a = ([0-9.e+-]+) s", line)
        if m:
            alpha = float(m.group(1))
        m = re.search(r"([0-9.]+)% of the allreduce hidden", line)
        if m:
            f = float(m.group(1)) / 100
    return max(alpha, 1e-6), f


def read_steps(path):
    models = {}
    for line in open(path):
        w = line.split()
        if len(w) >= 5 and w[1] == "1x2" and w[0] in BATCH:
            ms, params = float(w[3]), int(w[4])
            models[w[0]] = (ms / 1e3 / BATCH[w[0]], params)
    return models


def step(c, params, b, p, alpha, f, gbps):
    tc = c * b
    tar = 2 * (p - 1) * alpha + 2 * (p - 1) / p * 4 * params / (gbps * 1e9 / 8)
    tx = max(0.0, tar - f * 2 / 3 * tc)
    return tc, tar, tc + tx


def main():
    alpha, f = read_bench(sys.argv[1])
    models = read_steps(sys.argv[2])
    png = sys.argv[3]
    print(f"measured: alpha = {alpha * 1e6:.1f} us, overlap f = {f:.2f}")
    if len(sys.argv) > 4:
        alpha = float(sys.argv[4]) * 1e-6
        print(f"used: alpha = {alpha * 1e6:.1f} us")
    print()
    print("| model | params | c (ms/example) | ranks | network | per-rank batch "
          "| step (ms) | allreduce (ms) | efficiency | global batch for 80% |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, (c, params) in models.items():
        b = BATCH[name]
        for p in RANKS:
            for w in NETS:
                tc, tar, t = step(c, params, b, p, alpha, f, w)
                need = tar / (c * (0.25 + 2 * f / 3))
                bmin = p * max(1, math.ceil(need))
                print(f"| {name} | {params} | {c * 1e3:.3f} | {p} | {w} Gb/s | "
                      f"{b} | {t * 1e3:.2f} | {tar * 1e3:.2f} | "
                      f"{100 * tc / t:.0f}% | {bmin} |")
    with tempfile.TemporaryDirectory() as d:
        data = os.path.join(d, "eff.dat")
        with open(data, "w") as out:
            for name, (c, params) in models.items():
                for w in (10, 100):
                    out.write(f'"{name} {w} Gb/s"\n')
                    b = 1
                    while b <= 256:
                        tc, _, t = step(c, params, b, 512, alpha, f, w)
                        out.write(f"{b} {100 * tc / t:.2f}\n")
                        b *= 2
                    out.write("\n\n")
        n = 2 * len(models)
        script = (f'set terminal png size 900,560\nset output "{png}"\n'
                  'set logscale x 2\nset xlabel "per-rank batch"\n'
                  'set termoption noenhanced\n'
                  'set ylabel "parallel efficiency (%)"\nset yrange [0:105]\n'
                  'set key outside right\nset grid\n'
                  'set title "alpha-beta model, 512 ranks: efficiency '
                  'against the per-rank batch"\n'
                  f'plot for [i=0:{n - 1}] "{data}" index i using 1:2 '
                  'with linespoints title columnheader(1)\n')
        subprocess.run(["gnuplot"], input=script.encode(), check=True)


if __name__ == "__main__":
    main()
