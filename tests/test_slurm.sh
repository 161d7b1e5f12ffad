#!/usr/bin/env bash
# test_slurm.sh - `dgm sweep --launcher slurm` against a real single-node
# Slurm on localhost: 3 trials of a tiny experiment as one job array, one
# of them crashing; the manifest must say done, failed (signal 11), done;
# then a small ASHA sweep, each rung's job its own Slurm job; then 2
# trials of 2 MPI ranks each (sweep.slurm.ntasks: 2, srun --mpi=pmix).
# Starts munged/slurmctld/slurmd if they are not running (and stops what it
# started); installs nothing (scripts/bootstrap.sh installs slurm-wlm and
# munge). Skips (77) when not root or when Slurm is missing. The cluster
# is addressed as localhost / 127.0.0.1 only: it must work where the
# machine's host name does not resolve (a fresh chroot, a container).
# usage: test_slurm.sh DGM_EXECUTABLE TEST_PLUGIN_DIR
set -u
dgm=$1
tplug=$2
skip() { echo "SKIP: $*"; exit 77; }
die() { echo "FAIL: $*"; exit 1; }

[ "$(id -u)" = 0 ] || skip "not root: cannot start munged, slurmctld and slurmd"
for b in /usr/sbin/munged /usr/sbin/slurmctld /usr/sbin/slurmd sbatch squeue scontrol sinfo scancel; do
  command -v "$b" >/dev/null 2>&1 ||
    skip "$b is missing (scripts/bootstrap.sh installs slurm-wlm and munge)"
done
[ -x "$dgm" ] || die "no dgm executable at $dgm"
# In a sanitizer build the crashing trial must still die of its signal,
# not of ASan's report (the job's tasks inherit this environment).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}handle_segv=0"

conf=/etc/slurm/slurm.conf
mark="# written by dgm tests/test_slurm.sh"
if [ ! -e "$conf" ] || [ "$(head -n 1 "$conf")" = "$mark" ]; then
  mkdir -p /etc/slurm
  cat > "$conf" <<EOF
