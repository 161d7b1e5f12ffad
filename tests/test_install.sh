#!/bin/sh
# test_install.sh BUILD_DIR SOURCE_DIR [C_COMPILER] - install the already
# built tree into a fresh prefix, build the installed copy of
# examples/plugin-example against it (find_package(dgm), with dlpack's
# CMake package out of reach), list and show the plugin with the installed
# dgm, and compile a program with pkg-config. Nothing of dgm is rebuilt.
set -eu

build=$1
src=$2
cc=${3:-cc}
tmp=${DGM_TEST_TMP:-/tmp}/install-$$
prefix=$tmp/prefix
log=$tmp/log.txt

fail() {
    echo "test_install: FAIL: $*" >&2
    [ -f "$log" ] && tail -n 40 "$log" >&2
    exit 1
}
# Keep the folder when something failed, for a look.
trap 'st=$?; [ $st -eq 0 ] && rm -rf "$tmp"; exit $st' EXIT

mkdir -p "$tmp"
: >"$log"

# 1. Install (copies what is built; a missing target fails here).
cmake --install "$build" --prefix "$prefix" >>"$log" 2>&1 ||
    fail "cmake --install $build"
[ -x "$prefix/bin/dgm" ] || fail "no bin/dgm in the prefix"
[ -f "$prefix/include/dgm/plugin.h" ] || fail "headers not installed"
config=$(find "$prefix" -name dgmConfig.cmake | head -n 1)
[ -n "$config" ] || fail "no dgmConfig.cmake installed"
pcdir=$(dirname "$(find "$prefix" -name dgm.pc | head -n 1)")
[ -f "$pcdir/dgm.pc" ] || fail "no dgm.pc installed"

# The example the docs point to is installed, and is the source tree's.
share=$prefix/share/dgm/examples/plugin-example
for f in CMakeLists.txt example_l1.c; do
    cmp -s "$src/examples/plugin-example/$f" "$share/$f" ||
        fail "$share/$f missing or not the source tree's"
done
# Nothing installed needs dlpack: no header includes it, and the exported
# targets name no dlpack target.
if grep -rlE '#[[:space:]]*include[[:space:]]*[<"]dlpack' "$prefix/include" \
    >>"$log"; then
    fail "an installed header includes dlpack.h"
