#!/usr/bin/env bash
# test_mpi_eval.sh - sharded evaluation under mpirun (Open MPI), on tiny
# generated data: a VAE initialised from a trained one evaluates at step 1,
# after one update at learning rate 0 (a warmup), so every process holds
# the same weights and the figures depend on the evaluation alone.
#  - 2 ranks give the figures of plain `dgm run` (one process): elbo (and
#    each term), iwae_nll (importance samples drawn per batch), recon_error,
#    fid against a tiny classifier, iwae_nll under `corrupt:` (noise) and
#    `generalization_gap:`, to the 9 significant digits metrics.jsonl keeps;
#    the test split (23 examples) does not divide into the ranks' shares;
#  - a classifier's accuracy and output_accuracy on 2 ranks are one
#    process's;
#  - a character VAE's bits_per_char (with bpc_bound, kl_per_seq) and
#    perplexity on 2 ranks are one process's;
#  - the shard-aware test metric walks on rank 0 its share only (6 of 10
#    items), its sums over the ranks are one process's; the one that is not
#    shard-aware walks everything on rank 0, and a metric built against
#    ABI 2.0 (its interface ends before shard_aware) runs there too;
#  - the final evaluation (after real updates) is made and written on 2
#    ranks (within 1e-4 of one process: the training's own rounding);
#  - a shard-aware metric that fails on rank 1 alone stops both ranks,
#    non-zero, naming rank 1, without hanging; one that is not shard-aware
#    failing on rank 0 stops rank 1 too.
# Skips (77) when mpirun is missing or libdgm was built without MPI.
# usage: test_mpi_eval.sh DGM_EXECUTABLE LIBDGM TEST_PLUGIN_DIR
set -u
dgm=$1
lib=$2
tplugins=$3
skip() { echo "SKIP: $*"; exit 77; }
die() { echo "FAIL: $*"; exit 1; }
command -v mpirun >/dev/null 2>&1 ||
  skip "mpirun is missing (scripts/bootstrap.sh installs openmpi-bin)"
ldd "$lib" | grep -q libmpi ||
  skip "libdgm was built without MPI (cmake -DDGM_MPI=ON, libopenmpi-dev)"
. "$(dirname "$0")/mpi_env.sh"

tmp=${DGM_TEST_TMP:-/tmp}/mpi-eval-$$
rm -rf "$tmp"
mkdir -p "$tmp/data"
[ -n "${DGM_KEEP_TMP:-}" ] || trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$(dirname "$0")/mpi_fixture.py" "$tmp/data" 48 23 ||
  die "could not write the IDX fixture"
data="{plugin: idx, path: $tmp/data, train_images: train-img, train_labels: train-lab, test_images: test-img, test_labels: test-lab, batch_size: 8}"
cat > "$tmp/base.yaml" <<YAML
name: base
seed: 4
threads: 1
data: $data
model: {plugin: vae, latent: 3, encoder: {plugin: mlp, hidden: [16]}, decoder: {plugin: mlp, hidden: [16]}}
optimizer: {plugin: adam, lr: 3.0e-3}
train: {steps: 12, samples: 0}
YAML
cat > "$tmp/cls.yaml" <<YAML
name: cls
seed: 2
threads: 1
data: $data
model: {plugin: classifier, features: {plugin: conv_encoder, channels: [4], out: 8}}
optimizer: {plugin: adam, lr: 1.0e-3}
train: {steps: 3, samples: 0}
YAML
"$dgm" run "$tmp/base.yaml" --quiet --run-dir "$tmp/base" >"$tmp/base.out" 2>&1 ||
  die "training the base VAE: $(cat "$tmp/base.out")"
"$dgm" run "$tmp/cls.yaml" --quiet --run-dir "$tmp/cls" >"$tmp/cls.out" 2>&1 ||
  die "training the classifier: $(cat "$tmp/cls.out")"
# warmup 2 of 3 steps: the first update has learning rate 0, so the
# evaluation at step 1 sees the base weights on every rank
cat > "$tmp/ev.yaml" <<YAML
name: ev
seed: 5
threads: 1
plugin_path: ["$tplugins"]
data: $data
model: {plugin: vae, latent: 3, encoder: {plugin: mlp, hidden: [16]}, decoder: {plugin: mlp, hidden: [16]}}
init: [{path: $tmp/base}]
optimizer: {plugin: adam, lr: 1.0e-3, warmup: 2}
train: {steps: 3, eval_every: 1, samples: 0}
metrics:
  - {plugin: elbo, batch_size: 5}
  - {plugin: iwae_nll, k: 6, batch_size: 4, corrupt: [{noise: 0.3}], generalization_gap: 11}
  - {plugin: recon_error, batch_size: 7}
  - {plugin: shard_probe, n: 10, batch: 3}
  - {plugin: rank0_probe, n: 10, batch: 3}
  - {plugin: old_error_rate, value: 0.25}
  - {plugin: fid, classifier: $tmp/cls, n: 17, batch_size: 4}
