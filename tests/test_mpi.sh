#!/usr/bin/env bash
# test_mpi.sh - data-parallel training under mpirun (Open MPI), on tiny
# generated data: a VAE and a DCGAN (both phases), 56 steps each.
#  - 1 rank under mpirun ends bit-identical to plain `dgm run` (every
#    tensor of the last checkpoint: weights, optimizer slots, RNG streams);
#  - 2 ranks with the same global batch end within 1e-5 of the 1-rank run
#    (|a - b| / |a| per weight tensor, 2-norms), and log the same losses
#    (within 1e-4);
#  - the DCGAN with batch norm and train.sync_bn: 2 ranks within 1e-5 of
#    1 rank (and not without sync_bn);
#  - a global batch that does not divide among the ranks is refused with a
#    message naming data.batch_size.
# Skips (77) when mpirun is missing or libdgm was built without MPI.
# The gradient sums take the path DGM_MPI_SHM asks for (ctest runs this
# script twice: `mpi` through the shared window, `mpi_iallreduce` with
# DGM_MPI_SHM=0), and every 2-rank run checks it in summary.json, and that
# both ranks end with the same parameters (DGM_MPI_CHECKSUM's lines);
#  - a frozen encoder: 2 ranks within 1e-5 of 1 rank;
#  - a wider VAE on 2 threads per rank: 2 ranks within 1e-5 of 1 rank;
#  - DGM_MPI_SHM=2 is refused, the variable named.
#  - on the shared-window path the optimizer step is split between the
#    ranks (each steps the parameters it owns): the VAE, the DCGAN (two
#    phases) and a VAE with param_groups end with checkpoints equal in
#    every tensor (weights, every optimizer slot, gathered from its owner
#    to rank 0, RNG streams) to the DGM_MPI_SHARD=0 run, which steps every
#    parameter on every rank; clip_norm keeps one phase replicated (named
#    in the log, "mixed" in summary.json) and the other phase's split step
#    feeds the generator's moving average (model.ema) the same values;
#    DGM_MPI_SHARD=2 is refused.
#  - resume: on 2 ranks bit-identical to the uninterrupted run, on 1 rank
#    within 1e-5 of it;
#  - a rank killed with -9: the other stops, non-zero exit, rank named,
#    the last checkpoint readable and, written during training, holding
#    every parameter's optimizer state;
#  - an error one rank alone meets inside a step (a test loss failing on
#    rank 1): both ranks stop, non-zero, the error and the rank named.
# usage: test_mpi.sh DGM_EXECUTABLE LIBDGM TEST_PLUGIN_DIR
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
case ${DGM_MPI_SHM:-1} in
0) path=iallreduce ;;
*) path=shm ;;
esac
export DGM_MPI_CHECKSUM=1

tmp=${DGM_TEST_TMP:-/tmp}/mpi-$$
rm -rf "$tmp"
mkdir -p "$tmp/data"
[ -n "${DGM_KEEP_TMP:-}" ] || trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 "$(dirname "$0")/mpi_fixture.py" "$tmp/data" 60 8 ||
  die "could not write the IDX fixture"
data="{plugin: idx, path: $tmp/data, train_images: train-img, train_labels: train-lab, test_images: test-img, test_labels: test-lab, batch_size: 8}"
cat > "$tmp/vae.yaml" <<YAML
name: mpi_vae
seed: 4
threads: 1
data: $data
model: {plugin: vae, latent: 3, encoder: {plugin: mlp, hidden: [16]}, decoder: {plugin: mlp, hidden: [16]}}
optimizer: {plugin: adam, lr: 1.0e-3}
train: {steps: 56, log_every: 7, samples: 0, checkpoint_every: 20}
YAML
cat > "$tmp/gan.yaml" <<YAML
name: mpi_gan
seed: 3
threads: 1
data: ${data%\}}, scale: symmetric}
model:
  plugin: gan
  latent: 8
  generator: {plugin: dcgan_generator, width: 4, batch_norm: false}
  discriminator: {plugin: dcgan_discriminator, width: 4, batch_norm: false}
