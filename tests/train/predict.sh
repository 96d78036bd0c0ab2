#!/bin/bash
# predict.sh NNC TESTS_DIR EXAMPLES_DIR ENGINE CASE - --predict CSV prints a
# header naming the output, then one row per input row. ENGINE: interp, jit.
#
#   worked_targets  worked example network with worked.safetensors, rows with
#                   target columns and a header: y[0],y[1] then 4.5,2 / 1.5,0 / 2.5,4
#   worked_inputs   the same rows without targets and without a header
#   worked_header   inputs only, with a header
#   seed_row0       seed network from init_seed0: header y, 320 rows, and row 0
#                   agrees with --grad's loss: (t - y)^2 = 0.6960728439819359
#   named_output    circles.nn (`output p`): header p, one row per input row,
#                   probabilities in (0, 1)
#   no_rows         a file of no rows (empty, blank lines, a header alone):
#                   the header alone
set -u
nnc=$1 tests=$2 examples=$3 engine=$4 case=$5
here=$(cd "$(dirname "$0")" && pwd)
args=()
[ "$engine" = jit ] && args+=(--jit)
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: predict $case ($engine): $*"; echo "--- output"; head -20 "$tmp/out"; cat "$tmp/err"; exit 1; }
predict() { # predict FILE.nn CSV ARGS...
  local nn=$1 csv=$2
  shift 2
  "$nnc" "$nn" --predict "$csv" "${args[@]}" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ $rc = 0 ] || fail "exit status $rc"
}
worked='y[0],y[1]
4.5,2
1.5,0
2.5,4'

case $case in
  worked_targets|worked_inputs|worked_header)
    csv=$here/predict_${case#worked_}.csv
    predict "$here/worked_rows.nn" "$csv" --load "$tests/grad/worked.safetensors"
    [ "$(cat "$tmp/out")" = "$worked" ] || { echo "--- expected"; echo "$worked"; fail "wrong output"; } ;;
  seed_row0)
    predict "$tests/data/seed_moons.nn" "$tests/data/moons_train.csv" --load "$tests/data/init_seed0.safetensors"
    [ "$(head -1 "$tmp/out")" = y ] || fail "the header is not 'y'"
    [ "$(wc -l <"$tmp/out")" = 321 ] || fail "expected 320 rows"
    t=$(sed -n 2p "$tests/data/moons_train.csv" | cut -d, -f3)
    y=$(sed -n 2p "$tmp/out")
    python3 -c "
import sys
t, y = float('$t'), float('$y')
loss, ref = (t - y) ** 2, 0.6960728439819359
sys.exit(0 if abs(loss - ref) <= 1e-12 * ref else 'row 0: y = %r, t = %r: (t - y)^2 = %r, --grad loss %r' % (y, t, loss, ref))
" || fail "row 0 disagrees with the first-row loss" ;;
  named_output)
    o0=()
    [ "$engine" = jit ] && o0=(-O0) # (-O is LLVM's: --jit only)
    predict "$examples/circles.nn" "$tests/data/moons_test.csv" ${o0[@]+"${o0[@]}"}
    [ "$(head -1 "$tmp/out")" = p ] || fail "the header is not 'p'"
    rows=$(($(wc -l <"$tests/data/moons_test.csv") - 1))
    [ "$(wc -l <"$tmp/out")" = $((rows + 1)) ] || fail "expected $rows rows"
    awk 'NR > 1 && !($1 > 0 && $1 < 1) { bad = 1; print "not a probability: " $0 } END { exit bad }' "$tmp/out" ||
      fail "values outside (0, 1)" ;;
  no_rows)
    for rows in '' '\n \n' 'x0,x1\n'; do
      printf "$rows" >"$tmp/none.csv"
      predict "$examples/circles.nn" "$tmp/none.csv"
      [ "$(cat "$tmp/out")" = p ] || fail "rows '$rows': not the header alone"
    done ;;
  *) echo "predict.sh: unknown case '$case'"; exit 2 ;;
esac
echo "ok: predict $case ($engine)"
