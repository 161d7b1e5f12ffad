#!/usr/bin/env bash
# check_exports.sh - libdgm.so exports its public API and nothing else:
# every defined dynamic symbol is dgm_*, none is an internal dgm__*
# (what the CLI's tools need is in their own library, dgm_tools).
# usage: check_exports.sh LIBDGM.so
set -u
lib=$1
die() { echo "FAIL: $*"; exit 1; }
command -v nm >/dev/null || die "nm is missing (binutils)"
[ -f "$lib" ] || die "no library at $lib (build first)"
syms=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVWiu]$/ {print $3}')
[ -n "$syms" ] || die "$lib exports no symbol at all"
internal=$(printf '%s\n' "$syms" | grep '^dgm__')
[ -z "$internal" ] || die "$lib exports internal symbols:
$internal"
other=$(printf '%s\n' "$syms" | grep -v '^dgm_')
[ -z "$other" ] || die "$lib exports symbols outside the dgm_ API:
$other"
echo "ok: $(printf '%s\n' "$syms" | wc -l) symbols, all dgm_*"