phases:
  discriminator:
    optimizer: {plugin: adam, lr: 2.0e-4, beta1: 0.5}
  generator:
    optimizer: {plugin: adam, lr: 2.0e-4, beta1: 0.5}
train: {steps: 56, log_every: 7, samples: 0, checkpoint_every: 20}
YAML

# compare A B TOL: every tensor of two checkpoints; TOL 0 means bit-equal.
compare() {
  /usr/bin/python3 "$(dirname "$0")/mpi_compare.py" "$@"
}
run() { # NAME NP YAML [ARGS...]: NP 0 is plain dgm run
  local name=$1 np=$2 y=$3
  shift 3
  if [ "$np" = 0 ]; then
    "$dgm" run "$y" --quiet --run-dir "$tmp/$name" "$@" >"$tmp/$name.out" 2>&1
  else
    mpirun -np "$np" "$dgm" run "$y" --quiet --run-dir "$tmp/$name" "$@" \
      >"$tmp/$name.out" 2>&1
  fi || die "$name: exit $?: $(cat "$tmp/$name.out")"
  [ "$np" -lt 2 ] && return 0
  same_ranks "$name" "$np"
  grep -q "\"allreduce_path\": \"$path\"" "$tmp/$name/summary.json" ||
    die "$name: the gradient sums did not take the $path path: $(cat "$tmp/$name/summary.json")"
}
# same_ranks NAME NP: each of the NP ranks printed the same parameter checksum.
same_ranks() {
  local sums
  sums=$(sed -n 's/^dgm: rank [0-9]* of [0-9]*: parameters fnv1a64 //p' "$tmp/$1.out" | sort)
  [ "$(echo "$sums" | grep -c .)" = "$2" ] ||
    die "$1: expected a checksum from each of $2 ranks: $(cat "$tmp/$1.out")"
  [ "$(echo "$sums" | uniq | wc -l)" = 1 ] ||
    die "$1: the ranks' parameters differ: $sums"
}

for m in vae gan; do
  run $m-plain 0 "$tmp/$m.yaml"
  run $m-np1 1 "$tmp/$m.yaml"
  run $m-np2 2 "$tmp/$m.yaml"
  ck=checkpoints/last.safetensors
  compare "$tmp/$m-plain/$ck" "$tmp/$m-np1/$ck" 0 ||
    die "$m: 1 rank under mpirun differs from plain dgm run"
  compare --metrics "$tmp/$m-plain/metrics.jsonl" "$tmp/$m-np1/metrics.jsonl" 0 ||
    die "$m: 1 rank logged other losses than plain dgm run"
  compare "$tmp/$m-plain/$ck" "$tmp/$m-np2/$ck" 1e-5 --weights ||
    die "$m: 2 ranks differ from 1 rank by more than 1e-5"
  compare --metrics \
    "$tmp/$m-plain/metrics.jsonl" "$tmp/$m-np2/metrics.jsonl" 1e-4 ||
    die "$m: 2 ranks logged other losses than 1 rank"
  echo "ok: $m: 1 rank == plain, 2 ranks within 1e-5 of 1 rank"
done

# A frozen encoder: no gradient is packed for it; the rest still sums.
run frz-plain 0 "$tmp/vae.yaml" 'freeze=[encoder.*]'
run frz-np2 2 "$tmp/vae.yaml" 'freeze=[encoder.*]'
compare "$tmp/frz-plain/$ck" "$tmp/frz-np2/$ck" 1e-5 --weights ||
  die "vae with a frozen encoder: 2 ranks differ from 1 rank by more than 1e-5"
echo "ok: vae with a frozen encoder: 2 ranks within 1e-5 of 1 rank"

