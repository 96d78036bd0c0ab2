#!/bin/sh
# tests/llvm/unrolled_runs.sh NNC MODEL CASE: what codegen unrolls in a
# training step, counted in train_step at -O0 (the code as codegen wrote it)
#   loop_outside  reviews' step sums its 16 words' vectors (the mean) and
#                 scatters their gradient into the embedding with a loop over
#                 the words around each word's 16 values unrolled
#                 (cg_loop_outside), not 16 x 16 unrolled copies: a few dozen
#                 reassociated adds, where the copies made 507
#   libm_loop     circles' small step computes each tanh layer's 16 values in
#                 a loop inside its row loop (each value is a call to tanhf,
#                 nothing to vectorize), not as 16 unrolled calls: one call a
#                 layer, where the unrolled copies made 32
#   exp_loop      fashion_cnn's step (loop nests, batch 100) computes its
#                 cross-entropy's 10 exps in a loop inside the row loop, in
#                 the log_softmax's sum and in its gradient: two calls of
#                 llvm.exp, where the unrolled copies made 20
#   exp_pair      reviews' step (2 classes) keeps its cross-entropy's exps
#                 unrolled: four calls of llvm.exp, two in the sum and two
#                 in its gradient (two calls are less code than a loop)
#   dot_loop      fashion_cnn's forward pass computes its output layer's 10
#                 dot products of 1024 terms (not a GEMM there), each a
#                 vector sum, in a loop over the outputs: one vector sum,
#                 where the copies made 10
nnc=$1 model=$2 case=$3
count() { # FUNCTION PATTERN: the lines of FUNCTION's body matching PATTERN
  "$nnc" "$model" --emit llvm -O0 |
    awk -v fn="@$1\\\\(" -v pat="$2" '$0 ~ "^define " && $0 ~ fn { on = 1 } on && $0 ~ pat { c++ } on && /^}/ { on = 0 } END { print c + 0 }'
}
case $case in
loop_outside)
  n=$(count nnc_reviews_train_step "fadd reassoc")
  if [ "$n" -gt 64 ]; then
    echo "train_step has $n reassociated adds, expected at most 64 (the words a loop)"
    exit 1
  fi
  ;;
libm_loop)
  n=$(count nnc_circles_train_step "call float @tanhf")
  if [ "$n" -ne 2 ]; then
    echo "train_step calls tanhf $n times, expected 2 (one loop per layer)"
    exit 1
  fi
  ;;
exp_loop)
  n=$(count nnc_fashion_cnn_train_step "call contract float @llvm.exp.f32")
  if [ "$n" -ne 2 ]; then
    echo "train_step calls llvm.exp $n times, expected 2 (one loop each)"
    exit 1
  fi
  ;;
exp_pair)
  n=$(count nnc_reviews_train_step "call contract float @llvm.exp.f32")
  if [ "$n" -ne 4 ]; then
    echo "train_step calls llvm.exp $n times, expected 4 (unrolled)"
    exit 1
  fi
  ;;
dot_loop)
  n=$(count nnc_fashion_cnn_forward_batch "%vsum[0-9]* = alloca")
  if [ "$n" -ne 1 ]; then
    echo "forward_batch has $n vector sums, expected 1 (the outputs a loop)"
    exit 1
  fi
  ;;
*) echo "unknown case $case"; exit 2 ;;
esac
echo "$case: $n"
