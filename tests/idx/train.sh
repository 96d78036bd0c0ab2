#!/usr/bin/env bash
# train.sh NNC TEST_IDX MODEL [NNC OPTIONS...]
#
# MODEL (subset.nn, a small MLP, or subset_cnn.nn, a small convolutional
# network; in this directory) learns Fashion-MNIST: the first 1,000 training images (gzip)
# and 500 test images (raw IDX) of Debian's dataset-fashion-mnist, written
# by `test_idx subset` into a data/ directory beside a copy of subset.nn.
# Then --predict reads rows of inputs followed by a class label.
# nnc runs from another directory, so the data paths must be taken
# relative to the .nn file. The valid accuracy must be well above chance
# (0.1): at least 0.6.
set -u
nnc=$1 test_idx=$2 model=$3
shift 3
src=${NNC_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
if [ ! -f "$src/train-images-idx3-ubyte.gz" ]; then
  echo "FAILED: $src has no Fashion-MNIST (scripts/build.sh installs dataset-fashion-mnist)"
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/data" "$tmp/elsewhere"
"$test_idx" subset 1000 "$src/train-images-idx3-ubyte.gz" "$src/train-labels-idx1-ubyte.gz" \
  "$tmp/data/train-images.gz" "$tmp/data/train-labels.gz" || exit 1
"$test_idx" subset 500 "$src/t10k-images-idx3-ubyte.gz" "$src/t10k-labels-idx1-ubyte.gz" \
  "$tmp/data/test-images.idx" "$tmp/data/test-labels.idx" || exit 1
cp "$(dirname "$0")/$model" "$tmp/"
(cd "$tmp/elsewhere" && exec "$nnc" "../$model" --train "$@") >"$tmp/out" 2>&1 || {
  cat "$tmp/out"
  echo "FAILED: nnc $model --train $*"
  exit 1
}
acc=$(sed -n 's/^final valid accuracy //p' "$tmp/out")
echo "valid accuracy $acc"
awk -v a="$acc" 'BEGIN { exit !(a != "" && a >= 0.6) }' || {
  cat "$tmp/out"
  echo "FAILED: valid accuracy '$acc' is below 0.6"
  exit 1
}
# --predict of rows of inputs, and of the same rows followed by each one's
# class label (as the training data has labels): the same outputs
python3 - "$tmp/data/test-images.idx" "$tmp/data/test-labels.idx" "$tmp" <<'PY' || exit 1
import sys
img, lab = open(sys.argv[1], "rb").read()[16:], open(sys.argv[2], "rb").read()[8:]
rows = [[str(b / 255) for b in img[i * 784:(i + 1) * 784]] for i in range(3)]
open(sys.argv[3] + "/in.csv", "w").write("".join(",".join(r) + "\n" for r in rows))
open(sys.argv[3] + "/in_label.csv", "w").write("".join(",".join(r) + ",%d\n" % lab[i] for i, r in enumerate(rows)))
PY
"$nnc" "$tmp/$model" --predict "$tmp/in.csv" >"$tmp/p1" && "$nnc" "$tmp/$model" --predict "$tmp/in_label.csv" >"$tmp/p2" || {
  echo "FAILED: --predict of inputs and of inputs with their labels"
  exit 1
}
cmp -s "$tmp/p1" "$tmp/p2" || { diff "$tmp/p1" "$tmp/p2"; echo "FAILED: the label column changed the outputs"; exit 1; }
echo "--predict: the same outputs with a label column"
