#!/bin/bash
# torchref.sh NNC CASE ENGINE - nnc's gradients of tests/torchref/CASE.nn
# against PyTorch's (CASE.grad, written once by make.py):
#
#   nnc CASE.nn --grad --load CASE.safetensors [--jit]
#
# must print the loss and every gradient of CASE.grad within 1e-10 relative
# (f64 both sides; an absolute floor of 1e-10 of each line's largest value).
set -u
nnc=$1 case=$2 engine=$3
here=$(cd "$(dirname "$0")" && pwd)
args=(--grad --load "$here/$case.safetensors")
[ "$engine" = jit ] && args+=(--jit)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! "$nnc" "$here/$case.nn" "${args[@]}" >"$tmp/out" 2>&1; then
  echo "FAIL: $case ${args[*]}: nnc failed"
  cat "$tmp/out"
  exit 1
fi
if ! awk -v rtol=1e-10 -v floor=1e-10 -v other="$here/$case.grad" -f "$here/../suites/numcmp.awk" "$tmp/out"; then
  echo "FAIL: $case ${args[*]}: gradients differ from PyTorch's"
  exit 1
fi
echo "ok: $case ${args[*]} agrees with PyTorch"
