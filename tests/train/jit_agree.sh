#!/bin/bash
# jit_agree.sh NNC FILE.nn DTYPE BATCH - the compiled code computes what the
# reference interpreter computes: `--grad` of the interpreter and of --jit at
# -O0, -O2 and -O3, on the first BATCH rows, agree number by number:
# relative 1e-12 for f64 and 1e-5 for f32, with an absolute floor of 1e-12
# (f64) or 1e-5 (f32) x the largest magnitude on the line. (f32 needs the
# larger floor: a gradient that is a sum of cancelling terms of size M is
# only known to about 1e-7 * M in f32, whatever the order of the sum.)
# The interpreter's numbers must all be finite. Further arguments go to
# the --jit runs (--cpu NAME: code for a CPU other than the host's, whose
# GEMM kernels the module compiles itself instead of using nnc's prebuilt
# ones).
set -u
nnc=$1 nn=$2 dtype=$3 batch=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
cmp_awk=$here/../suites/numcmp.awk
case $dtype in
  f64) rtol=1e-12 floor=1e-12 ;;
  f32) rtol=1e-5 floor=1e-5 ;;
  *) echo "jit_agree.sh: dtype is f64 or f32, got '$dtype'"; exit 2 ;;
esac
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
status=0
if ! "$nnc" "$nn" --grad --dtype "$dtype" --batch "$batch" >"$tmp/interp" 2>"$tmp/err"; then
  echo "FAIL: interpreter --grad --dtype $dtype --batch $batch failed"; cat "$tmp/interp" "$tmp/err"; exit 1
fi
if ! grep -q '^loss ' "$tmp/interp"; then
  echo "FAIL: no loss line from the interpreter"; cat "$tmp/interp"; exit 1
fi
if grep -Eiq '(^| )[-+]?(nan|inf)' "$tmp/interp"; then
  echo "FAIL: the interpreter's gradients are not finite"; cat "$tmp/interp"; exit 1
fi
for O in -O0 -O2 -O3; do
  if ! "$nnc" "$nn" --grad --jit "$O" --dtype "$dtype" --batch "$batch" "$@" >"$tmp/jit" 2>"$tmp/err"; then
    echo "FAIL: --jit $O --dtype $dtype --batch $batch failed"; cat "$tmp/jit" "$tmp/err"; status=1; continue
  fi
  if ! awk -v rtol="$rtol" -v floor="$floor" -v other="$tmp/jit" -f "$cmp_awk" "$tmp/interp" >"$tmp/diff"; then
    echo "FAIL: interpreter vs --jit $O, --dtype $dtype --batch $batch (first 20 differences):"
    head -20 "$tmp/diff"
    status=1
  fi
done
[ $status = 0 ] && echo "ok: $(basename "$nn") --dtype $dtype --batch $batch: interpreter = --jit at -O0, -O2, -O3"
exit $status
