#!/usr/bin/env bash
# header_names.sh NNC - the C header of a model whose names would give the
# same macro twice: a parameter LR (LR_OFFSET is the learning rate's), w
# and w_GRAD (w_GRAD_OFFSET is w's gradient's and w_GRAD's offset), a_W and
# a layer a's a.W (both a_W). The header compiles with every redefinition
# an error, LR_OFFSET is the learning rate's (the layout's optimizer.lr),
# the clashing ones get no macros and a comment names them, and the rest
# (z, a.b) keep theirs.
set -eu
nnc=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/clash.nn" <<'NN'
model clash {
  input x[2]
  target t[1]
  param LR[2] = constant(value: 0.5)
  param w[2] = constant(value: 0.25)
  param w_GRAD[2] = constant(value: 0.125)
  param a_W[2] = constant(value: 1)
  param z[2] = constant(value: 2)
  y = (x * LR * w * w_GRAD * a_W * z) -> linear(1, name: "a")
  loss squared(y, t)
}
train {
  optimizer sgd(lr: 0.01)
}
NN
"$nnc" "$tmp/clash.nn" --emit header -o "$tmp/clash.h"
"$nnc" "$tmp/clash.nn" --emit obj -o "$tmp/clash.o" # (a program with the header links its object)
lr=$("$nnc" "$tmp/clash.nn" --emit layout | awk '$1 == "state" && $2 == "optimizer.lr" { print $5 }')
cat >"$tmp/main.c" <<'C'
#include <stdio.h>
#include "clash.h"
int main(void) {
  printf("%lld %lld %lld\n", (long long)nnc_clash_LR_OFFSET, (long long)nnc_clash_z_OFFSET, (long long)nnc_clash_a_b_SIZE);
  return 0;
}
C
cc -std=c99 -Wall -Wextra -pedantic-errors -Werror -I"$tmp" -o "$tmp/main" "$tmp/main.c" "$tmp/clash.o" -lm
# the header alone, for its sizes, with the ABI check off
cc -std=c99 -Wall -Wextra -pedantic-errors -Werror -DNNC_NO_ABI_CHECK -I"$tmp" -o "$tmp/alone" "$tmp/main.c" ||
  { echo "the header alone does not link with NNC_NO_ABI_CHECK"; exit 1; }
set -- $("$tmp/main")
[ "$1" = "$lr" ] || { echo "LR_OFFSET is $1, the learning rate is at $lr"; exit 1; }
[ "$3" = 1 ] || { echo "a.b has $3 values"; exit 1; }
for name in LR w w_GRAD a_W a.W; do
  grep -q "^ \*   $name\$" "$tmp/clash.h" || { echo "the comment does not name $name"; cat "$tmp/clash.h"; exit 1; }
done
if grep -E "nnc_clash_(LR|w|w_GRAD|a_W)_(OFFSET|GRAD_OFFSET|SIZE) [0-9]" "$tmp/clash.h" | grep -v "^#define nnc_clash_LR_OFFSET $lr "; then
  echo "macros of a clashing name"
  exit 1
fi
echo "ok: LR_OFFSET $1 (the learning rate), z at $2; LR, w, w_GRAD, a_W and a.W named in a comment"
