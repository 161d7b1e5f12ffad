#!/usr/bin/env bash
# check_layers.sh - libdgm's layering rule on the compiled objects: no
# object of a layer uses a symbol that only a higher layer defines, and no
# two objects use each other, directly or through others (a cycle between
# files, inside a layer or across).
# (The include paths enforce the same rule for internal headers at compile
# time; this catches calls declared through the public headers.)
# usage: check_layers.sh BINARY_DIR LAYER...   (layers lowest first)
set -u
bin=$1
shift
src=$(cd "$(dirname "$0")/../framework/src" && pwd)
die() { echo "FAIL: $*"; exit 1; }
command -v nm >/dev/null || die "nm is missing (binutils)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# defs: SYMBOL LAYER-INDEX FILE, for every global symbol an object defines
i=0
objs=0
for layer in "$@"; do
  dir=$bin/framework/CMakeFiles/dgm_$layer.dir/src/$layer
  [ -d "$dir" ] || die "no objects for layer $layer in $dir (build first)"
  for o in "$dir"/*.o; do
    [ -e "$o" ] || continue
    # an object whose source moved away is a stale leftover of the build
    [ -e "$src/$layer/$(basename "${o%.o}")" ] || continue
    objs=$((objs + 1))
    nm --defined-only -g "$o" | awk -v i=$i -v f="$layer/$(basename "${o%.o}")" \
      '{print $3, i, f}' >>"$tmp/defs"
    nm -u "$o" | awk -v i=$i -v f="$layer/$(basename "${o%.o}")" \
      '$2 ~ /^dgm/ {print $2, i, f}' >>"$tmp/uses"
  done
  i=$((i + 1))
done
[ "$objs" -gt 0 ] || die "no objects found"
sort -k1,1 "$tmp/defs" >"$tmp/defs.s"
sort -k1,1 "$tmp/uses" >"$tmp/uses.s"
# join: SYMBOL USER-LAYER USER-FILE DEF-LAYER DEF-FILE
join "$tmp/uses.s" "$tmp/defs.s" | awk '$4 > $2 {print "  " $3 " uses " $1 " from " $5; bad++}
  END {exit bad > 0}' >"$tmp/bad"
if [ -s "$tmp/bad" ]; then
  echo "FAIL: a lower layer calls a higher one (layers, lowest first: $*):"
  cat "$tmp/bad"
  exit 1
fi
# Files: USER-FILE DEF-FILE for every use of a symbol another object
# defines. tsort orders them, and names the members of every loop it finds
# on stderr ("tsort: a", "tsort: b", ...); a pair of one file is a node
# with no edge.
join "$tmp/uses.s" "$tmp/defs.s" | awk '{print $3, $5}' | sort -u >"$tmp/edges"
if ! tsort "$tmp/edges" >/dev/null 2>"$tmp/loops"; then
  echo "FAIL: files of libdgm call each other in a cycle (each 'loop' below"
  echo "lists its files; each uses a symbol of the next, the last of the first):"
  sed -e 's/^tsort: [^ ]*: input contains a loop:/  loop:/' -e 's/^tsort: /    /' \
    "$tmp/loops"
  exit 1
fi
n=$(wc -l <"$tmp/uses.s")
e=$(awk '$1 != $2' "$tmp/edges" | wc -l)
echo "layers: $objs objects in $# layers, $n uses of dgm symbols, none upward;"
echo "  $e calls between files, no cycle"
echo "1 passed, 0 failed"
