#!/usr/bin/env bash
# test_report.sh - dgm report on a sweep directory this script writes:
# the HTML has one row per variant, one curve per variant and loss term,
# every sample grid embedded and no network reference; then headless
# Chromium renders it and the screenshot must show the page (not blank,
# the curves' colours present).
#   usage: test_report.sh DGM_EXECUTABLE [C_COMPILER]
# Exit 77 (skipped) only when Chromium is not installed.
set -euo pipefail

dgm=${1:?usage: test_report.sh DGM_EXECUTABLE [C_COMPILER]}
cc=${2:-cc}
tmp_root=${DGM_TEST_TMP:-/tmp}
mkdir -p "$tmp_root"
tmp=$(mktemp -d "$tmp_root/report.XXXXXX")
fail() {
    echo "test_report: FAIL: $*" >&2
    echo "test_report: files kept in $tmp" >&2
    exit 1
}

# ---- a sweep: latent 2, 10, 20 x seeds 0, 1; latent 20 seed 1 failed ----
sweep=$tmp/sweep
mkdir -p "$sweep/trials"
/usr/bin/python3 - "$sweep" <<'EOF'
import json, os, struct, sys, zlib

sweep = sys.argv[1]

def png(path, w, h, shade):
    """A grey PNG (colour type 0), a diagonal gradient offset by shade."""
    rows = b"".join(b"\0" + bytes(((x + y) * 4 + shade) % 256 for x in range(w))
                    for y in range(h))
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(
            ">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(
            rows)) + chunk(b"IEND", b""))

trials = []
i = 0
for latent in (2, 10, 20):
    for seed in (0, 1):
        name = "%03d-latent=%d-seed=%d" % (i, latent, seed)
        status = "failed" if (latent, seed) == (20, 1) else "done"
        d = os.path.join(sweep, "trials", name)
        os.makedirs(os.path.join(d, "samples"))
        with open(os.path.join(d, "config.yaml"), "w") as f:
            f.write("name: vae\nseed: %d\nmodel: {plugin: vae, latent: %d}\n"
                    % (seed, latent))
        base = 300.0 - 5 * latent + seed
        with open(os.path.join(d, "metrics.jsonl"), "w") as f:
            for step in range(10, 210, 10):
                nll = base * (1 + 1.5 / (1 + step / 20.0))
                kl = latent * (1 - 1 / (1 + step / 50.0))
                f.write(json.dumps({"bernoulli_nll": nll, "gaussian_kl": kl,
                                    "loss": nll + kl, "lr": 0.001,
                                    "step": step, "epoch": step / 100.0,
                                    "time": step / 50.0}) + "\n")
                if status == "failed" and step == 50:
                    break
            if status == "done":
                f.write(json.dumps({"step": 200, "eval": {"neg_elbo": base}})
                        + "\n")
        if status == "done":
            with open(os.path.join(d, "summary.json"), "w") as f:
                json.dump({"name": "vae", "status": "completed", "steps": 200,
                           "train_loss": base + latent,
                           "final": {"neg_elbo": base, "elbo": -base,
                                     "iwae_nll": base - 2}}, f)
            png(os.path.join(d, "samples", "recon_000200.png"), 62, 32, 0)
            png(os.path.join(d, "samples", "samples_000100.png"), 62, 62, 0)
            png(os.path.join(d, "samples", "samples_000200.png"), 62, 62,
                latent * 4)
        trials.append({"index": i, "name": name,
                       "overrides": ["model.latent=%d" % latent,
                                     "seed=%d" % seed],
                       "params": {"model.latent": latent, "seed": seed},
                       "seed": seed, "run_dir": "trials/" + name,
                       "status": status,
                       "exit_code": 134 if status == "failed" else 0,
                       "signal": 6 if status == "failed" else None,
                       "message": "killed by signal 6 (Aborted) <&>"
                       if status == "failed" else None,
                       "started": "2026-11-28T20:00:00Z",
                       "ended": "2026-11-28T20:00:05Z"})
        i += 1
with open(os.path.join(sweep, "manifest.json"), "w") as f:
    json.dump({"format": 1, "name": "vae <latent> sweep",
               "experiment": "/x/sweep_vae_latent.yaml", "launcher": "local",
               "created": "2026-11-28T20:00:00Z", "trials": trials}, f,
              indent=1)
with open(os.path.join(sweep, "sweep.yaml"), "w") as f:
    f.write("name: vae\nsweep: {grid: {model.latent: [2, 10, 20]}, "
            "seeds: [0, 1]}\n")
EOF

# ---- the page ------------------------------------------------------------
html=$tmp/report.html
"$dgm" report "$sweep" -o "$html" > "$tmp/stdout.txt" 2> "$tmp/stderr.txt" ||
    fail "dgm report exited $?: $(cat "$tmp/stderr.txt")"
[ -s "$html" ] || fail "no $html"
count() { grep -o -- "$1" "$html" | wc -l; }
rows=$(count '<tr class="variant"')
curves=$(count '<polyline class="curve"')
charts=$(count '<figure class="chart" id="chart-')
images=$(count 'src="data:image/png;base64,')
[ "$rows" -eq 3 ] || fail "$rows variant rows, expected 3"
# loss, bernoulli_nll, gaussian_kl: one curve per variant in each
[ "$charts" -eq 3 ] || fail "$charts learning-curve charts, expected 3"
# and the figures against the swept value, one per metric
[ "$(count '<figure class="chart swept"')" -ge 1 ] ||
    fail "no chart against the swept value"