fi
if grep -il dlpack "$(dirname "$config")"/*.cmake >>"$log"; then
    fail "the installed CMake package mentions dlpack"
fi

# 2. The installed example, against the prefix only, with find_package
# (dlpack) made to fail: find_package(dgm) must not need it.
ex=$tmp/example
cmake -S "$share" -B "$ex" \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
    -DCMAKE_DISABLE_FIND_PACKAGE_dlpack=ON \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo >>"$log" 2>&1 ||
    fail "configuring $share against $prefix (without dlpack)"
cmake --build "$ex" >>"$log" 2>&1 || fail "building $share"
[ -f "$ex/example_l1.so" ] || fail "no example_l1.so built"

# 3. The installed dgm finds it through DGM_PLUGIN_PATH.
# (wide enough that no path is shortened)
out=$(COLUMNS=1000 DGM_PLUGIN_PATH="$ex" "$prefix/bin/dgm" plugins \
    2>>"$log") ||
    fail "dgm plugins exited with $?"
echo "$out" | grep -Eq "^loss +example_l1 +1\.0 .*$ex/example_l1\.so\$" ||
    fail "example_l1 not listed as a loss: $out"
out=$(DGM_PLUGIN_PATH="$ex" "$prefix/bin/dgm" plugins show example_l1 \
    2>>"$log") || fail "dgm plugins show example_l1 exited with $?"
echo "$out" | grep -q "^kind: *loss\$" || fail "show: no kind loss: $out"
echo "$out" | grep -q "^inputs: *prediction target (2\.\.2)\$" ||
    fail "show: no inputs line: $out"
# Without the path it is not found, and says where it looked.
if "$prefix/bin/dgm" plugins show example_l1 >/dev/null 2>"$tmp/err"; then
    fail "example_l1 found without DGM_PLUGIN_PATH"
fi
grep -q "plugin 'example_l1' (any kind) not found; search path: " "$tmp/err" ||
    fail "not-found message: $(cat "$tmp/err")"

# 4. pkg-config gives flags that compile and link a program.
flags=$(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs dgm) ||
    fail "pkg-config --cflags --libs dgm"
echo "$flags" | grep -q -- "-ldgm" || fail "pkg-config: no -ldgm in '$flags'"
cat >"$tmp/prog.c" <<'PROG'
#include <stdio.h>
#include "dgm/host.h"
int main(void)
{
    dgm_registry *r;
    if (dgm_registry_new(&r) < 0)
        return 1;
    printf("%s %d.%d\n", dgm_kind_name(DGM_KIND_LOSS), DGM_ABI_MAJOR,
           DGM_ABI_MINOR);
    dgm_registry_free(r);
    return 0;
}
PROG
# A sanitizer build of libdgm needs the program built the same way.
san=
if readelf -d "$(find "$prefix" -name 'libdgm.so' | head -n 1)" |
    grep -q libasan; then
    san="-fsanitize=address,undefined"
fi
# shellcheck disable=SC2086
"$cc" $san -o "$tmp/prog" "$tmp/prog.c" $flags >>"$log" 2>&1 ||
    fail "compiling with pkg-config flags: $flags"
libdir=$(PKG_CONFIG_PATH="$pcdir" pkg-config --variable=libdir dgm)
[ "$(LD_LIBRARY_PATH="$libdir" "$tmp/prog")" = "loss 2.3" ] ||
    fail "the pkg-config program did not run"

# 5. ---- an experiment that uses the out-of-tree plugin -----------------
# A tiny VAE on generated IDX data whose objective adds the example's
# {loss: example_l1} term; the installed dgm finds it on DGM_PLUGIN_PATH.
data=$tmp/data
mkdir -p "$data"
/usr/bin/python3 - "$data" <<'PY' || fail "could not write the IDX fixture"
import struct, sys
d = sys.argv[1]
def write(name, n):
    with open(f"{d}/{name}-images", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 4, 4))
        f.write(bytes((i * 37 + k * 11) % 256 for i in range(n) for k in range(16)))
    with open(f"{d}/{name}-labels", "wb") as f:
        f.write(struct.pack(">II", 0x801, n))
        f.write(bytes(i % 3 for i in range(n)))
write("train", 64)
write("test", 16)
PY
cat > "$tmp/exp.yaml" <<YAML
name: install_l1
threads: 1
data:
  plugin: idx
  path: $data
  train_images: train-images
  train_labels: train-labels
  test_images: test-images
  test_labels: test-labels
  batch_size: 16
model: {plugin: vae, latent: 2, encoder: {plugin: mlp, hidden: [8]}, decoder: {plugin: mlp, hidden: [8]}}
objective:
  - {loss: bernoulli_nll, inputs: [logits, x]}
  - {loss: gaussian_kl, inputs: [mu, logvar]}
  - {loss: example_l1, inputs: [logits, x], weight: 0.5}
train: {steps: 6, log_every: 1, samples: 0}
YAML
DGM_PLUGIN_PATH="$ex" "$prefix/bin/dgm" run "$tmp/exp.yaml" \
    --run-dir "$tmp/run" --quiet >"$log" 2>&1 ||
    fail "dgm run with example_l1 failed: $(cat "$log")"
grep -q '"status": "completed"' "$tmp/run/summary.json" ||
    fail "run did not complete: $(cat "$tmp/run/summary.json")"
grep -q '"example_l1"' "$tmp/run/metrics.jsonl" ||
    fail "no example_l1 term in metrics.jsonl"

echo "test_install: ok ($prefix)"