YAML

run() { # NAME NP YAML [ARGS...]: NP 0 is plain dgm run
  local name=$1 np=$2 y=$3
  shift 3
  if [ "$np" = 0 ]; then
    "$dgm" run "$y" --quiet --run-dir "$tmp/$name" "$@" >"$tmp/$name.out" 2>&1
  else
    timeout 120 mpirun -np "$np" "$dgm" run "$y" --quiet --run-dir "$tmp/$name" "$@" \
      >"$tmp/$name.out" 2>&1
  fi
}
run plain 0 "$tmp/ev.yaml" || die "plain: $(cat "$tmp/plain.out")"
run np2 2 "$tmp/ev.yaml" || die "np2: $(cat "$tmp/np2.out")"

/usr/bin/python3 - "$tmp" <<'PY' || die "the 2-rank figures are not one process's"
import json, sys
t = sys.argv[1]
def evals(run):
    out = {}
    with open(f"{t}/{run}/metrics.jsonl") as f:
        for line in f:
            o = json.loads(line)
            if "eval" in o:
                out[o["step"]] = o["eval"]
    with open(f"{t}/{run}/summary.json") as f:
        s = json.load(f)
    assert s["status"] == "completed", (run, s["status"])
    return out, s["final"]
plain, pf = evals("plain")
np2, f2 = evals("np2")
a, c = plain[1], np2[1]
want = ["neg_elbo", "elbo", "iwae_nll", "recon_error", "fid",
        "iwae_nll@noise=0.3", "iwae_nll@train", "iwae_nll@train/gap",
        "shard_probe/draws", "shard_probe/items", "rank0_probe/count"]
for k in want:
    assert k in c, f"2 ranks: no figure {k} ({sorted(c)})"
# the figures metrics.jsonl holds have 9 significant digits: one unit in
# the last is the most a difference in the last bits can show
def same(x, y):
    return abs(x - y) <= 1e-8 * max(abs(x), abs(y)) + 1e-300
bad = []
for k in a:
    if k.endswith("/start") or k.endswith("/count"):
        continue
    if not same(a[k], c[k]):
        bad.append(f"{k}: 1 process {a[k]!r}, 2 ranks {c[k]!r}")
assert not bad, "\n".join(bad)
# the shares: 10 items in batches of 3 are 4 batches, 2 for each rank;
# rank 0 writes, so its share is what the run records
assert (c["shard_probe/start"], c["shard_probe/count"]) == (0, 6), c
assert (a["shard_probe/start"], a["shard_probe/count"]) == (0, 10), a
assert c["shard_probe/items"] == 10 and c["shard_probe/index_sum"] == 45, c
assert (c["rank0_probe/start"], c["rank0_probe/count"]) == (0, 10), c
assert c["rank0_probe/index_sum"] == 45, c
# a metric built against ABI 2.0 (no shard_aware) runs on rank 0
assert c["old_error_rate"] == 0.25, c
# the final evaluation, after real updates: within the training's rounding
for k in ["neg_elbo", "iwae_nll", "recon_error", "fid"]:
    assert abs(pf[k] - f2[k]) <= 1e-4 * abs(pf[k]), (k, pf[k], f2[k])
print("ok: 2-rank evaluation == 1 process:",
      ", ".join(f"{k} {c[k]:.9g}" for k in ["neg_elbo", "iwae_nll", "fid"]))
PY
[ $? -eq 0 ] || exit 1
echo "ok: sharded evaluation on 2 ranks gives one process's figures"

# The classifier scored by accuracy and output_accuracy (counts over the
# ranks: exact), evaluated as the VAE is, at step 1 after a rate-0 update.
sed -e "s|^train: .*|train: {steps: 3, eval_every: 1, samples: 0}|" \
  -e "s|^optimizer: .*|optimizer: {plugin: adam, lr: 1.0e-3, warmup: 2}|" \
  -e "s|^name: cls|name: cls_ev|" "$tmp/cls.yaml" > "$tmp/cls_ev.yaml"
