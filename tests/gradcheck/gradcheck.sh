#!/bin/bash
# gradcheck.sh NNC FILE.nn ENGINE DTYPE BATCH [EXPECT] - the gradient check
# (central finite differences) of one model in one configuration:
#
#   nnc FILE.nn --check-grad [--jit] --dtype DTYPE --batch BATCH
#
# ENGINE is interp or jit. Passes when nnc exits 0, prints "gradient check
# passed" and no line says FAILED. EXPECT, when given, is an extended regex
# that must also match some line of the output (e.g. "skipped at a kink").
# With the interpreter, --grad with the same options must also print only
# finite numbers: --check-grad lets a nan gradient through (its comparisons
# with nan are false). For --jit, agree.* compares --grad --jit with the
# interpreter's (finite) numbers, so a second compilation here is not needed.
set -u
nnc=$1 nn=$2 engine=$3 dtype=$4 batch=$5 expect=${6:-}
args=(--check-grad --dtype "$dtype" --batch "$batch")
case $engine in
  interp) ;;
  jit) args+=(--jit) ;;
  *) echo "gradcheck.sh: engine is interp or jit, got '$engine'"; exit 2 ;;
esac
out=$("$nnc" "$nn" "${args[@]}" 2>&1)
rc=$?
fail() {
  echo "FAIL: $(basename "$nn") ${args[*]}: $1"
  echo "$out"
  exit 1
}
[ $rc = 0 ] || fail "exit status $rc, expected 0"
grep -q '^gradient check passed' <<<"$out" || fail "no 'gradient check passed' line"
! grep -q 'FAILED' <<<"$out" || fail "a tensor FAILED"
grep -Eq ' ok \(([1-9][0-9]*) checked' <<<"$out" || fail "no element was checked"
if [ -n "$expect" ]; then
  grep -Eq -- "$expect" <<<"$out" || fail "expected a line matching '$expect'"
fi
if [ "$engine" = interp ]; then
  grad=$("$nnc" "$nn" --grad "${args[@]:1}" 2>&1)
  rc=$?
  [ $rc = 0 ] || { out=$grad; fail "--grad: exit status $rc"; }
  if grep -Eiq '(^| )[-+]?(nan|inf)' <<<"$grad"; then
    out=$grad
    fail "--grad printed a value that is not finite"
  fi
fi
echo "ok: $(basename "$nn") ${args[*]}"
echo "$out"
