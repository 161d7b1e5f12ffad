#!/usr/bin/env bash
# Install the Debian 12 packages dgm needs (idempotent; run as root).
set -euo pipefail
pkgs=(build-essential cmake pkg-config git
      libdnnl-dev libyaml-dev check zlib1g-dev libpng-dev libdlpack-dev
      libjansson-dev liblapacke-dev libopenblas-dev libopenblas0-openmp
      dataset-fashion-mnist python3-numpy
      # the PyTorch reference: DLPack exchange test, benchmarks
      python3-torch
      # a real single-node Slurm for the sweep launcher's test
      slurm-wlm munge
      # dgm report's test renders the page in a real browser
      chromium fonts-dejavu-core
      # scripts/fuzz.sh (run by run_tests.sh): clang's libFuzzer
      clang libclang-rt-14-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
