#!/bin/bash
# overrides.sh NNC TESTS_DIR EXAMPLES_DIR CASE - each command-line override
# changes what it should. The worked example network (worked.nn: one row;
# worked_rows.nn: two rows) with worked.safetensors makes exact expectations:
# one SGD step from W = [[1, 2], [-1, 3]], b = [0.5, 1] is done by hand.
#
#   epochs  --epochs 0: the initial loss (1.75), no progress line;
#           --epochs 7: the last progress line is "epoch 7/7"
#   lr      one epoch on worked.nn: lr 0.01 (the file's default) gives loss
#           1.7424, --lr 0.1 gives 0.09
#   batch   --grad --batch 2 averages the two rows (loss 1.75, dW [[3.5, 1.5],
#           [0, 0]], db [2, 0]); one epoch at lr 0.1: --batch 2 (one step)
#           gives 0.6025, --batch 1 (two steps) gives 0.5306
#   seed    --seed 0 is the default when the file sets no seed; --seed 1
#           changes the initialization; the same seed twice is the same run
#   dtype   --dtype f32 prints numbers with at most 9 significant digits
#           (%.9g), f64 with 17 (%.17g); --emit ir names the dtype; the f32
#           gradients agree with the f64 ones to f32 precision
# ENGINE (interp or jit) is the 5th argument.
set -u
nnc=$1 tests=$2 examples=$3 case=$4 engine=${5:-interp}
here=$(cd "$(dirname "$0")" && pwd)
W=$tests/grad/worked.safetensors
eng=()
[ "$engine" = jit ] && eng=(--jit)
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: override $case ($engine): $*"; exit 1; }
run() { # run OUT FILE.nn ARGS...
  local out=$1 nn=$2
  shift 2
  "$nnc" "$nn" "${eng[@]}" "$@" >"$tmp/$out" 2>"$tmp/err" ||
    { cat "$tmp/$out" "$tmp/err"; fail "nnc $(basename "$nn") $* exited with an error"; }
}
# expect_value OUT KEY VALUE: the line "KEY NUMBER" of OUT holds VALUE (rel 1e-12)
expect_value() {
  local got
  got=$(grep "^$2 " "$tmp/$1" | awk '{ print $NF }')
  [ -n "$got" ] || { cat "$tmp/$1"; fail "no '$2' line"; }
  awk -v a="$got" -v b="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; s = b < 0 ? -b : b; exit !(d <= 1e-12 * s) }' ||
    { cat "$tmp/$1"; fail "$2 is $got, expected $3"; }
}
# sigdigits OUT: the largest number of significant digits of a number in OUT
sigdigits() {
  awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^[-+]?[0-9.]+([eE][-+]?[0-9]+)?$/) {
           m = $i; sub(/^[-+]/, "", m); sub(/[eE].*/, "", m); sub(/\./, "", m); sub(/^0+/, "", m)
           if (length(m) > best) best = length(m) } }
       END { print best + 0 }' "$tmp/$1"
}

case $case in
  epochs)
    run e0 "$here/worked_rows.nn" --train --epochs 0 --load "$W"
    expect_value e0 "final train loss" 1.75
    grep -q '^epoch ' "$tmp/e0" && { cat "$tmp/e0"; fail "--epochs 0 printed progress"; }
    run e7 "$here/worked_rows.nn" --train --epochs 7 --load "$W"
    [ "$(grep '^epoch ' "$tmp/e7" | tail -1 | awk '{ print $2 }')" = 7/7 ] || { cat "$tmp/e7"; fail "no 'epoch 7/7' line"; } ;;
  lr)
    run default "$tests/grad/worked.nn" --train --epochs 1 --load "$W"
    expect_value default "final train loss" 1.7424
    run lr "$tests/grad/worked.nn" --train --epochs 1 --load "$W" --lr 0.1
    expect_value lr "final train loss" 0.09 ;;
  batch)
    run g2 "$here/worked_rows.nn" --grad --batch 2 --load "$W"
    printf 'loss 1.75\nlinear1.W [2,2] 3.5 1.5 0 0\nlinear1.b [2] 2 0\n' >"$tmp/g2.expected"
    cmp -s "$tmp/g2" "$tmp/g2.expected" || { diff "$tmp/g2.expected" "$tmp/g2"; fail "--grad --batch 2"; }
    run b2 "$here/worked_rows.nn" --train --epochs 1 --lr 0.1 --batch 2 --load "$W"
    expect_value b2 "final train loss" 0.6025
    run b1 "$here/worked_rows.nn" --train --epochs 1 --lr 0.1 --batch 1 --load "$W"
    expect_value b1 "final train loss" 0.5306 ;;
  seed)
    run default "$tests/data/seed_moons.nn" --grad
    run s0 "$tests/data/seed_moons.nn" --grad --seed 0
    run s1 "$tests/data/seed_moons.nn" --grad --seed 1
    run s1b "$tests/data/seed_moons.nn" --grad --seed 1
    cmp -s "$tmp/default" "$tmp/s0" || fail "--seed 0 differs from the default seed 0"
    cmp -s "$tmp/s0" "$tmp/s1" && fail "--seed 1 gives the same gradients as --seed 0"
    cmp -s "$tmp/s1" "$tmp/s1b" || fail "two runs with --seed 1 differ"
    # a generator's seed too: examples/moons.nn seeds its data (42) and init (3)
    run m "$examples/moons.nn" --train --epochs 0
    run m42 "$examples/moons.nn" --train --epochs 0 --seed 42
    cmp -s <(grep '^final' "$tmp/m") <(grep '^final' "$tmp/m42") && fail "--seed 42 did not change examples/moons.nn" ;;
  dtype)
    run f64 "$tests/data/seed_moons.nn" --grad
    run f32 "$tests/data/seed_moons.nn" --grad --dtype f32
    d64=$(sigdigits f64) d32=$(sigdigits f32)
    [ "$d64" -ge 15 ] && [ "$d64" -le 17 ] || { cat "$tmp/f64"; fail "f64 numbers have up to $d64 significant digits, expected 17"; }
    [ "$d32" -ge 7 ] && [ "$d32" -le 9 ] || { cat "$tmp/f32"; fail "f32 numbers have up to $d32 significant digits, expected 9"; }
    awk -v rtol=1e-5 -v floor=1e-5 -v other="$tmp/f32" -f "$tests/suites/numcmp.awk" "$tmp/f64" ||
      fail "the f32 gradients are not the f64 ones rounded"
    o0=()
    [ "$engine" = jit ] && o0=(-O0) # (-O is LLVM's: --jit only)
    run c64 "$examples/circles.nn" --grad --dtype f64 ${o0[@]+"${o0[@]}"}
    d=$(sigdigits c64)
    [ "$d" -ge 15 ] || fail "circles --dtype f64 prints $d significant digits"
    "$nnc" "$examples/circles.nn" --emit ir --dtype f64 | head -1 | grep -q ', f64, forward graph' || fail "--emit ir --dtype f64"
    "$nnc" "$tests/data/seed_moons.nn" --emit ir --dtype f32 | head -1 | grep -q ', f32, forward graph' || fail "--emit ir --dtype f32" ;;
  *) echo "overrides.sh: unknown case '$case'"; exit 2 ;;
esac
echo "ok: override $case ($engine)"
