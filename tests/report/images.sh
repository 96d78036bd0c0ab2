#!/usr/bin/env bash
# images.sh NNC TEST_IDX - the --plot report of a model with image inputs:
# a Fashion-MNIST subset (Debian's dataset-fashion-mnist, written by
# `test_idx subset`) trained for two epochs.
#   PDF   3 pages: the header with the image grid, the confusion matrices,
#         the curves (outline titles "images", "confusion matrix", "loss and
#         accuracy"), no plane pages
#   PNG   the header and 3 rows
#   SVG   well-formed, the image grid as one image; the red frames mark
#         exactly the wrong predictions among the first 30 validation
#         images, as `--predict` with the saved parameters finds them
#         (marks.py)
set -u
nnc=$1 test_idx=$2
here=$(cd "$(dirname "$0")" && pwd)
src=${NNC_FASHION_DIR:-/usr/share/datasets/fashion-mnist}
fail() { echo "FAILED (images): $*"; exit 1; }
[ -f "$src/t10k-images-idx3-ubyte.gz" ] || fail "$src has no Fashion-MNIST (scripts/build.sh installs dataset-fashion-mnist)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/data"
"$test_idx" subset 600 "$src/train-images-idx3-ubyte.gz" "$src/train-labels-idx1-ubyte.gz" \
  "$tmp/data/train-images.gz" "$tmp/data/train-labels.gz" || fail "subset"
"$test_idx" subset 200 "$src/t10k-images-idx3-ubyte.gz" "$src/t10k-labels-idx1-ubyte.gz" \
  "$tmp/data/test-images.idx" "$tmp/data/test-labels.idx" || fail "subset"
cp "$here/../idx/subset.nn" "$tmp/"
run() { "$nnc" "$tmp/subset.nn" --jit --train --epochs 2 "$@" >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; fail "nnc $*"; }; }

run --plot "$tmp/r.pdf"
head -c 5 "$tmp/r.pdf" | grep -q '%PDF-' || fail "not a PDF file"
pages=$(grep -a -c '/Type /Page\b' "$tmp/r.pdf")
[ "$pages" -eq 3 ] || fail "the PDF has $pages pages, expected 3"
for t in images "confusion matrix" "loss and accuracy"; do
  grep -a -q "/Title ($t)" "$tmp/r.pdf" || fail "the PDF outline has no page '$t'"
done
grep -a -q -e "/Title (decision surface)" -e "/Title (data)" "$tmp/r.pdf" && fail "the PDF has a plane page"

run --plot "$tmp/r.png"
[ "$(head -c 8 "$tmp/r.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "not a PNG file"
height=$(python3 -c 'import struct,sys; print(struct.unpack(">II", open(sys.argv[1],"rb").read(24)[16:24])[1])' "$tmp/r.png")
[ "$height" -ge 1300 ] && [ "$height" -le 1450 ] || fail "the PNG is $height pixels high, expected 1300..1450"

run --plot "$tmp/r.svg" --save "$tmp/p.safetensors"
python3 -c 'import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])' "$tmp/r.svg" || fail "SVG is not well-formed"
[ "$(grep -c '<image' "$tmp/r.svg")" -eq 1 ] || fail "the SVG has $(grep -c '<image' "$tmp/r.svg") images, expected 1"
# the first 30 validation images as CSV rows, scaled as idx scales them
python3 - "$tmp/data/test-images.idx" >"$tmp/rows.csv" <<'PY'
import sys
d = open(sys.argv[1], "rb").read()
for k in range(30):
    print(",".join("%.9g" % (b / 255) for b in d[16 + 784 * k:16 + 784 * (k + 1)]))
PY
"$nnc" "$tmp/subset.nn" --jit --load "$tmp/p.safetensors" --predict "$tmp/rows.csv" >"$tmp/pred.csv" ||
  fail "--predict"
python3 "$here/marks.py" "$tmp/r.svg" "$tmp/pred.csv" "$tmp/data/test-labels.idx" || fail "marks"
echo "1 passed, 0 failed"
