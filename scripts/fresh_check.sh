#!/usr/bin/env bash
# fresh_check.sh - prove the README on a fresh machine: build a minimal
# Debian 12 root with mmdebstrap (--variant=apt, Debian's archive only),
# clone this checkout's HEAD into it (committed files only) and run the
# README's two commands there in a chroot, as root, one after the other.
# Prints each command's exit status, time and last lines of output; exits
# non-zero if either failed. Downloads ~1.5 GB; needs root. See
# docs/development.md.
#
# usage: scripts/fresh_check.sh [--keep] [--workdir DIR] [--only main|tests]
#                               [--quick] [--lines N]
#   --keep         keep the root (and logs) for debugging; it is printed
#   --workdir DIR  where to build the root (default: ${TMPDIR:-/tmp})
#   --only WHAT    run only run_main.sh (main) or only run_tests.sh (tests)
#   --quick        train the main job for 1 epoch (train.epochs=1) instead
#                  of the README command as written
#   --lines N      lines of each command's output to print (default 25)
# Environment: DGM_FRESH_MIRROR, a Debian mirror URL used instead of the
# machine's apt sources (bookworm and bookworm-updates, component main).
set -euo pipefail
# One block: bash reads all of it before running any, so editing this file
# while a check runs (for an hour) cannot derail that check.
{
usage() { sed -n '10,19p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "fresh_check: $*" >&2; exit 2; }

keep=0 only="" quick=0 lines=25 workdir=${TMPDIR:-/tmp}
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --workdir) [ $# -ge 2 ] || die "--workdir needs a folder"; workdir=$2; shift ;;
    --only)
      [ $# -ge 2 ] || die "--only needs main or tests"
      case "$2" in main | tests) only=$2 ;; *) die "--only: '$2' is not main or tests" ;; esac
      shift ;;
    --quick) quick=1 ;;
    --lines)
      [[ ${2:-} =~ ^[0-9]+$ ]] || die "--lines needs a number"; lines=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument '$1'" ;;
  esac
  shift
done

[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap, mount, chroot)"
src=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel) ||
  die "not inside a git checkout"
head=$(git -C "$src" rev-parse HEAD)
if [ -n "$(git -C "$src" status --porcelain)" ]; then
  echo "fresh_check: note: uncommitted changes are not part of the check" >&2
fi

# The chroot shares this machine's network and process table: daemons the
# test suite starts inside it (munged, slurmctld, slurmd) would clash with
# the same daemons running here.
if [ "$only" != main ]; then
  for p in /proc/[0-9]*; do
    d=$(cat "$p/comm" 2>/dev/null) || continue
    case "$d" in munged | slurmctld | slurmd)
      die "$d (pid ${p#/proc/}) is running on this machine; the suite's Slurm test in the root would clash with it (stop it, or use --only main)" ;;
    esac
  done
fi

if ! command -v mmdebstrap >/dev/null 2>&1; then
  echo "fresh_check: installing mmdebstrap"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mmdebstrap
fi

# ---- the mirror: the machine's own Debian sources ------------------------
# One-line (.list) and deb822 (.sources) entries for bookworm,
# bookworm-updates and bookworm-security, component main.
mirrors=()
if [ -n "${DGM_FRESH_MIRROR:-}" ]; then
  mirrors=("deb $DGM_FRESH_MIRROR bookworm main"
           "deb $DGM_FRESH_MIRROR bookworm-updates main")
else
  while IFS= read -r line; do
    [ -n "$line" ] && mirrors+=("$line")
  done < <(
    shopt -s nullglob
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      # deb [options] URI SUITE COMPONENTS...
      awk '$1 == "deb" {
             i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
             uri = $i; suite = $(i + 1); main = 0
             for (k = i + 2; k <= NF; k++) if ($k == "main") main = 1
             if (main && suite ~ /^bookworm(-updates|-security)?$/)
               print "deb " uri " " suite " main"
           }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
      # stanzas separated by blank lines; Types/URIs/Suites/Components/Enabled
      awk 'function flush(  u, s, nu, ns, a, b) {
             if (types ~ /(^| )deb( |$)/ && comps ~ /(^| )main( |$)/ && enabled != "no") {
               nu = split(uris, a, " "); ns = split(suites, b, " ")
               for (u = 1; u <= nu; u++) for (s = 1; s <= ns; s++)
                 if (b[s] ~ /^bookworm(-updates|-security)?$/)
                   print "deb " a[u] " " b[s] " main"
             }
             types = uris = suites = comps = enabled = ""
           }
           /^[ \t]*#/ { next }
           /^[ \t]*$/ { flush(); next }
           { key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
             if (key == "types") types = $0
             else if (key == "uris") uris = $0
             else if (key == "suites") suites = $0
             else if (key == "components") comps = $0
             else if (key == "enabled") enabled = tolower($0) }
           END { flush() }' "$f"
    done | awk '!seen[$0]++')
