#!/usr/bin/env bash
# modules.sh NNC EXAMPLES_DIR - what the JIT compiles for each kind of run
# (jit.c, driver.c's make_engine): one module, the object cache's one
# entry, holding the functions the run calls and no others; another kind
# of run is another entry (the key covers the set). The symbols are read
# from the cached object (moons' functions are in registers: none calls
# another, so a name in the object is a function it defines).
set -u
nnc=$1 examples=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*"; exit 1; }
unset NNC_CACHE
# check NAME "DEFINED..." "ABSENT..." ARGS...: a run with ARGS in a cache of
# its own makes one object that defines nnc_moons_X for each X of DEFINED
# and none of ABSENT
check() {
  local name=$1 defined=$2 absent=$3
  shift 3
  export NNC_CACHE_DIR=$tmp/$name
  timeout 120 "$nnc" "$examples/moons.nn" --jit "$@" >"$tmp/out" 2>"$tmp/err" || fail "$name: $(cat "$tmp/err")"
  local objs=("$NNC_CACHE_DIR"/*.o)
  [ "${#objs[@]}" = 1 ] && [ -f "${objs[0]}" ] || fail "$name: expected one object, found: $(ls "$NNC_CACHE_DIR")"
  # the entry: a header, then the ELF object (its string table)
  tr '\0' '\n' <"${objs[0]}" | grep -a '^nnc_' >"$tmp/syms"
  for f in $defined; do grep -qx "nnc_moons_$f" "$tmp/syms" || fail "$name: $f missing: $(tr '\n' ' ' <"$tmp/syms")"; done
  for f in $absent; do grep -qx "nnc_moons_$f" "$tmp/syms" && fail "$name: $f compiled, the run does not call it"; done
  cp "${objs[0]}" "$tmp/$name.o"
}
check train "train_epoch forward" "predict backward update train_step grad_part" --train --epochs 2
grep -q '^final valid loss' "$tmp/out" || fail "train: no final lines"
check eval "forward" "predict backward update train_step train_epoch grad_part" --eval
grep -q '^final train loss' "$tmp/out" || fail "eval: no final lines"
check grad "backward" "forward predict update train_step train_epoch grad_part" --grad
printf 'x0,x1\n0.5,0.25\n-1,0.5\n' >"$tmp/points.csv"
check predict "predict" "forward backward update train_step train_epoch grad_part" --predict "$tmp/points.csv"
[ "$(wc -l <"$tmp/out")" -ge 2 ] || fail "predict printed: $(cat "$tmp/out")"
# each set is its own entry: no two runs above made the same object
[ "$(cat "$tmp"/*.o | wc -c)" -gt 0 ] || fail "no objects"
[ "$(md5sum "$tmp"/*.o | awk '{ print $1 }' | sort -u | wc -l)" = 4 ] || fail "two kinds of run made the same object"
echo "1 passed, 0 failed"
