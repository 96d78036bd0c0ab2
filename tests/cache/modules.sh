#!/usr/bin/env bash
# modules.sh NNC EXAMPLES_DIR - what the JIT compiles for each kind of run
# (jit.c, driver.c's make_engine): one module, the object cache's one
# entry, holding the functions the run calls and no others; another kind
# of run is another entry (the key covers the set); two modules on two
# threads give the same numbers, and a cached one module is used by a
# run that would compile two; moons, all in registers, is one module
# whatever the load; W2's functions split in two parts of about the same
# work. The symbols are read from the cached object (moons' functions are
# in registers: none calls another, so a name in the object is a function
# it defines; W2's with nm).
set -u
nnc=$1 examples=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*"; exit 1; }
unset NNC_CACHE
export NNC_COMPILE_THREADS=1 # else two modules when a CPU is idle (below)
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
# two modules on two threads (what a run does when a CPU is idle): the
# training and the evaluation functions, the same numbers
export NNC_CACHE_DIR=$tmp/two
NNC_COMPILE_THREADS=2 timeout 120 "$nnc" "$examples/moons.nn" --jit --train --epochs 2 --time >"$tmp/out2" 2>"$tmp/err2" ||
  fail "two threads: $(cat "$tmp/err2")"
objs=("$NNC_CACHE_DIR"/*.o)
[ "${#objs[@]}" = 2 ] || fail "two threads: expected two objects, found: $(ls "$NNC_CACHE_DIR")"
grep -q '^time join' "$tmp/err2" || fail "two threads: no join"
NNC_CACHE_DIR=$tmp/train timeout 120 "$nnc" "$examples/moons.nn" --jit --train --epochs 2 >"$tmp/out1" 2>/dev/null
cmp -s <(grep '^final' "$tmp/out1") <(grep '^final' "$tmp/out2") || fail "two modules printed other numbers"
# a cached object of the one module is used, not compiled again as two
NNC_CACHE_DIR=$tmp/train NNC_COMPILE_THREADS=2 timeout 120 "$nnc" "$examples/moons.nn" --jit --train --epochs 2 --time \
  >/dev/null 2>"$tmp/err3" || fail "cached: $(cat "$tmp/err3")"
grep -q '^time cache-hit' "$tmp/err3" || fail "two threads did not use the cached module: $(cat "$tmp/err3")"
grep -q '^time llvm-opt' "$tmp/err3" && fail "two threads compiled though the module was cached"
# a model all in registers (moons) is one module whatever the load: a
# second module's set-up costs more than its thread takes off
NNC_CACHE_DIR=$tmp/auto NNC_COMPILE_THREADS= timeout 120 "$nnc" "$examples/moons.nn" --jit --train --epochs 1 --time \
  >/dev/null 2>"$tmp/err4" || fail "unset: $(cat "$tmp/err4")"
grep -q '^time join' "$tmp/err4" && fail "moons compiled as two modules: $(cat "$tmp/err4")"
objs=("$tmp/auto"/*.o)
[ "${#objs[@]}" = 1 ] || fail "moons: expected one object, found: $(ls "$tmp/auto")"
# a split by size counts each function's fixed cost (jit.c, fn_weight):
# W2's training step is about half of the instructions, and its forward
# pass, its one GEMM epilogue of its own (the last layer's SGD step; the
# common ones are prebuilt), forward and train_epoch are the other half
export NNC_CACHE_DIR=$tmp/w2
NNC_COMPILE_THREADS=2 timeout 120 "$nnc" "$examples/../bench/w2_digits.nn" --jit --train --epochs 0 >/dev/null \
  2>"$tmp/err5" || fail "w2: $(cat "$tmp/err5")"
objs=("$NNC_CACHE_DIR"/*.o)
[ "${#objs[@]}" = 2 ] || fail "w2: expected two objects, found: $(ls "$NNC_CACHE_DIR")"
for o in "${objs[@]}"; do # the ELF object after the entry's 80-byte header
  tail -c +81 "$o" >"$tmp/part.o"
  nm --defined-only "$tmp/part.o" | awk '$2 == "T" { print $3 }' | sort | tr '\n' ' '
  echo
done >"$tmp/parts"
grep -qx 'nnc_digits_train_step.part ' "$tmp/parts" && \
  grep -qx 'nnc.gemm.epi_e0.part nnc_digits_forward nnc_digits_forward_batch.part nnc_digits_train_epoch ' "$tmp/parts" ||
  fail "w2: the parts define: $(cat "$tmp/parts")"
echo "1 passed, 0 failed"
