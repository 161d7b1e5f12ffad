#!/usr/bin/env bash
# Install the Debian 12 packages dgm needs (idempotent; run as root): every
# package a README command, a shipped experiment, a test, a bench script or
# scripts/fuzz.sh uses. Installs with --no-install-recommends, so anything
# only recommended by a package below is listed here itself.
# scripts/fresh_check.sh proves the list on a minimal Debian 12 root.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git
      libdnnl-dev libyaml-dev check zlib1g-dev libpng-dev libdlpack-dev
      libjansson-dev liblapacke-dev libopenblas-dev libopenblas0-openmp
      # JPEG: the `images` data set's decoder (framework/src/io/jpeg_read.c)
      # and the jpeg augment (robustness corruption `corrupt: [{jpeg: Q}]`)
      libjpeg62-turbo-dev
      # Debian's dnnl-config.cmake calls find_package(OpenCL REQUIRED);
      # libdnnl-dev only recommends the OpenCL development files
      ocl-icd-opencl-dev
      # data: Fashion-MNIST (IDX) and the char_* experiments' text corpus
      dataset-fashion-mnist fortunes
      # /usr/bin/python3 scripts: test fixtures, the PyTorch reference
      # (DLPack exchange test, bench/*_torch.py)
      python3-numpy python3-torch
      # a real single-node Slurm for the sweep launcher's test
      slurm-wlm munge
      # data-parallel training (host/dist.c) and its test: Open MPI
      libopenmpi-dev openmpi-bin
      # dgm report's test renders the page in a real browser
      chromium fonts-dejavu-core
      # scripts/fuzz.sh (run by run_tests.sh): clang's libFuzzer
      clang libclang-rt-14-dev libomp-dev
      # bench/scaling.sh and bench/scaling_model.py draw the plots of
      # docs/scaling.md and docs/distributed-performance.md
      gnuplot-nox)
# one dpkg-query for all: this runs before every README command
installed=$(dpkg-query -W -f='${Package} ${Status}\n' "${pkgs[@]}" 2>/dev/null |
  awk '$NF == "installed" && $(NF-1) == "ok" {print $1}' || true)
missing=()
for p in "${pkgs[@]}"; do
  grep -qxF "$p" <<<"$installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
