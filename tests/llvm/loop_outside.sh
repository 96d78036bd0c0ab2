#!/bin/sh
# tests/llvm/loop_outside.sh NNC MODEL: reviews' training step sums its 16
# words' vectors (the mean) and scatters their gradient into the embedding
# with a loop over the words around each word's 16 values unrolled
# (cg_loop_outside), not 16 x 16 unrolled copies: a few dozen reassociated
# adds in train_step at -O0, where the copies made 507.
nnc=$1 model=$2
n=$("$nnc" "$model" --emit llvm -O0 |
  awk '/^define .*@nnc_reviews_train_step\(/ { on = 1 } on && /fadd reassoc/ { c++ } on && /^}/ { on = 0 } END { print c + 0 }')
if [ "$n" -gt 64 ]; then
  echo "train_step has $n reassociated adds, expected at most 64 (the words a loop)"
  exit 1
fi
