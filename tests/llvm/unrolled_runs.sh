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
# expect FUNCTION PATTERN OP N WHY: the test fails unless the count of
# PATTERN in FUNCTION is OP (test's -eq, -le) N, which WHY explains
expect() {
  n=$(count "$1" "$2")
  if ! [ "$n" "$3" "$4" ]; then
    echo "$1 has $n lines matching '$2', expected $3 $4 ($5)"
    exit 1
  fi
  echo "$case: $n"
}
case $case in
loop_outside) expect nnc_reviews_train_step "fadd reassoc" -le 64 "the words a loop" ;;
libm_loop) expect nnc_circles_train_step "call float @tanhf" -eq 2 "one loop per layer" ;;
exp_loop) expect nnc_fashion_cnn_train_step "call contract float @llvm.exp.f32" -eq 2 "one loop each" ;;
exp_pair) expect nnc_reviews_train_step "call contract float @llvm.exp.f32" -eq 4 "unrolled" ;;
dot_loop) expect nnc_fashion_cnn_forward_batch "%vsum[0-9]* = alloca" -eq 1 "the outputs a loop" ;;
*) echo "unknown case $case"; exit 2 ;;
esac
