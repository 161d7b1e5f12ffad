#!/usr/bin/env bash
# Set up, build, and train the main experiment: the Fashion-MNIST VAE.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
exec ./build/bin/dgm run experiments/vae_fashion.yaml "$@"
