#!/usr/bin/env bash
# checkgrad.sh NNC DIR ENGINE - --check-grad at its edges (runtime/train.c):
#   nan_grad.nn    gradients that are NaN fail, naming the parameter on
#                  standard output and in one line on standard error;
#   large_loss.nn  a correct gradient of a loss near 900 passes (its central
#                  differences carry ~1e-8 of the loss's rounding).
# ENGINE is interp or jit.
set -u
nnc=$1 dir=$2 engine=$3
args=(--check-grad)
[ "$engine" = jit ] && args+=(--jit)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*"; echo "--- stdout"; cat "$tmp/out"; echo "--- stderr"; cat "$tmp/err"; exit 1; }

"$nnc" "$dir/nan_grad.nn" "${args[@]}" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 1 ] || fail "nan_grad: exit status $rc, expected 1"
grep -Eq '^w .* FAILED \(0 checked, 2 not finite, the first at element 0\)$' "$tmp/out" || fail "nan_grad: no FAILED line for w"
grep -q '^gradient check FAILED' "$tmp/out" || fail "nan_grad: no summary"
echo "$dir/nan_grad.nn: error: gradient check failed for w (not finite)" | cmp -s - "$tmp/err" ||
  fail "nan_grad: standard error is not the one expected line"

"$nnc" "$dir/large_loss.nn" "${args[@]}" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 0 ] || fail "large_loss: exit status $rc, expected 0"
grep -q '^gradient check passed' "$tmp/out" || fail "large_loss: did not pass"
[ -s "$tmp/err" ] && fail "large_loss: wrote to standard error"
echo "1 passed, 0 failed"
