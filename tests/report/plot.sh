#!/usr/bin/env bash
# plot.sh NNC EXAMPLES_DIR - --plot writes a complete .svg, .pdf and .png
# report (checked by their signatures) and refuses other extensions.
set -u
nnc=$1 examples=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*"; exit 1; }
"$nnc" "$examples/moons.nn" --jit --train --epochs 20 --plot "$tmp/r.svg" >/dev/null || fail "svg run"
grep -q "<svg" "$tmp/r.svg" || fail "not an SVG file"
"$nnc" "$examples/moons.nn" --jit --train --epochs 20 --plot "$tmp/r.pdf" >/dev/null || fail "pdf run"
head -c 5 "$tmp/r.pdf" | grep -q "%PDF-" || fail "not a PDF file"
"$nnc" "$examples/circles.nn" --train --epochs 3 --plot "$tmp/r.png" >/dev/null || fail "png run"
head -c 8 "$tmp/r.png" | od -c | grep -q "P   N   G" || fail "not a PNG file"
err=$("$nnc" "$examples/moons.nn" --train --plot "$tmp/r.jpg" 2>&1 >/dev/null)
[ $? -eq 1 ] || fail "a .jpg report should be refused"
[ "$err" = "$tmp/r.jpg: error: --plot writes .svg, .pdf or .png files" ] || fail "message: $err"
ls "$tmp" | grep -q tmp && fail "a temporary file was left"
echo "1 passed, 0 failed"