# Two threads per rank and a flat gradient of 101,846 floats: each rank's
# slice (50,928) is summed over its threads (the window's sum splits
# slices past 16,384 floats), the other half read back from the peer's.
wide='model.encoder.hidden=[64]'
run wide-plain 0 "$tmp/vae.yaml" "$wide" 'model.decoder.hidden=[64]' --threads 2
run wide-np2 2 "$tmp/vae.yaml" "$wide" 'model.decoder.hidden=[64]' --threads 2
compare "$tmp/wide-plain/$ck" "$tmp/wide-np2/$ck" 1e-5 --weights ||
  die "vae, hidden 64, 2 threads: 2 ranks differ from 1 rank by more than 1e-5"
echo "ok: vae with 2 threads per rank: 2 ranks within 1e-5 of 1 rank"

# Batch norm (both DCGAN nets) with train.sync_bn: the statistics, and
# the backward's sums of dy and dy * xhat, summed over the ranks, so 2
# ranks end within 1e-5 of 1 rank (running statistics included); without
# sync_bn each rank normalises its own rows and the runs part.
sed -e 's/batch_norm: false/batch_norm: true/g' -e 's/name: mpi_gan/name: mpi_gan_bn/' \
  "$tmp/gan.yaml" > "$tmp/gan_bn.yaml"
grep -q "batch_norm: true" "$tmp/gan_bn.yaml" || die "gan_bn.yaml has no batch norm"
run bn-plain 0 "$tmp/gan_bn.yaml" train.sync_bn=true
run bn-np2 2 "$tmp/gan_bn.yaml" train.sync_bn=true
run bn-local 2 "$tmp/gan_bn.yaml"
compare "$tmp/bn-plain/$ck" "$tmp/bn-np2/$ck" 1e-5 --weights ||
  die "gan with sync_bn: 2 ranks differ from 1 rank by more than 1e-5"
compare --metrics "$tmp/bn-plain/metrics.jsonl" "$tmp/bn-np2/metrics.jsonl" 1e-4 ||
  die "gan with sync_bn: 2 ranks logged other losses than 1 rank"
if compare "$tmp/bn-plain/$ck" "$tmp/bn-local/$ck" 1e-5 --weights >/dev/null; then
  die "gan with batch norm, no sync_bn: 2 ranks equal 1 rank (is batch norm on?)"
fi
echo "ok: gan with batch norm: sync_bn on 2 ranks within 1e-5 of 1 rank"

# Resume: 2 ranks stopped at step 20 and resumed on 2 ranks end where the
# uninterrupted 2-rank run ends (bit for bit); resumed on 1 rank (the data
# position is global: supported), within 1e-5 of it.
ck=checkpoints/last.safetensors
run gan-stop 2 "$tmp/gan.yaml" --stop-after 20
cp -r "$tmp/gan-stop" "$tmp/gan-stop1"
mpirun -np 2 "$dgm" run --resume "$tmp/gan-stop" --quiet >"$tmp/res.out" 2>&1 ||
  die "2-rank resume: $(cat "$tmp/res.out")"
compare "$tmp/gan-np2/$ck" "$tmp/gan-stop/$ck" 0 ||
  die "a resumed 2-rank run differs from an uninterrupted one"
"$dgm" run --resume "$tmp/gan-stop1" --quiet >"$tmp/res1.out" 2>&1 ||
  die "1-rank resume of a 2-rank run: $(cat "$tmp/res1.out")"
compare "$tmp/gan-np2/$ck" "$tmp/gan-stop1/$ck" 1e-5 --weights ||
  die "a 2-rank run resumed on 1 rank differs from the 2-rank run"
echo "ok: resume on 2 ranks == uninterrupted; on 1 rank within 1e-5"

# A rank killed with -9: mpirun stops the other within seconds, exits
# non-zero and names the rank; the last checkpoint stays readable.
mpirun -np 2 "$dgm" run "$tmp/vae.yaml" --quiet --run-dir "$tmp/kill" \
  train.steps=1000000 train.checkpoint_every=5 >"$tmp/kill.out" 2>&1 &
mp=$!
for _ in $(seq 100); do
  [ -e "$tmp/kill/$ck" ] && break
  sleep 0.2
