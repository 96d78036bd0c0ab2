#!/bin/bash
# batch_norm.sh NNC DIR ENGINE - batch_norm end to end (ENGINE interp or jit)
# on images.nn, whose expected numbers PyTorch computed once (gen.py):
#  - training mode: --grad (the batch's statistics) equals PyTorch's
#    gradients, and --check-grad passes at batch 5 (a vector batch_norm
#    too, which the gradcheck suite's batch of 1 row cannot take);
#  - evaluation mode: --predict (the running statistics) equals PyTorch's
#    eval(), and --eval's final loss is the loss of those outputs, not the
#    training-mode loss of --grad;
#  - one training step moves the running statistics as PyTorch does: the
#    saved checkpoint predicts what PyTorch's model predicts after the step;
#  - the checkpoint round trip: --eval of the saved file prints the
#    training run's final lines; a file without the running statistics is
#    refused by --load, naming the missing one;
#  - the run-time errors: batches of one value per channel, threads.
set -u
nnc=$1 dir=$2 engine=$3
args=()
[ "$engine" = jit ] && args+=(--jit)
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL ($engine): $*"; exit 1; }
m=$dir/images.nn init=$dir/images.safetensors csv=$dir/images.csv
# numbers of two files (commas as spaces) agree to 1e-10 relative
same() { tr ',' ' ' <"$1" >"$tmp/a"; tr ',' ' ' <"$2" >"$tmp/b"
         awk -v rtol=1e-10 -v floor=1e-12 -v other="$tmp/b" -f "$dir/../suites/numcmp.awk" "$tmp/a"; }

"$nnc" "$m" --grad --load "$init" "${args[@]}" >"$tmp/grad" || fail "--grad"
same "$tmp/grad" "$dir/images.grad" || fail "--grad differs from PyTorch's training-mode gradients"
"$nnc" "$m" --check-grad "${args[@]}" >"$tmp/check" || { cat "$tmp/check"; fail "--check-grad"; }

"$nnc" "$m" --predict "$csv" --load "$init" "${args[@]}" >"$tmp/predict" || fail "--predict"
same "$tmp/predict" "$dir/images.predict" || fail "--predict differs from PyTorch's evaluation mode"
"$nnc" "$m" --eval --load "$init" "${args[@]}" >"$tmp/eval" || fail "--eval"
# the mean over rows of sum((t - y)^2) of the evaluation outputs
want=$(tail -n +2 "$csv" | paste -d, - <(tail -n +2 "$dir/images.predict") |
       awk -F, '{ s = 0; for (k = 1; k <= 3; k++) s += ($(12 + k) - $(15 + k))^2; sum += s } END { printf "%.17g", sum / NR }')
got=$(sed -n 's/^final train loss //p' "$tmp/eval")
train_loss=$(sed -n 's/^loss //p' "$tmp/grad")
awk -v a="$got" -v b="$want" -v t="$train_loss" 'BEGIN {
  d = a - b; if (d < 0) d = -d
  exit !(d <= 1e-10 * (b < 0 ? -b : b) && (a - t > 1e-3 || t - a > 1e-3)) }' ||
  fail "--eval's loss $got is not the evaluation loss $want (the training-mode loss is $train_loss)"

"$nnc" "$m" --train --load "$init" --save "$tmp/step.safetensors" "${args[@]}" >"$tmp/train" || fail "--train"
"$nnc" "$m" --predict "$csv" --load "$tmp/step.safetensors" "${args[@]}" >"$tmp/step" || fail "--predict after a step"
same "$tmp/step" "$dir/images.step" || fail "after one step, the predictions differ from PyTorch's"

"$nnc" "$m" --eval --load "$tmp/step.safetensors" "${args[@]}" >"$tmp/eval2" || fail "--eval of the checkpoint"
diff <(grep '^final' "$tmp/train") <(grep '^final' "$tmp/eval2") || fail "--eval of the saved checkpoint differs"
python3 - "$init" "$tmp/partial.safetensors" <<'PY' || fail "cannot write a checkpoint without running statistics"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
keep = {k: v for k, v in head.items() if ".running_" not in k}
blobs, off = [], 0
for k, v in keep.items():
    a, b = v["data_offsets"]
    blobs.append(raw[8 + n + a:8 + n + b])
    v["data_offsets"] = [off, off + b - a]
    off += b - a
h = json.dumps(keep).encode()
h += b" " * (-len(h) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
PY
"$nnc" "$m" --eval --load "$tmp/partial.safetensors" "${args[@]}" >/dev/null 2>"$tmp/err" && fail "a checkpoint without running statistics loaded"
grep -q "batch_norm1.running_mean" "$tmp/err" || { cat "$tmp/err"; fail "the error does not name the missing running statistics"; }

# errors: one value per channel in a training batch, threads; each at the
# layer (line 9, column 36), with its source line and a caret under it,
# before compiling
expect_error() { # MESSAGE ARGS...
  local msg=$1
  shift
  "$nnc" "$m" "$@" "${args[@]}" >"$tmp/out" 2>"$tmp/err"
  [ $? = 1 ] || fail "$* did not exit 1"
  [ ! -s "$tmp/out" ] || fail "$* printed on standard output"
  local layer
  layer=$(sed -n 2p "$tmp/err")
  layer=${layer%%batch_norm*} # the source line up to the layer
  [ "$(head -1 "$tmp/err")" = "$m:9:36: error: $msg" ] && [ "$(wc -l <"$tmp/err")" = 3 ] &&
    [ "$(sed -n 3p "$tmp/err")" = "${layer//?/ }^" ] || { cat "$tmp/err"; fail "$*: expected: $msg"; }
}
expect_error "features gets one value per channel from a training batch of 1 row, and the variance of one value is no statistic (PyTorch refuses it too); train with batches of at least 2 rows" --train --batch 1
expect_error "the last training batch of each epoch has 1 row (5 rows in batches of 2), which gives features one value per channel (PyTorch refuses it too); choose a batch that leaves no row or at least 2" --train --batch 2
expect_error "features gets one value per channel from a batch of 1 row, and the variance of one value is no statistic (PyTorch refuses it too); --grad needs a batch of at least 2 rows" --grad --batch 1
expect_error "features gets one value per channel from a batch of 1 row, and the variance of one value is no statistic (PyTorch refuses it too); --check-grad needs a batch of at least 2 rows" --check-grad --batch 1
if [ "$engine" = jit ]; then
  expect_error "features normalizes with the statistics of the whole batch, computed in one step, so a model with batch_norm trains on one thread of one process (--threads 1)" --train --threads 2
fi
# a batch of 1 row is fine for evaluation, and for a channel with several values
"$nnc" "$m" --predict <(head -2 "$csv") --load "$init" "${args[@]}" >/dev/null || fail "--predict of one row"
echo "ok: batch_norm ($engine): PyTorch's gradients, evaluation and step; checkpoints; errors"
