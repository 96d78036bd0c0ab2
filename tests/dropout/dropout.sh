#!/bin/bash
# dropout.sh NNC DIR ENGINE - dropout's masks (tests/dropout/mask.nn, rate
# 0.3 on 1000 ones, engine interp or jit):
#  - --grad: between 25% and 35% of the gradient is 0 (the mask has 1000
#    draws: 3.4 standard deviations either side), the rest 1 / 0.7;
#  - the same mask in a second run, and another one with --seed 1;
#  - --predict (evaluation): the identity, every output 1.
set -u
nnc=$1 dir=$2 engine=$3
args=()
[ "$engine" = jit ] && args+=(--jit)
fail() { echo "FAIL: $*"; exit 1; }
g1=$("$nnc" "$dir/mask.nn" --grad "${args[@]}") || fail "--grad"
g2=$("$nnc" "$dir/mask.nn" --grad "${args[@]}") || fail "--grad, again"
g3=$("$nnc" "$dir/mask.nn" --grad --seed 1 "${args[@]}") || fail "--grad --seed 1"
[ "$g1" = "$g2" ] || fail "two runs drew different masks"
[ "$g1" != "$g3" ] || fail "--seed 1 drew the same mask"
grep '^w ' <<<"$g1" | awk '{
  zero = 0; other = 0
  for (i = 3; i <= NF; i++) {
    if ($i == 0) zero++
    else if ($i + 0 < 1.4285 || $i + 0 > 1.4286) other++
  }
  printf "%d of %d dropped, %d neither 0 nor 1/0.7\n", zero, NF - 2, other
  exit !(NF - 2 == 1000 && zero >= 250 && zero <= 350 && other == 0)
}' || fail "the mask is not a dropout of rate 0.3"
out=$("$nnc" "$dir/mask.nn" --predict "$dir/ones.csv" "${args[@]}") || fail "--predict"
bad=$(tail -n +2 <<<"$out" | tr ',' '\n' | grep -cv '^1$')
[ "$bad" = 0 ] || fail "--predict is not the identity ($bad values differ from 1)"
echo "ok: dropout masks, $engine"
