#!/usr/bin/env bash
# Set up, build with -Werror and run the whole suite twice: a normal build,
# then AddressSanitizer + UndefinedBehaviorSanitizer; then fuzz each input
# reader briefly (scripts/fuzz.sh: libFuzzer, 15 s per harness).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
jobs=$(nproc)
for variant in release asan; do
  dir=build-ci-$variant
  opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DDGM_WERROR=ON)
  [ "$variant" = asan ] && opts+=(-DDGM_SANITIZE=ON)
  echo "== $variant build ($dir)"
  cmake -S . -B "$dir" "${opts[@]}" >/dev/null
  cmake --build "$dir" -j "$jobs"
  echo "== $variant tests"
  if [ "$variant" = asan ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  fi
  (cd "$dir" && ctest --output-on-failure --timeout 900)
done
echo "== fuzzing (15 s per harness)"
./scripts/fuzz.sh 15
