#!/usr/bin/env bash
# same_bits.sh NNC MODEL EPOCHS [NNC-ARGS...]: training MODEL with the
# elementwise loops in vectors (the default) and as scalar loops
# (NNC_VECTOR_LOOPS=0) prints the same losses and saves the same bytes:
# each lane computes what the scalar loop computes for its element.
set -u
nnc=$1 model=$2 epochs=$3
shift 3
dir=$(mktemp -d "${TMPDIR:-/tmp}/nnc-same-bits.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cd "$(dirname "$model")" || exit 1
for v in 1 0; do
  NNC_CACHE=0 NNC_VECTOR_LOOPS=$v "$nnc" "$(basename "$model")" --jit --train --epochs "$epochs" \
    --save "$dir/params$v.safetensors" "$@" >"$dir/out$v" 2>&1 || { cat "$dir/out$v"; exit 1; }
  # what depends on time: the speed, the time left, the time taken
  grep -v -e 'steps/s' -e 'time' -e 'left' "$dir/out$v" >"$dir/losses$v"
done
cmp "$dir/params1.safetensors" "$dir/params0.safetensors" || exit 1
diff "$dir/losses1" "$dir/losses0" || exit 1
echo "same bits: $(basename "$model") $*"