cat >> "$tmp/cls_ev.yaml" <<YAML
init: [{path: $tmp/cls}]
metrics: [{plugin: accuracy, batch_size: 5}, {plugin: output_accuracy, batch_size: 4}]
YAML
run cls-plain 0 "$tmp/cls_ev.yaml" || die "cls plain: $(cat "$tmp/cls-plain.out")"
run cls-np2 2 "$tmp/cls_ev.yaml" || die "cls np2: $(cat "$tmp/cls-np2.out")"
/usr/bin/python3 - "$tmp" <<'PY' || die "the 2-rank accuracies are not one process's"
import json, sys
t = sys.argv[1]
def step1(run):
    with open(f"{t}/{run}/metrics.jsonl") as f:
        return [json.loads(l)["eval"] for l in f if '"eval"' in l][0]
a, c = step1("cls-plain"), step1("cls-np2")
for k in ["accuracy", "accuracy/logits"]:
    assert k in a and a[k] == c[k], (k, a, c)
    assert abs(a[k] * 23 - round(a[k] * 23)) < 1e-6, (k, a[k])
print("ok: accuracy", c["accuracy"], "on 2 ranks, as on 1")
PY
[ $? -eq 0 ] || exit 1

# A character VAE (seq_vae: z drawn from q(z|x) in evaluation) scored by
# bits_per_char and perplexity over the validation text's windows.
/usr/bin/python3 - "$tmp/corpus.txt" <<'PY' || die "could not write the corpus"
import random, sys
r = random.Random(1)
words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
with open(sys.argv[1], "w") as f:
    f.write(" ".join(r.choice(words) for _ in range(700)) + "\n")
PY
cat > "$tmp/seq.yaml" <<YAML
name: seq
seed: 6
threads: 1
data: {plugin: text, path: $tmp/corpus.txt, seq_len: 16, batch_size: 8, val_fraction: 0.1}
model: {plugin: seq_vae, cell: gru, embedding: 8, hidden: 16, latent: 4}
optimizer: {plugin: adam, lr: 1.0e-3, warmup: 2}
train: {steps: 3, eval_every: 1, samples: 0}
metrics:
  - {plugin: bits_per_char, batch_size: 3}
  - {plugin: perplexity, batch_size: 4}
YAML
run seq-plain 0 "$tmp/seq.yaml" || die "seq plain: $(cat "$tmp/seq-plain.out")"
run seq-np2 2 "$tmp/seq.yaml" || die "seq np2: $(cat "$tmp/seq-np2.out")"
/usr/bin/python3 - "$tmp" <<'PY' || die "the 2-rank bits per character are not one process's"
import json, sys
t = sys.argv[1]
def step1(run):
    with open(f"{t}/{run}/metrics.jsonl") as f:
        return [json.loads(l)["eval"] for l in f if '"eval"' in l][0]
a, c = step1("seq-plain"), step1("seq-np2")
for k in ["bits_per_char", "bpc_bound", "kl_per_seq", "perplexity", "val_nats"]:
    assert k in a and k in c, (k, a, c)
    assert abs(a[k] - c[k]) <= 1e-8 * abs(a[k]), (k, a[k], c[k])
print("ok: bits_per_char", c["bits_per_char"], "bpc_bound", c["bpc_bound"])
PY
[ $? -eq 0 ] || exit 1

# A shard-aware metric that fails on rank 1 only (before its sum): both
# ranks stop, non-zero, and rank 0 names rank 1.
run fail 2 "$tmp/ev.yaml" \
  'metrics=[{plugin: elbo, batch_size: 5}, {plugin: shard_probe, n: 10, batch: 3, fail_start_above: 0}, {plugin: elbo}]'
st=$?
[ "$st" -ne 0 ] ||
  die "a metric failing on rank 1 did not fail the run: $(cat "$tmp/fail.out")"
[ "$st" -ne 124 ] || die "a metric failing on rank 1 left the job hanging"
grep -q "failing on purpose" "$tmp/fail.out" ||
  die "rank 1's own message is missing: $(cat "$tmp/fail.out")"
grep -q "rank 1 failed" "$tmp/fail.out" ||
  die "rank 0 does not name rank 1: $(cat "$tmp/fail.out")"
grep -q '"status": "failed"' "$tmp/fail/summary.json" ||
  die "the run is not recorded as failed"
echo "ok: a metric failing on one rank stops every rank, naming it"

# A metric that is not shard-aware failing on rank 0 (which alone runs it)
# stops rank 1 as well, which names rank 0.
run fail0 2 "$tmp/ev.yaml" 'metrics=[{plugin: fail_after, ok: 0}, {plugin: elbo}]'
st=$?
[ "$st" -ne 0 ] && [ "$st" -ne 124 ] ||
  die "a rank-0 metric failing: exit $st: $(cat "$tmp/fail0.out")"
grep -q "metric 'fail_after': rank 0 failed" "$tmp/fail0.out" ||
  die "rank 1 does not name rank 0: $(cat "$tmp/fail0.out")"
echo "ok: a rank-0 metric failing stops every rank"
