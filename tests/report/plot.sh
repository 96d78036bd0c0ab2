#!/usr/bin/env bash
# plot.sh NNC EXAMPLES_DIR CASE - the --plot report.
#
#   moons    PDF (3 pages: data, decision surface, curves), SVG (well-formed
#            XML with the two surface images), PNG (header and 3 rows)
#   circles  the same pages from another model (interpreter, linear scale)
#   digits   64 inputs, 8x8 images: the image grid, the confusion matrices
#            and the curves (PDF 3 pages, the grid as the SVG's one image,
#            no plane pages)
#   classes3 two inputs, three classes: data, surface, confusion matrices
#            and curves (PDF 4 pages)
#   errors   a refused extension, an unwritable directory, no temporary file
#            left behind, and --plot does not change what training prints
set -u
nnc=$1 examples=$2 case=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED ($case): $*"; exit 1; }

# pdf_pages FILE: the number of page objects
pdf_pages() { grep -a -c '/Type /Page\b' "$1"; }
# png_size FILE: "WIDTH HEIGHT" from the IHDR chunk
png_size() { python3 -c 'import struct,sys; d=open(sys.argv[1],"rb").read(24); print(*struct.unpack(">II", d[16:24]))' "$1"; }
xml_ok() { python3 -c 'import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])' "$1"; }
size() { wc -c <"$1" | tr -d ' '; }

check_pdf() { # FILE PAGES MIN_BYTES
  head -c 5 "$1" | grep -q '%PDF-' || fail "$1 is not a PDF file"
  tail -c 8 "$1" | grep -q '%%EOF' || fail "$1 does not end with %%EOF"
  [ "$(pdf_pages "$1")" -eq "$2" ] || fail "$1 has $(pdf_pages "$1") pages, expected $2"
  [ "$(size "$1")" -gt "$3" ] || fail "$1 is only $(size "$1") bytes"
}
check_svg() { # FILE IMAGES MIN_BYTES
  head -c 200 "$1" | grep -q '<svg' || fail "$1 is not an SVG file"
  xml_ok "$1" || fail "$1 is not well-formed XML"
  [ "$(grep -c '<image' "$1")" -eq "$2" ] || fail "$1 has $(grep -c '<image' "$1") images, expected $2"
  [ "$(size "$1")" -gt "$3" ] || fail "$1 is only $(size "$1") bytes"
}
check_png() { # FILE MIN_HEIGHT MAX_HEIGHT MIN_BYTES
  [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || fail "$1 is not a PNG file"
  read -r w h <<<"$(png_size "$1")"
  [ "$w" -eq 1000 ] || fail "$1 is $w pixels wide"
  [ "$h" -ge "$2" ] && [ "$h" -le "$3" ] || fail "$1 is $h pixels high, expected $2..$3"
  [ "$(size "$1")" -gt "$4" ] || fail "$1 is only $(size "$1") bytes"
}
run() { "$nnc" "$@" >"$tmp/out" 2>"$tmp/err" || { cat "$tmp/err"; fail "nnc $*"; }; }

case $case in
moons)
  run "$examples/moons.nn" --jit --train --epochs 20 --plot "$tmp/r.pdf"
  check_pdf "$tmp/r.pdf" 3 20000
  for t in data "decision surface" "loss and accuracy"; do
    grep -a -q "/Title ($t)" "$tmp/r.pdf" || fail "the PDF outline has no page '$t'"
  done
  run "$examples/moons.nn" --jit --train --epochs 20 --plot "$tmp/r.svg"
  check_svg "$tmp/r.svg" 2 100000
  run "$examples/moons.nn" --train --epochs 20 --plot "$tmp/r.png" --plot-scale linear
  check_png "$tmp/r.png" 1200 1500 50000
  ;;
circles)
  run "$examples/circles.nn" --train --epochs 3 --plot "$tmp/r.pdf" --plot-scale linear
  check_pdf "$tmp/r.pdf" 3 20000
  run "$examples/circles.nn" --jit --train --epochs 3 --plot "$tmp/r.png"
  check_png "$tmp/r.png" 1200 1500 50000
  run "$examples/circles.nn" --jit --train --epochs 3 --plot "$tmp/r.svg"
  check_svg "$tmp/r.svg" 2 100000
  ;;
digits)
  run "$examples/digits.nn" --jit --train --epochs 2 --plot "$tmp/r.pdf"
  check_pdf "$tmp/r.pdf" 3 5000
  for t in images "confusion matrix" "loss and accuracy"; do
    grep -a -q "/Title ($t)" "$tmp/r.pdf" || fail "the PDF outline has no page '$t'"
  done
  grep -a -q -e "/Title (decision surface)" -e "/Title (data)" "$tmp/r.pdf" && fail "the PDF has a plane page"
  run "$examples/digits.nn" --jit --train --epochs 2 --plot "$tmp/r.svg"
  check_svg "$tmp/r.svg" 1 20000
  run "$examples/digits.nn" --jit --train --epochs 2 --plot "$tmp/r.png"
  check_png "$tmp/r.png" 1300 1450 10000
  ;;
classes3)
  # three classes in the plane: the data and surface pages, then the
  # confusion matrices (no images: two inputs)
  awk 'BEGIN { print "x0,x1,label"; for (i = 0; i < 150; i++) { c = i % 3
    printf "%.3f,%.3f,%d\n", c + 0.3 * sin(i * 1.7), (c == 1) + 0.3 * cos(i * 2.3), c } }' >"$tmp/three.csv"
  cat >"$tmp/three.nn" <<'NN'
