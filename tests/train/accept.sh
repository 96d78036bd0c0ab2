#!/bin/bash
# accept.sh NNC EXAMPLES_DIR CASE - the examples learn their tasks.
#
#   moons    nnc examples/moons.nn --jit --train: final train loss <= 0.01,
#            final valid loss <= 0.015, final valid accuracy >= 0.97
#   circles  nnc examples/circles.nn --jit --train: final valid accuracy >= 0.97
#   digits_adamw  AdamW, cosine schedule, clipping, early stopping: stops
#            early, a best epoch line, final valid accuracy >= 0.97
#   reviews  the embedding of word indices: final valid loss <= 0.01,
#            final valid accuracy >= 0.98
#   waves    nnc examples/waves.nn --jit --train: final valid accuracy >= 0.8
#            (three kinds of noisy sequence; chance is 1/3)
set -u
nnc=$1 examples=$2 case=$3
out=$("$nnc" "$examples/$case.nn" --jit --train 2>&1)
rc=$?
fail() { echo "FAIL: $case: $*"; echo "$out" | grep -v '^epoch '; exit 1; }
[ $rc = 0 ] || fail "exit status $rc"
value() { awk -v key="$1" 'index($0, key " ") == 1 { v = $NF; found = 1 } END { if (found) print v; else print "missing" }' <<<"$out"; }
# at_most KEY LIMIT / at_least KEY LIMIT
at_most() { local v; v=$(value "$1"); awk -v v="$v" -v l="$2" 'BEGIN { exit !(v != "missing" && v + 0 <= l + 0) }' || fail "$1 is $v, expected <= $2"; }
at_least() { local v; v=$(value "$1"); awk -v v="$v" -v l="$2" 'BEGIN { exit !(v != "missing" && v + 0 >= l + 0) }' || fail "$1 is $v, expected >= $2"; }
case $case in
  moons)
    at_most "final train loss" 0.01
    at_most "final valid loss" 0.015
    at_least "final valid accuracy" 0.97 ;;
  circles)
    at_least "final valid accuracy" 0.97 ;;
  digits_adamw)
    grep -q '^stopped early after epoch' <<<"$out" || fail "no early stop"
    grep -q '^best epoch [0-9]' <<<"$out" || fail "no best epoch line"
    at_least "final valid accuracy" 0.97 ;;
  reviews)
    at_most "final valid loss" 0.01
    at_least "final valid accuracy" 0.98 ;;
  waves)
    at_least "final valid accuracy" 0.8 ;;
  *) echo "accept.sh: unknown case '$case'"; exit 2 ;;
esac
echo "ok: $case"
echo "$out" | grep -E '^final'
