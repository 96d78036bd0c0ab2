#!/usr/bin/env bash
# check.sh NNC MOONS.nn PROGRAM [NNC ARGS...] - PROGRAM (train_moons, built
# from an object file) links neither LLVM nor libnnc, and prints the same
# final lines as `nnc MOONS.nn --jit --train NNC ARGS...`, digit for digit.
set -eu
nnc=$1 model=$2 prog=$3
shift 3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ldd "$prog" | grep -Ei 'llvm|nnc|cjson|cairo'; then
  echo "$prog links more than libc and libm"
  exit 1
fi
if nm "$prog" | grep -E ' [TtUu] (LLVM|_ZN4llvm|nnc_run|jit_|codegen_)'; then
  echo "$prog holds LLVM or compiler symbols"
  exit 1
fi
"$prog" > "$tmp/aot"
"$nnc" "$model" --jit --train "$@" > "$tmp/jit"
grep '^final' "$tmp/aot" > "$tmp/aot.final"
grep '^final' "$tmp/jit" > "$tmp/jit.final"
cat "$tmp/aot.final"
[ -s "$tmp/aot.final" ] || { echo "no final lines"; exit 1; }
diff "$tmp/jit.final" "$tmp/aot.final"