done
[ -e "$tmp/kill/$ck" ] || die "no checkpoint to protect: $(cat "$tmp/kill.out")"
victim=
for p in $(pgrep -P "$mp"); do
  tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null |
    grep -qx OMPI_COMM_WORLD_RANK=1 && victim=$p
done
[ -n "$victim" ] || die "rank 1's process not found under mpirun $mp"
kill -9 "$victim"
t0=$SECONDS
for _ in $(seq 300); do
  kill -0 "$mp" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$mp" 2>/dev/null; then
  kill -9 "$mp"
  die "the other rank still runs 30 s after rank 1 was killed"
fi
wait "$mp" && die "mpirun exited 0 after a rank was killed"
grep -q "rank 1 .*signal 9" "$tmp/kill.out" ||
  die "the message does not name rank 1: $(cat "$tmp/kill.out")"
compare "$tmp/kill/$ck" "$tmp/kill/$ck" 0 >/dev/null ||
  die "the last checkpoint is not readable"
# a checkpoint written during training holds every parameter's optimizer
# state (on the shared-window path rank 1 owns some of it: gathered)
/usr/bin/python3 - "$tmp/kill/$ck" <<'PY' || die "the last checkpoint lacks optimizer state"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
head = json.loads(raw[8:8 + struct.unpack("<Q", raw[:8])[0]])
params = [k for k in head if "." in k and not k.startswith(("optim.", "rng.", "data.", "__"))]
missing = [p for p in params for s in ("exp_avg", "exp_avg_sq") if f"optim.{p}.{s}" not in head]
print("missing optimizer state:", missing) if missing else None
sys.exit(1 if missing or not params else 0)
PY
echo "ok: rank 1 killed: stopped in $((SECONDS - t0)) s, rank named, checkpoint intact"

# An error rank 1 alone meets in its forward (the loss fails at its 10th
# call): every rank stops within the step, non-zero, the error named on
# rank 1 and the other rank saying why it stops (before, rank 0 waited
# for rank 1's sums until mpirun was killed).
timeout 120 mpirun -np 2 "$dgm" run "$tmp/vae.yaml" --quiet \
  --run-dir "$tmp/fail1" "plugin_path=[$tplugins]" \
  '+objective=[{loss: bernoulli_nll, inputs: [logits, x]}, {loss: gaussian_kl, inputs: [mu, logvar]}, {loss: fail_after, inputs: [mu], after: 10, rank: 1, weight: 0.0}]' \
  >"$tmp/fail1.out" 2>&1
st=$?
[ "$st" = 124 ] && die "the ranks still ran 120 s after rank 1 failed: $(cat "$tmp/fail1.out")"
[ "$st" = 0 ] && die "a run whose rank 1 failed exited 0"
grep -q "fail_after: failing on call 11 as asked" "$tmp/fail1.out" ||
  die "rank 1's error is not shown: $(cat "$tmp/fail1.out")"
grep -q "another rank failed before its loss was summed" "$tmp/fail1.out" ||
  die "rank 0 does not say why it stops: $(cat "$tmp/fail1.out")"
echo "ok: rank 1 failed alone in a step: every rank stopped, exit $st"

# A global batch of 9 does not divide among 2 ranks.
if mpirun -np 2 "$dgm" run "$tmp/vae.yaml" --quiet --run-dir "$tmp/odd" \
  data.batch_size=9 >"$tmp/odd.out" 2>&1; then
  die "batch_size 9 on 2 ranks was accepted"
fi
grep -q "data.batch_size 9 (the global batch) does not divide among 2 ranks" \
  "$tmp/odd.out" || die "no clear refusal: $(cat "$tmp/odd.out")"
grep -q "<command line>:1:" "$tmp/odd.out" || die "the refusal names no place: $(cat "$tmp/odd.out")"
echo "ok: batch_size 9 on 2 ranks refused"

