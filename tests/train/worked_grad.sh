#!/bin/bash
# worked_grad.sh NNC TESTS_DIR ENGINE - the spec's worked example (section 5)
# as a golden --grad test: tests/grad/worked.nn with worked.safetensors
# (W = [[1, 2], [-1, 3]], b = [0.5, 1]) on x = [2, 1], t = [3, 2] prints
# exactly the three lines of the spec. ENGINE is interp or jit.
set -u
nnc=$1 tests=$2 engine=$3
args=(--grad --load "$tests/grad/worked.safetensors")
[ "$engine" = jit ] && args+=(--jit)
expected='loss 2.25
linear1.W [2,2] 6 3 0 0
linear1.b [2] 3 0'
errfile=$(mktemp) || exit 2
trap 'rm -f "$errfile"' EXIT
out=$("$nnc" "$tests/grad/worked.nn" "${args[@]}" 2>"$errfile")
rc=$?
err=$(cat "$errfile")
if [ $rc != 0 ] || [ "$out" != "$expected" ] || [ -n "$err" ]; then
  echo "FAIL: nnc worked.nn ${args[*]} (exit $rc)"
  echo "--- expected"; echo "$expected"
  echo "--- got"; echo "$out"
  [ -n "$err" ] && { echo "--- standard error (expected empty)"; echo "$err"; }
  exit 1
fi
echo "ok: worked example, $engine"
