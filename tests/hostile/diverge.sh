#!/usr/bin/env bash
# diverge.sh NNC - a training run that diverges, with --save: exit 1, the
# error names the epoch, step and .nn line, and the saved file holds the
# last finite parameters (post_diverge_save.py checks it), nothing else left.
set -u
nnc=$1
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r "$here"/. "$tmp"/
cd "$tmp" || exit 1
"$nnc" model.nn --train --lr 1000 --epochs 50 --save out.safetensors >stdout.txt 2>stderr.txt
rc=$?
fail() { echo "FAILED: $*"; echo "--- stderr"; cat stderr.txt; exit 1; }
[ $rc -eq 1 ] || fail "exit status $rc, expected 1"
head -1 stderr.txt | grep -Eq '^model\.nn:[0-9]+:[0-9]+: error: training diverged in epoch [0-9]+, step [0-9]+: .* is the first value that is not finite' ||
  fail "unexpected message"
grep -q '^final' stdout.txt && fail "a final report after divergence"
ls ./*.tmp.* >/dev/null 2>&1 && fail "a temporary file was left"
python3 post_diverge_save.py || fail "the saved parameters"
echo "1 passed, 0 failed"
