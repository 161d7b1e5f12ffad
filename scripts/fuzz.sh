#!/usr/bin/env bash
# Fuzz dgm's readers with libFuzzer (clang) under ASan + UBSan.
#
#   scripts/fuzz.sh [SECONDS] [HARNESS...]   run each harness SECONDS (60)
#   scripts/fuzz.sh --replay HARNESS FILE... replay inputs (a crash file)
#
# Builds build-fuzz/ (CC=clang, -DDGM_FUZZ=ON: the library and plugins
# instrumented with -fsanitize=fuzzer-no-link,address,undefined), then runs
# each harness on a copy of its seed corpus (tests/fuzz/corpus/<harness>;
# the checked-in corpus never grows) with -timeout=1 (no input may take a
# second), -rss_limit_mb=2048 and leak detection. Crash, leak, timeout and
# out-of-memory inputs are kept in build-fuzz/fuzz-crashes/<harness>/.
# Prints executions and coverage per harness; exits 1 if any harness found
# anything. DGM_FUZZ_DIR overrides the build folder, DGM_FUZZ_JOBS the
# build's parallelism (2).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${DGM_FUZZ_DIR:-build-fuzz}
all=(config override safetensors idx text_state samples report_json image)

build() {
  echo "== building the fuzz harnesses in $dir (clang, ASan + UBSan + libFuzzer)"
  # clang's vectoriser remarks are noise here: the build's output goes to
  # a log, printed only when the build fails.
  mkdir -p "$dir"
  if ! { CC=clang cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
           -DDGM_FUZZ=ON -DDGM_BUILD_TESTS=OFF &&
         cmake --build "$dir" -j "${DGM_FUZZ_JOBS:-2}" --target fuzz_all; } \
       >"$dir/build.log" 2>&1; then
    tail -40 "$dir/build.log"
    echo "fuzz.sh: the build failed (whole log: $dir/build.log)" >&2
    exit 1
  fi
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$dir/fuzz-work"
export DGM_TEST_TMP=$PWD/$dir/fuzz-work/tmp

if [ "${1:-}" = "--replay" ]; then
  [ $# -ge 3 ] || { echo "usage: $0 --replay HARNESS FILE..." >&2; exit 2; }
  h=$2
  shift 2
  build
  exec "$dir/bin/fuzz_$h" "$@"
fi

secs=${1:-60}
[ $# -gt 0 ] && shift
case $secs in '' | *[!0-9]*)
  echo "usage: $0 [SECONDS] [HARNESS...] | --replay HARNESS FILE..." >&2
  exit 2 ;;
esac
harnesses=("$@")
[ ${#harnesses[@]} -gt 0 ] || harnesses=("${all[@]}")
build

failed=0
rows=()
for h in "${harnesses[@]}"; do
  [ -x "$dir/bin/fuzz_$h" ] || { echo "no harness '$h' (${all[*]})" >&2; exit 2; }
  work=$dir/fuzz-work/$h
  crashes=$dir/fuzz-crashes/$h
  rm -rf "$work"
  mkdir -p "$work" "$crashes" "$DGM_TEST_TMP"
  cp -r "tests/fuzz/corpus/$h" "$work/corpus"
  before=$(ls "$crashes" | wc -l)
  dict=()
  [ -f "tests/fuzz/$h.dict" ] && dict=(-dict="tests/fuzz/$h.dict")
  echo "== fuzz_$h for ${secs}s (log: $work/log)"
  # libFuzzer stops at its first timeout. A timeout that replays within the
  # limit twice was the machine's load (the cores are shared), not the
  # input: it is kept as load-timeout-* and not counted, and fuzzing goes on
  # from the grown corpus for the rest of the time.
  rc=0
  stalls=0
  execs=0
  : >"$work/log"
  end=$((SECONDS + secs))
  while [ $SECONDS -lt "$end" ]; do
    rc=0
    "$dir/bin/fuzz_$h" -max_total_time=$((end - SECONDS)) -timeout=1 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" \
      "${dict[@]}" "$work/corpus" >"$work/log.part" 2>&1 || rc=$?
    cat "$work/log.part" >>"$work/log"
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log.part" | tail -1)
    execs=$((execs + ${n:-0}))
    stalled=0
    for t in "$crashes"/timeout-*; do
      [ -e "$t" ] || continue
      if "$dir/bin/fuzz_$h" -timeout=1 -rss_limit_mb=2048 "$t" >/dev/null 2>&1 &&
         "$dir/bin/fuzz_$h" -timeout=1 -rss_limit_mb=2048 "$t" >/dev/null 2>&1; then
        echo "note: $t replays under 1 s twice: a stall of the machine, not counted"
        mv "$t" "$crashes/load-${t##*/}"
        before=$((before + 1))
        stalled=1
      fi
    done
    [ "$stalled" = 1 ] && [ "$rc" -ne 0 ] || break
    rc=0
    stalls=$((stalls + 1))
  done
  found=$(( $(ls "$crashes" | wc -l) - before ))
  cov=$(grep -o 'cov: [0-9]*' "$work/log" | tail -1 | cut -d' ' -f2)
  ft=$(grep -o 'ft: [0-9]*' "$work/log" | tail -1 | cut -d' ' -f2)
  units=$(ls "$work/corpus" | wc -l)
  result=ok
  [ "$stalls" -gt 0 ] && result="ok ($stalls load stalls, fuzzing went on)"
  if [ "$found" -gt 0 ] || [ "$rc" -ne 0 ] ||
     grep -q 'ERROR: \(AddressSanitizer\|LeakSanitizer\)\|runtime error:' "$work/log"; then
    result="FOUND (exit $rc, $found new in $crashes)"
    failed=1
    grep -m1 -A12 'ERROR:\|runtime error:\|property broken' "$work/log" || tail -20 "$work/log"
  fi
  rows+=("$(printf '%-12s %12s %7s %8s %7s  %s' "$h" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$units" "$result")")
done

echo
printf '%-12s %12s %7s %8s %7s  %s\n' harness executions cov ft corpus result
for r in "${rows[@]}"; do echo "$r"; done
exit $failed
