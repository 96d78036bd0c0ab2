#!/bin/bash
# train_agree.sh NNC FILE.nn DTYPE [OPTION...] - training with compiled code
# ends where the reference interpreter's training ends: the final train and
# valid losses of --train and --train --jit at -O0 and -O2 agree to 1e-12
# relative (f64) or 1e-4 (f32, after a few hundred steps of rounding).
# OPTIONs (--batch 1, --epochs N) go to every run; those after `--` to
# the --jit runs only (--cpu NAME).
set -u
nnc=$1 nn=$2 dtype=$3
shift 3
opts=() jit_opts=()
while [ $# -gt 0 ]; do
  [ "$1" = -- ] && { shift; jit_opts=("$@"); break; }
  opts+=("$1"); shift
done
case $dtype in f64) rtol=1e-12 ;; f32) rtol=1e-4 ;; *) echo "dtype f64 or f32"; exit 2 ;; esac
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
"$nnc" "$nn" --train --dtype "$dtype" ${opts[@]+"${opts[@]}"} >"$tmp/interp" 2>&1 || { echo "FAIL: interpreter"; cat "$tmp/interp"; exit 1; }
status=0
for O in -O0 -O2; do
  "$nnc" "$nn" --train --jit $O --threads 1 --dtype "$dtype" ${opts[@]+"${opts[@]}"} ${jit_opts[@]+"${jit_opts[@]}"} >"$tmp/jit" 2>&1 || { echo "FAIL: --jit $O"; cat "$tmp/jit"; exit 1; }
  for what in "final train loss" "final valid loss"; do
    a=$(grep "^$what" "$tmp/interp" | awk '{print $4}') b=$(grep "^$what" "$tmp/jit" | awk '{print $4}')
    [ "$what" = "final valid loss" ] && [ -z "$a$b" ] && continue # no validation set
    if ! awk -v a="$a" -v b="$b" -v r="$rtol" 'BEGIN { d = a - b; if (d < 0) d = -d; m = a < 0 ? -a : a; exit !(a != "" && d <= r * m) }'; then
      echo "FAIL: $what: interpreter $a, --jit $O $b (--dtype $dtype)"; status=1
    fi
  done
done
[ $status = 0 ] && echo "ok: $(basename "$nn") --dtype $dtype: interpreter = --jit at -O0, -O2 after training"
exit $status