fi
printf '%s\n' "${mirrors[@]}" | grep -q ' bookworm main$' ||
  die "no Debian 12 (bookworm, main) source in /etc/apt/sources.list*; set DGM_FRESH_MIRROR=URL"

# ---- the root --------------------------------------------------------------
mkdir -p "$workdir"
work=$(realpath "$(mktemp -d "$workdir/dgm-fresh.XXXXXX")")
root=$work/root
mounted=()

# Every process whose root is the chroot: what the commands left running.
chroot_pids() {
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    [ "$r" = "$root" ] && echo "${p#/proc/}"
  done
}
cleanup() {
  local rc=$? i pids
  trap - EXIT INT TERM
  pids=$(chroot_pids || true)
  if [ -n "$pids" ]; then
    echo "fresh_check: stopping processes left in the root: $(echo $pids)" >&2
    kill $pids 2>/dev/null || true
    sleep 2
    pids=$(chroot_pids || true)
    [ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
  fi
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
    umount -R "${mounted[$i]}" 2>/dev/null || umount -R -l "${mounted[$i]}" ||
      echo "fresh_check: cannot unmount ${mounted[$i]}" >&2
  done
  # Never delete through a mount that is still there (it would be the
  # machine's own /dev or /proc).
  if grep -q " $root/" /proc/mounts; then
    echo "fresh_check: mounts remain under $root; not deleting it" >&2
  elif [ "$keep" = 1 ]; then
    echo "fresh_check: kept $work (root: $root; logs: $work/*.log)"
  else
    rm -rf "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s; }
mb() { du -smx "$1" 2>/dev/null | cut -f1; }
# MB of .deb files behind every package installed in the root: all it
# downloaded, the root being new.
downloaded() {
  chroot "$root" /bin/sh -c "dpkg-query -W -f='\${binary:Package}=\${Version}\n' |
    xargs apt-cache show --no-all-versions 2>/dev/null |
    awk '/^Size:/ { s += \$2 } END { printf \"%d\", s / 1048576 }'" 2>/dev/null || echo "?"
}

echo "fresh_check: mirrors:"
printf '  %s\n' "${mirrors[@]}"
t0=$(now)
# Keep apt's lists (--skip=cleanup/apt/lists) to add up what the check
# downloads. policy-rc.d: packages installed later must not start their
# daemons in the root (it shares the machine's network and process table).
mmdebstrap --variant=apt --skip=cleanup/apt/lists \
  --customize-hook='printf "#!/bin/sh\nexit 101\n" > "$1/usr/sbin/policy-rc.d"; chmod 755 "$1/usr/sbin/policy-rc.d"' \
  bookworm "$root" "${mirrors[@]}" > "$work/mmdebstrap.log" 2>&1 || {
  tail -n "$lines" "$work/mmdebstrap.log"
  die "mmdebstrap failed (log: $work/mmdebstrap.log)"
}
echo "fresh_check: minimal Debian 12 root in $(($(now) - t0)) s ($(mb "$root") MB, $(downloaded) MB of packages)"

git clone --quiet --no-checkout "$src" "$root/root/dgm"
git -C "$root/root/dgm" cat-file -e "$head^{commit}" 2>/dev/null ||
  git -C "$root/root/dgm" fetch --quiet "$src" "$head"
git -C "$root/root/dgm" checkout --quiet --detach "$head"
echo "fresh_check: cloned $(git -C "$src" log -1 --format='%h %s' "$head")"

# /sys and /dev with what is mounted below them (/sys/fs/cgroup, which
# slurmd needs; /dev/pts, /dev/shm), as slaves: unmounting them here
# must not unmount anything on the machine.
mkdir -p "$root/proc" "$root/sys" "$root/dev"
mount --bind /proc "$root/proc"
mounted+=("$root/proc")
for m in sys dev; do
  mount --rbind "/$m" "$root/$m"
  mounted+=("$root/$m")
  mount --make-rslave "$root/$m"
done

# ---- the README's commands -------------------------------------------------
main_cmd="bash scripts/run_main.sh"
[ "$quick" = 1 ] && main_cmd="$main_cmd train.epochs=1"
cmds=()
[ "$only" != tests ] && cmds+=("main|$main_cmd")
[ "$only" != main ] && cmds+=("tests|bash scripts/run_tests.sh")
failed=0
for c in "${cmds[@]}"; do
  name=${c%%|*}
  cmd=${c#*|}
  log=$work/$name.log
  echo "== $cmd (in the root; log $log)"
  t=$(now)
  set +e
  chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/bash -c "cd /root/dgm && $cmd" > "$log" 2>&1
  rc=$?
  set -e
  tail -n "$lines" "$log" | sed 's/^/  | /'
  echo "== $cmd: exit $rc after $(($(now) - t)) s"
  [ "$rc" = 0 ] || failed=1
done
echo "fresh_check: $(($(now) - t0)) s in all; $(downloaded) MB of packages downloaded; root $(mb "$root") MB"
[ "$failed" = 0 ] || { echo "fresh_check: FAILED"; exit 1; }
echo "fresh_check: OK"
exit 0
}