$mark
ClusterName=ci
SlurmctldHost=localhost(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
NodeName=localhost NodeAddr=127.0.0.1 NodeHostname=localhost CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
fi

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
started=()
stop_started() {
  local i pf
  for ((i = ${#started[@]} - 1; i >= 0; i--)); do
    pf=${started[$i]}
    if alive "$pf"; then
      local pid
      pid=$(cat "$pf")
      kill "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  done
}
trap stop_started EXIT

# A daemon not started from this root's pid files (the machine's own, or
# one in another chroot sharing its network) would take the same ports.
# (/proc, not pgrep: procps is not in a minimal root.)
pids_of() {
  local p
  for p in /proc/[0-9]*; do
    [ "$(cat "$p/comm" 2>/dev/null)" = "$1" ] && echo "${p#/proc/}"
  done
  return 0
}
for d in slurmctld slurmd; do
  other=$(pids_of "$d")
  if [ -n "$other" ] && ! alive "/run/$d.pid"; then
    die "a $d runs that /run/$d.pid does not name (pid $(echo $other)): stop it first, it would clash on Slurm's ports"
  fi
done

mkdir -p /run/munge /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
chown munge:munge /run/munge 2>/dev/null
if ! alive /run/munge/munged.pid; then
  runuser -u munge -- /usr/sbin/munged || die "munged did not start"
  started+=(/run/munge/munged.pid)
fi
if ! alive /run/slurmctld.pid; then
  /usr/sbin/slurmctld -c || die "slurmctld did not start"
  started+=(/run/slurmctld.pid)
fi
if ! alive /run/slurmd.pid; then
  # -N: the node's name from slurm.conf, not from the host name
  /usr/sbin/slurmd -N localhost || die "slurmd did not start"
  started+=(/run/slurmd.pid)
fi
# A deadline, not a count of tries: where an address does not resolve each
# scontrol call waits ~10 s.
ready=0
deadline=$((SECONDS + 30))
while [ "$SECONDS" -lt "$deadline" ]; do
  if timeout 5 scontrol ping >/dev/null 2>&1 &&
    timeout 5 sinfo -h -N -o %t 2>/dev/null | grep -qx idle; then
    ready=1
    break
  fi
  sleep 0.1
done
[ "$ready" = 1 ] || die "Slurm did not become ready: $(sinfo 2>&1 | head -5)"

work="${DGM_TEST_TMP:-/tmp}/slurm-$$"
rm -rf "$work"
mkdir -p "$work/data"
/usr/bin/python3 - "$work/data" <<'EOF' || die "cannot write the test data"
import struct, sys
d = sys.argv[1]
for name, n in (("t", 64), ("s", 16)):
    with open(f"{d}/{name}-img", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 8, 8))
        for i in range(n):
            f.write(bytes(230 if k // 16 == i % 4 else 10 for k in range(64)))
    with open(f"{d}/{name}-lab", "wb") as f:
        f.write(struct.pack(">II", 0x801, n) + bytes(i % 4 for i in range(n)))
EOF
cat > "$work/tiny.yaml" <<EOF
name: tiny_slurm
seed: 1
threads: 1
plugin_path: ["$tplug"]
data: {plugin: idx, path: $work/data, train_images: t-img, train_labels: t-lab, test_images: s-img, test_labels: s-lab, batch_size: 16}
model:
  plugin: vae
  latent: 4
  encoder: {plugin: mlp, hidden: [8]}
  decoder: {plugin: mlp, hidden: [8]}
optimizer: {plugin: adam, lr: 0.01}
train: {steps: 3, log_every: 1, samples: 4}
metrics: [{plugin: elbo}]
sweep:
  zip:
    model.latent: [2, 3, 4]
    objective:
      - [{loss: bernoulli_nll, inputs: [logits, x]}, {loss: gaussian_kl, inputs: [mu, logvar]}]
      - [{loss: crash_after, inputs: [mu], after: 1}, {loss: bernoulli_nll, inputs: [logits, x]}]
      - [{loss: bernoulli_nll, inputs: [logits, x]}, {loss: gaussian_kl, inputs: [mu, logvar]}]
  slurm: {partition: debug, time: "00:05:00", cpus_per_task: 1, max_parallel: 2}
EOF

t0=$(date +%s.%N)
"$dgm" sweep "$work/tiny.yaml" --launcher slurm --sweep-dir "$work/s" > "$work/out.txt" 2>&1
rc=$?
t1=$(date +%s.%N)
cat "$work/out.txt"
[ "$rc" = 1 ] || die "dgm sweep exited $rc, expected 1 (one trial fails)"
grep -q "3 trials: 2 done, 1 failed" "$work/out.txt" || die "summary line missing"
/usr/bin/python3 - "$work/s" <<'EOF' || die "manifest check failed"
import json, os, sys
d = sys.argv[1]
m = json.load(open(f"{d}/manifest.json"))
assert m["launcher"] == "slurm", m["launcher"]
assert m.get("slurm_job"), "no slurm_job"
st = [t["status"] for t in m["trials"]]
assert st == ["done", "failed", "done"], st
bad = m["trials"][1]
assert bad["exit_code"] == 139 and bad["signal"] == 11, bad
assert "signal 11" in bad["message"], bad["message"]
for t in m["trials"]:
    assert t["started"] and t["ended"], t
    assert os.path.exists(f"{d}/{t['run_dir']}/trial.json"), t
    assert os.path.exists(f"{d}/{t['run_dir']}/config.yaml"), t
for t in (m["trials"][0], m["trials"][2]):
    s = json.load(open(f"{d}/{t['run_dir']}/summary.json"))
    assert s["status"] == "completed", s
job = m["slurm_job"]
outs = [f for f in os.listdir(f"{d}/slurm") if f.startswith(job + "_")]
assert len(outs) == 3, outs
print("manifest ok: job", job, st)
EOF
echo "slurm sweep took $(awk "BEGIN{print $t1 - $t0}") s"

# --resume resubmits only the failed trial (as --array=1) and keeps the rest.
first=$(cat "$work/s/trials/000-"*/trial.json)
"$dgm" sweep --resume "$work/s" > "$work/out2.txt" 2>&1
rc=$?
cat "$work/out2.txt"
[ "$rc" = 1 ] || die "resume exited $rc, expected 1"
grep -q "3 trials, 1 to run (slurm)" "$work/out2.txt" || die "resume ran more than the failed trial"
grep -q "^#SBATCH --partition=debug" "$work/s/slurm/job.sh" || die "job.sh lacks the partition"
[ "$(cat "$work/s/trials/000-"*/trial.json)" = "$first" ] || die "resume reran a done trial"
/usr/bin/python3 - "$work/s" <<'EOF' || die "manifest after resume"
import json, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))
st = [t["status"] for t in m["trials"]]
assert st == ["done", "failed", "done"], st
assert m["trials"][1]["signal"] == 11
EOF

# ASHA on Slurm: each job (a trial to a rung) its own job, decisions as
# jobs end. 3 good trials, rungs 2 and 6, reduction 3: the best at step 2
# (once all three reported) goes on to step 6 from its checkpoint.
"$dgm" sweep "$work/tiny.yaml" --launcher slurm --sweep-dir "$work/a" \
  'objective=[{loss: bernoulli_nll, inputs: [logits, x]}, {loss: gaussian_kl, inputs: [mu, logvar]}]' \
  'sweep.zip={model.latent: [2, 3, 4], optimizer.lr: [0.03, 0.001, 0.01]}' \
  'sweep.scheduler={asha: {metric: neg_elbo, min_steps: 2, max_steps: 6, reduction: 3}}' \
  > "$work/out3.txt" 2>&1
rc=$?
cat "$work/out3.txt"
[ "$rc" = 0 ] || die "ASHA sweep on slurm exited $rc"
/usr/bin/python3 - "$work/a" <<'EOF' || die "ASHA manifest on slurm"
import json, os, sys
d = sys.argv[1]
m = json.load(open(f"{d}/manifest.json"))
def ev(t, step):
    v = None
    for line in open(f"{d}/{t['run_dir']}/metrics.jsonl"):
        j = json.loads(line)
        if j.get("step") == step and "neg_elbo" in j.get("eval", {}):
            v = j["eval"]["neg_elbo"]
    return v
tr = m["trials"]
assert [t["status"] for t in tr] == ["done"] * 3, [t["status"] for t in tr]
r0 = [t["asha"]["metrics"][0] for t in tr]
for t in tr:
    for k, step in enumerate((2, 6)[: t["asha"]["rung"] + 1]):
        assert t["asha"]["metrics"][k] == ev(t, step), (t["name"], k)
best = min(range(3), key=lambda i: r0[i])
dec = [t["asha"]["decision"] for t in tr]
assert dec[best] == "top" and dec.count("stopped") == 2, dec
assert m["scheduler"]["steps"] == 3 * 2 + 4, m["scheduler"]["steps"]
assert os.path.exists(f"{d}/slurm/job-2.sh") and os.path.exists(f"{d}/slurm/job-6-cont.sh")
log = open(f"{d}/{tr[best]['run_dir']}/log.txt").read()
assert "at step 2 of 6" in log, log
print("ASHA on slurm ok:", dec, r0)
EOF
# Multi-rank trials: sweep.slurm.ntasks 2 runs each trial as a 2-rank MPI
# job (srun --mpi=pmix -n 2 inside the array task); each trial's summary
# must say it trained on 2 ranks, summing through the shared window. Needs
# a dgm built with MPI.
if ldd "$dgm" | grep -q libmpi && srun --mpi=list 2>&1 | grep -qw pmix; then
  . "$(dirname "$0")/mpi_env.sh"
  "$dgm" sweep "$work/tiny.yaml" --launcher slurm --sweep-dir "$work/m" \
    'objective=[{loss: bernoulli_nll, inputs: [logits, x]}, {loss: gaussian_kl, inputs: [mu, logvar]}]' \
    'sweep.zip={model.latent: [2, 3]}' sweep.slurm.ntasks=2 \
    > "$work/out4.txt" 2>&1
  rc=$?
  cat "$work/out4.txt"
  [ "$rc" = 0 ] || { cat "$work/m/slurm/"*.out; die "2-rank sweep on slurm exited $rc"; }
  grep -q "^srun --mpi=pmix -n 2 " "$work/m/slurm/job.sh" || die "job.sh has no srun line"
  /usr/bin/python3 - "$work/m" <<'EOF' || die "2-rank trials"
import json, sys
d = sys.argv[1]
m = json.load(open(f"{d}/manifest.json"))
assert [t["status"] for t in m["trials"]] == ["done"] * 2, m["trials"]
for t in m["trials"]:
    s = json.load(open(f"{d}/{t['run_dir']}/summary.json"))
    assert s["status"] == "completed" and s.get("ranks") == 2, s
    # both ranks on this one node: the gradients summed through the
    # shared window
    assert s.get("allreduce_path") == "shm", s.get("allreduce_path")
print("2-rank trials ok")
EOF
else
  echo "note: this dgm has no MPI or srun has no pmix: 2-rank trials not run"
fi
rm -rf "$work"
echo "PASS: slurm launcher"
