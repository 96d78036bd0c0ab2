#!/bin/sh
# tests/llvm/libm_loop.sh NNC MODEL: circles' small step computes each tanh
# layer's 16 values in a loop inside its row loop (each value is a call to
# tanhf, nothing to vectorize), not as 16 unrolled calls: train_step calls
# tanhf once per layer at -O0, where the unrolled copies made 32 calls.
nnc=$1 model=$2
n=$("$nnc" "$model" --emit llvm -O0 |
  awk '/^define .*@nnc_circles_train_step\(/ { on = 1 } on && /call float @tanhf/ { c++ } on && /^}/ { on = 0 } END { print c + 0 }')
if [ "$n" -ne 2 ]; then
  echo "train_step calls tanhf $n times, expected 2 (one loop per layer)"
  exit 1
fi
