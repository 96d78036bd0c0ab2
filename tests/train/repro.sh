#!/bin/bash
# repro.sh NNC FILE.nn ARGS... - two runs of `nnc FILE.nn ARGS...` print
# byte-identical `final ...` lines (losses and accuracies; the `train time`
# and `steps/s` lines and the progress lines are timing-dependent and not
# compared).
set -u
nnc=$1 nn=$2
shift 2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
for i in 1 2; do
  if ! "$nnc" "$nn" "$@" >"$tmp/out$i" 2>"$tmp/err$i"; then
    echo "FAIL: run $i of nnc $(basename "$nn") $* exited with an error"
    cat "$tmp/out$i" "$tmp/err$i"
    exit 1
  fi
  grep -E '^final' "$tmp/out$i" >"$tmp/final$i"
done
if ! grep -q '^final train loss ' "$tmp/final1"; then
  echo "FAIL: no 'final train loss' line"; cat "$tmp/out1"; exit 1
fi
if ! cmp -s "$tmp/final1" "$tmp/final2"; then
  echo "FAIL: two runs of nnc $(basename "$nn") $* differ:"
  diff "$tmp/final1" "$tmp/final2"
  exit 1
fi
echo "ok: nnc $(basename "$nn") $* is reproducible:"
cat "$tmp/final1"