model three {
  input  x[2]
  target t[3]
  y = x -> linear(8) -> relu -> linear(3)
  loss cross_entropy(y, t)
}
train {
  data      csv("three.csv", onehot: true, shuffle: true)
  split     100
  optimizer adam(lr: 0.01)
  epochs    5
  batch     10
}
NN
  run "$tmp/three.nn" --jit --train --plot "$tmp/r.pdf"
  check_pdf "$tmp/r.pdf" 4 20000
  for t in data "decision surface" "confusion matrix" "loss and accuracy"; do
    grep -a -q "/Title ($t)" "$tmp/r.pdf" || fail "the PDF outline has no page '$t'"
  done
  grep -a -q "/Title (images)" "$tmp/r.pdf" && fail "the PDF has an images page"
  ;;
errors)
  err=$("$nnc" "$examples/moons.nn" --train --plot "$tmp/r.jpg" 2>&1 >/dev/null)
  [ $? -eq 1 ] || fail "a .jpg report should be refused"
  [ "$err" = "$tmp/r.jpg: error: --plot writes .svg, .pdf or .png files" ] || fail "message: $err"
  out=$("$nnc" "$examples/moons.nn" --train --epochs 1 --plot "$tmp/nodir/r.png" 2>"$tmp/err")
  [ $? -eq 1 ] || fail "a report in a missing directory should fail with status 1"
  [ -z "$out" ] || fail "output on stdout for an unwritable report: $out"
  [ "$(cat "$tmp/err")" = "$tmp/nodir/r.png: error: cannot write: No such file or directory" ] ||
    fail "message: $(cat "$tmp/err")"
  # the extension in any case
  "$nnc" "$examples/moons.nn" --train --epochs 1 --plot "$tmp/upper.PNG" >/dev/null 2>"$tmp/err" ||
    fail ".PNG: $(cat "$tmp/err")"
  head -c 4 "$tmp/upper.PNG" | grep -q PNG || fail ".PNG is not a PNG file"
  rm -f "$tmp/upper.PNG"
  # training prints the same with and without a report (times aside)
  "$nnc" "$examples/moons.nn" --jit --train --epochs 30 | grep -v -e 'train time' -e 'steps/s' >"$tmp/plain" ||
    fail "plain run"
  "$nnc" "$examples/moons.nn" --jit --train --epochs 30 --plot "$tmp/r.png" |
    grep -v -e 'train time' -e 'steps/s' >"$tmp/plotted" || fail "run with --plot"
  diff "$tmp/plain" "$tmp/plotted" >/dev/null || fail "--plot changed the training output"
  ls "$tmp" | grep -q tmp && fail "a temporary file was left"
  # a write that fails midway (a FIFO whose reader leaves, SIGPIPE ignored):
  # an error line for each kind, no crash (cairo's PDF surface, told of a
  # failed write, crashed as it finished)
  for ext in pdf svg png; do
    mkfifo "$tmp/p.$ext"
    (head -c 100 "$tmp/p.$ext" >/dev/null &)
    err=$(trap '' PIPE; "$nnc" "$examples/moons.nn" --train --epochs 1 --plot "$tmp/p.$ext" 2>&1 >/dev/null)
    status=$?
    [ $status -eq 1 ] || fail "a failed .$ext write: exit status $status"
    [ "$err" = "$tmp/p.$ext: error: cannot write the report: Broken pipe" ] || fail "message: $err"
    rm -f "$tmp/p.$ext"
  done
  ;;
axes)
  # the loss panel draws what it is given: losses near 1e300 (an axis
  # padded past the doubles was infinite, and no curve on it), losses that
  # are all 0 (no log axis holds them: a linear one), no epoch (a report
  # all the same, with no curve)
  curves() { python3 "$(dirname "$0")/curves.py" "$1"; }
  train=$4
  run "$train/diverge.nn" --train --epochs 21 --plot "$tmp/huge.svg"
  read -r wide high <<<"$(curves "$tmp/huge.svg")"
  [ "$wide" -gt 800 ] && [ "$high" -gt 150 ] || fail "huge losses: a curve $wide wide and $high high"
  awk 'BEGIN { print "a,b,t"; for (i = 0; i < 50; i++) printf "%.3f,%.3f,0\n", (i * 37 % 50) / 50, (i * 11 % 50) / 50 }' \
    >"$tmp/zero.csv"
  cat >"$tmp/zero.nn" <<'NN'
model zero {
  dtype f64
  input x[2]
  target t[1]
  y = x -> linear(1) -> relu
  loss squared(y, t)
}
train {
  data csv("zero.csv")
  split 40
  init normal(std: 1, seed: 3)
  optimizer sgd(lr: 0.5)
  epochs 10
}
NN
  sed -i 's/std: 1, seed: 3/std: 0, seed: 3/' "$tmp/zero.nn" # every output 0: every loss 0
  run "$tmp/zero.nn" --train --plot "$tmp/zero.svg"
  grep -q '^final train loss 0$' "$tmp/out" || fail "the zero model's loss: $(grep final "$tmp/out")"
  read -r wide high <<<"$(curves "$tmp/zero.svg")"
  [ "$wide" -gt 300 ] || fail "losses of 0: a curve $wide wide"
  rm -f "$tmp/none.png"
  run "$examples/moons.nn" --train --epochs 0 --plot "$tmp/none.svg"
  [ "$(curves "$tmp/none.svg")" = "0 0" ] || fail "no epoch: a curve"
  check_svg "$tmp/none.svg" 2 20000
  ;;
*)
  fail "unknown case"
  ;;
esac
echo "1 passed, 0 failed"
