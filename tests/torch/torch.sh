#!/bin/bash
# torch.sh NNC NAME.nn ENGINE - `nnc NAME.nn --load NAME.safetensors --grad`
# (interp or jit) prints the loss and gradients PyTorch computed for the
# same model, parameters and batch (NAME.grad, written by gen.py), to 1e-10
# relative.
set -u
nnc=$1 nn=$2 engine=$3
dir=$(dirname "$nn") name=$(basename "$nn" .nn)
args=(--grad --load "$dir/$name.safetensors")
[ "$engine" = jit ] && args+=(--jit)
out=$(mktemp) || exit 2
trap 'rm -f "$out"' EXIT
"$nnc" "$nn" "${args[@]}" >"$out" 2>&1 || { cat "$out"; echo "FAIL: nnc $name.nn ${args[*]}"; exit 1; }
awk -v rtol=1e-10 -v floor=1e-12 -v other="$dir/$name.grad" \
    -f "$dir/../suites/numcmp.awk" "$out" || { echo "FAIL: $name.nn ${args[*]} differs from PyTorch's"; exit 1; }
echo "ok: $name, $engine, as PyTorch"
