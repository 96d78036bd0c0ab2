#!/usr/bin/env bash
# tests/startup/fault_in.sh NNC MOONS.nn - the thread that faults in the
# compile's code at start-up (driver/main.c) changes nothing a run prints:
# on, off (NNC_PREFAULT_CODE=0) and with one CPU (no thread) the same
# training run gives the same lines, and a run that ends at once (--version,
# an error) is not held up by it
set -euo pipefail
nnc=$1 moons=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() { # NAME [ENV=V ...]: train moons for 3 epochs, no compile cache
  local name=$1
  shift
  env NNC_CACHE=0 "$@" "$nnc" "$moons" --jit --train --epochs 3 | grep -v 'steps/s\|train time' >"$tmp/$name"
}
run on
run off NNC_PREFAULT_CODE=0
diff "$tmp/on" "$tmp/off"
if command -v taskset >/dev/null; then
  run one_cpu taskset -c 0
  diff "$tmp/on" "$tmp/one_cpu"
fi
grep -q '^final valid accuracy' "$tmp/on"
"$nnc" --version | grep -q '^nnc '
if "$nnc" "$tmp/missing.nn" --jit --train 2>"$tmp/err"; then
  echo "a missing file did not fail"
  exit 1
fi
grep -q 'missing.nn' "$tmp/err"
echo "the same $(wc -l <"$tmp/on") lines on, off and on one CPU"