# The optimizer step split between the ranks (shared-window path only):
# the same bits as every rank stepping every parameter.
if [ "$path" = shm ]; then
  step_mode() { # NAME MODE: summary.json's optimizer_step
    grep -q "\"optimizer_step\": \"$2\"" "$tmp/$1/summary.json" ||
      die "$1: optimizer_step is not $2: $(cat "$tmp/$1/summary.json")"
  }
  for m in vae gan; do
    DGM_MPI_SHARD=0 run $m-repl 2 "$tmp/$m.yaml"
    step_mode $m-np2 sharded
    step_mode $m-repl replicated
    compare "$tmp/$m-repl/$ck" "$tmp/$m-np2/$ck" 0 ||
      die "$m: the split optimizer step differs from the replicated one"
  done
  grp='param_groups=[{params: "decoder.*", lr_mult: 0.5}, {params: "encoder.mu.*", optimizer: {plugin: sgd, lr: 0.01, momentum: 0.9}}]'
  run grp-np2 2 "$tmp/vae.yaml" "$grp"
  DGM_MPI_SHARD=0 run grp-repl 2 "$tmp/vae.yaml" "$grp"
  step_mode grp-np2 sharded
  compare "$tmp/grp-repl/$ck" "$tmp/grp-np2/$ck" 0 ||
    die "param_groups: the split optimizer step differs from the replicated one"
  # three ranks: an owner between two others sums its own term in the
  # middle of the rank order
  run vae3-np3 3 "$tmp/vae.yaml" data.batch_size=9
  DGM_MPI_SHARD=0 run vae3-repl 3 "$tmp/vae.yaml" data.batch_size=9
  step_mode vae3-np3 sharded
  compare "$tmp/vae3-repl/$ck" "$tmp/vae3-np3/$ck" 0 ||
    die "vae on 3 ranks: the split optimizer step differs from the replicated one"
  echo "ok: split optimizer step: vae, gan, param_groups (2 ranks), vae (3 ranks) equal to the replicated step (all tensors)"
  # clip_norm on the discriminator keeps its step replicated; the
  # generator's split step feeds the weights' moving average (model.ema,
  # the model's after_update), which must read every new value
  clip='phases.discriminator.optimizer.clip_norm=1.0'
  run clip-np2 2 "$tmp/gan.yaml" "$clip" model.ema=0.9
  step_mode clip-np2 mixed
  grep -q "optimizer step of phase 'discriminator': replicated on every rank: clip_norm" \
    "$tmp/clip-np2/log.txt" || die "clip_norm: the log does not say why: $(cat "$tmp/clip-np2/log.txt")"
  grep -q "optimizer step of phase 'generator': split between the ranks" \
    "$tmp/clip-np2/log.txt" || die "clip_norm: the generator's step is not split"
  DGM_MPI_SHARD=0 run clip-repl 2 "$tmp/gan.yaml" "$clip" model.ema=0.9
  compare "$tmp/clip-repl/$ck" "$tmp/clip-np2/$ck" 0 ||
    die "gan, clip_norm on the discriminator, ema: the split generator step differs"
  echo "ok: clip_norm keeps its phase replicated, the other split, same result (with ema)"
  if DGM_MPI_SHARD=2 mpirun -np 2 "$dgm" run "$tmp/vae.yaml" --quiet \
    --run-dir "$tmp/badshard" >"$tmp/badshard.out" 2>&1; then
    die "DGM_MPI_SHARD=2 was accepted"
  fi
  grep -q "DGM_MPI_SHARD='2': expected 0" "$tmp/badshard.out" ||
    die "DGM_MPI_SHARD=2: no clear refusal: $(cat "$tmp/badshard.out")"
  echo "ok: DGM_MPI_SHARD=2 refused"
fi

if DGM_MPI_SHM=2 mpirun -np 2 "$dgm" run "$tmp/vae.yaml" --quiet \
  --run-dir "$tmp/badshm" >"$tmp/badshm.out" 2>&1; then
  die "DGM_MPI_SHM=2 was accepted"
fi
grep -q "DGM_MPI_SHM='2': expected 0" "$tmp/badshm.out" ||
  die "DGM_MPI_SHM=2: no clear refusal: $(cat "$tmp/badshm.out")"
echo "ok: DGM_MPI_SHM=2 refused"
echo "PASS"