[ "$curves" -eq 9 ] || fail "$curves curves, expected 9"
[ "$images" -eq 3 ] || fail "$images embedded sample grids, expected 3"
[ "$(count 'samples_000200.png')" -eq 3 ] || fail "not the last sample grids"
[ "$(count '<tr class="run status-failed"')" -eq 1 ] ||
    fail "the failed trial is not listed"
grep -q 'killed by signal 6 (Aborted) &lt;&amp;&gt;' "$html" ||
    fail "the failed trial's message is missing or unescaped"
grep -q '<title>vae &lt;latent&gt; sweep</title>' "$html" ||
    fail "the sweep's name is missing or unescaped"
if grep -Eiq 'https?://|<script|<link|@import|url\(' "$html"; then
    fail "the page references something outside itself: $(grep -Eio \
        '.{0,30}(https?://|<script|<link|@import|url\().{0,30}' "$html" |
        head -3)"
fi
echo "test_report: $rows rows, $charts charts, $curves curves, $images" \
    "sample grids; no external reference"

# ---- rendered by a real browser --------------------------------------------
chrome=""
for c in chromium chromium-browser; do
    if command -v "$c" > /dev/null 2>&1; then
        chrome=$(command -v "$c")
        break
    fi
done
if [ -z "$chrome" ]; then
    echo "test_report: SKIP: Chromium is not installed (Debian package" \
        "'chromium'; scripts/bootstrap.sh installs it); the HTML checks" \
        "above passed" >&2
    rm -rf "$tmp"
    exit 77
fi
shot=$tmp/shot.png
# its own home and profile: nothing read from or left in the user's
HOME=$tmp XDG_CONFIG_HOME=$tmp/config XDG_CACHE_HOME=$tmp/cache \
    timeout 180 "$chrome" --headless --no-sandbox --disable-gpu \
    --disable-dev-shm-usage --hide-scrollbars --no-first-run \
    --user-data-dir="$tmp/profile" --screenshot="$shot" \
    --window-size=1200,2000 "file://$html" > "$tmp/chromium.txt" 2>&1 ||
    fail "chromium exited $?: $(tail -5 "$tmp/chromium.txt")"
[ -s "$shot" ] || fail "chromium wrote no screenshot: $(tail -5 "$tmp/chromium.txt")"

# The screenshot's pixels, read with libpng: size, non-white pixels,
# distinct colours, and pixels of the first three curve colours.
cat > "$tmp/pngstat.c" <<'EOF'
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int want[3][3] = {{0x1f, 0x77, 0xb4}, {0xff, 0x7f, 0x0e},
                               {0x2c, 0xa0, 0x2c}};

int main(int argc, char **argv)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (argc < 2 || !png_image_begin_read_from_file(&im, argv[1])) {
        fprintf(stderr, "pngstat: %s\n", argc < 2 ? "no file" : im.message);
        return 1;
    }
    im.format = PNG_FORMAT_RGB;
    unsigned char *px = malloc(PNG_IMAGE_SIZE(im));
    unsigned char *seen = calloc(1 << 21, 1);
    if (!px || !seen || !png_image_finish_read(&im, NULL, px, 0, NULL)) {
        fprintf(stderr, "pngstat: %s\n", im.message);
        return 1;
    }
    long n = (long)im.width * im.height, nonwhite = 0, distinct = 0;
    long hits[3] = {0, 0, 0};
    for (long i = 0; i < n; i++) {
        const unsigned char *p = px + 3 * i;
        unsigned c = (unsigned)p[0] << 16 | (unsigned)p[1] << 8 | p[2];
        if (!(seen[c >> 3] & (1u << (c & 7)))) {
            seen[c >> 3] |= (unsigned char)(1u << (c & 7));
            distinct++;
        }
        nonwhite += p[0] < 240 || p[1] < 240 || p[2] < 240;
        for (int k = 0; k < 3; k++)
            hits[k] += abs(p[0] - want[k][0]) <= 12 &&
                       abs(p[1] - want[k][1]) <= 12 &&
                       abs(p[2] - want[k][2]) <= 12;
    }
    printf("%u %u %ld %ld %ld %ld %ld\n", im.width, im.height, nonwhite,
           distinct, hits[0], hits[1], hits[2]);
    free(px);
    free(seen);
    return 0;
}
EOF
"$cc" -O2 -o "$tmp/pngstat" "$tmp/pngstat.c" -lpng ||
    fail "cannot build the PNG reader with $cc"
read -r w h nonwhite distinct blue orange green < <("$tmp/pngstat" "$shot") ||
    fail "cannot read the screenshot"
echo "test_report: screenshot ${w}x$h: $nonwhite non-white pixels," \
    "$distinct colours; curve colours: $blue $orange $green pixels"
[ "$w" -eq 1200 ] && [ "$h" -eq 2000 ] || fail "screenshot is ${w}x$h"
# a blank page is all white; this one has a table, charts and images
[ "$nonwhite" -gt $((w * h / 50)) ] || fail "screenshot is blank ($nonwhite non-white pixels)"
[ "$distinct" -ge 64 ] || fail "screenshot has only $distinct colours"
for k in "$blue" "$orange" "$green"; do
    [ "$k" -ge 50 ] || fail "a curve colour is missing from the screenshot"
done
rm -rf "$tmp"
echo "test_report: ok"
