#!/usr/bin/env bash
# parallel.sh NNC EXAMPLES_DIR CASE - threads and MPI ranks train as one
# process would (driver/parallel.h). Cases:
#   threads.repeat   --threads 2 twice: the same bits
#   threads.agree    --threads 1, 2, 3: final losses within 1e-12 relative (f64)
#   threads.adam     W2 with Adam (its update in slices): --threads 1, 2 and 3
#                    within 1e-12 (f64); 4 threads twice (f32): the same bits
#   threads.dropout  moons with dropout after its first relu: --threads 1, 2
#                    and 3 within 1e-12 (each shard draws the masks of its
#                    own rows of the batch)
#   threads.gemm     W2 (bench/w2_digits.nn, f64): --threads 2 and 3 within
#                    1e-12 of --threads 1 at batches of 64 and 128; the
#                    shards' GEMMs are transposed or not by their rows
#                    (tests/unit/test_gemm_rows.c), train_step's by the batch
#   threads.unbatched  tests/parallel/unbatched.nn (gradients that are products
#                    of batch sums and parameters): --threads 2 saves the
#                    parameters of one thread (1e-12); so do --threads 2
#                    and 3 for tests/gradcheck/param_only_loss.nn (a loss
#                    of the parameters alone)
#   threads.usage    --threads 2 without --jit: exit 2 and the message
#   threads.clamp    more threads than rows in a batch: a note, and the run
#                    of as many threads as rows
#   threads.stats    NNC_THREAD_STATS=1: two lines per thread of where a step's
#                    time went (wall times and waits; the CPU time of the
#                    shard, sum and update), after the run, on standard error only; the
#                    same training as without it; nothing without it; the
#                    bytes of parameters each thread read before a shard
#                    whose lines went through memory
#   features.bits    the feature split (each large product split between two
#                    threads by columns or rows, runtime/fork.h): --threads 2
#                    prints the epoch and final lines of --threads 1, bit for
#                    bit, and splits products: W2 (f32, f64 at a batch of 77,
#                    Adam), an MLP of odd widths at batches 13 and 200 with
#                    SGD momentum, for 512-, 256- and 128-bit vectors, and W2
#                    built as segments
#   features.conv    NNC_SPLIT=features on a convnet: the same bits as one
#                    thread, its convolutions' products split
#   features.choice  --threads 2 splits the features of a model without
#                    convolutions and the batch of one with them; NNC_SPLIT=
#                    batch or features chooses; 3 threads split the batch;
#                    NNC_THREAD_STATS=1's line for the features
#   mpi.equal        mpirun -np 2 with batch B = one process with batch 2B (1e-12),
#                    also at B = 1, and only rank 0 prints
#   mpi.dropout      the same model under mpirun -np 2 with batch B = one
#                    process with batch 2B (1e-12), with and without threads
#   mpi.fault        one rank cannot load its parameters, or fails before the
#                    ranks meet (an output it cannot write, a file that does
#                    not compile), or cannot read its --predict rows: every
#                    rank stops, one message, never a hang
#   mpi.diverge      divergence under MPI: exit 1, the same step as one process
#   mpi.batch_norm   a model with batch_norm under mpirun: refused with one
#                    message (its statistics are the whole batch's), exit 1
#   mpi.disagree     ranks that would not run the same steps (another layer
#                    width, fewer data rows, other epochs, another learning
#                    rate, early_stop, a --resume or --load on one rank
#                    only): every rank stops
#                    at once, one message naming what differs, exit 1
set -u
nnc=$1 examples=$2 case=$3
# the threads.* and mpi.* cases are the batch split's; features.* choose
export NNC_SPLIT=batch
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*"; exit 1; }
final() { grep "^final train loss" "$1" | awk '{print $4}'; }
close() { # close A B: relative difference <= 1e-12
  python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); sys.exit(0 if abs(a-b)<=1e-12*abs(b) else 1)" "$1" "$2"
}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMPI_MCA_btl_vader_single_copy_mechanism=none
agree_threads() { # MODEL [OPTIONS]: --threads 1, 2 and 3 end within 1e-12
  local nn=$1
  shift
  [ $# -gt 0 ] || set -- --batch 32 --epochs 30
  for n in 1 2 3; do
    "$nnc" "$nn" --jit --train "$@" --threads $n >"$tmp/t$n" || fail "--threads $n"
  done
  local one
  one=$(final "$tmp/t1")
  for n in 2 3; do
    close "$(final "$tmp/t$n")" "$one" || fail "--threads $n gives $(final "$tmp/t$n"), --threads 1 $one"
  done
}
with_dropout() { # moons with a dropout after its first relu, as $tmp/drop.nn
  sed 's/linear(4) -> relu -> linear(4)/linear(4) -> relu -> dropout(0.5) -> linear(4)/' "$moons" >"$tmp/drop.nn"
  grep -q dropout "$tmp/drop.nn" || fail "no dropout in the model"
}
mpi() { timeout 120 mpirun --oversubscribe -np 2 "$@"; }
lines() { # the epoch and final lines of a run, without its speed
  grep -E '^(epoch|final)' "$1" | grep -v '^final.*\(time\|steps/s\)' | sed 's/  [0-9.]* steps\/s.*//'
}
same_bits() { # MODEL [OPTIONS]: --threads 2 (NNC_SPLIT as set) prints --threads 1's lines and splits products
  local nn=$1
  shift
  "$nnc" "$nn" --jit --train "$@" --threads 1 >"$tmp/one" || fail "$nn $*: --threads 1"
  NNC_THREAD_STATS=1 "$nnc" "$nn" --jit --train "$@" --threads 2 >"$tmp/two" 2>"$tmp/stats" || fail "$nn $*: --threads 2"
  [ -s "$tmp/one" ] && [ "$(lines "$tmp/one")" = "$(lines "$tmp/two")" ] ||
    fail "$nn $*: --threads 2 differs: $(diff <(lines "$tmp/one") <(lines "$tmp/two") | head -4)"
  grep -q '^threads: 2 (features), .* products split [1-9]' "$tmp/stats" || fail "$nn $*: no product split: $(cat "$tmp/stats")"
}
moons="$examples/moons.nn"
case $case in
features.bits)
  export NNC_SPLIT=features
  w2="$examples/../bench/w2_digits.nn"
  same_bits "$w2" --epochs 3
  same_bits "$w2" --epochs 2 --dtype f64 --batch 77
  sed -e 's/optimizer .*/optimizer adam(lr: 0.001)/' -e "s#\.\./examples/data#$examples/data#" "$w2" >"$tmp/w2_adam.nn"
  grep -q adam "$tmp/w2_adam.nn" || fail "no adam in the model"
  same_bits "$tmp/w2_adam.nn" --epochs 2
  sed -e 's/linear(256) -> relu -> linear(256) -> relu/linear(300) -> relu -> linear(129) -> tanh -> linear(37) -> relu/' \
    -e 's/optimizer .*/optimizer sgd(lr: 0.05, momentum: 0.9)/' -e "s#\.\./examples/data#$examples/data#" "$w2" >"$tmp/odd.nn"
  grep -q 'linear(129)' "$tmp/odd.nn" || fail "no odd widths in the model"
  for bits in 512 256 128; do
    for batch in 13 200; do
      NNC_VECTOR_BITS=$bits same_bits "$tmp/odd.nn" --epochs 2 --batch $batch
    done
  done
  NNC_SEGMENTS_FROM=200 NNC_SEGMENT_WEIGHT=100 same_bits "$w2" --epochs 2
  ;;
features.conv)
  export NNC_SPLIT=features
  python3 - "$tmp/img.csv" <<'PY' || fail "data"
import random, sys
random.seed(5)
with open(sys.argv[1], "w") as f:
    f.write(",".join(["x%d" % i for i in range(3 * 16 * 16)] + ["t%d" % i for i in range(4)]) + "\n")
    for r in range(48):
        c = r % 4
        f.write(",".join(["%.3f" % random.gauss(0, 1) for _ in range(3 * 16 * 16)] + ["1" if i == c else "0" for i in range(4)]) + "\n")
PY
  cat >"$tmp/conv.nn" <<NN
model conv {
  input  x[3, 16, 16]
  target t[4]
  y = x -> conv2d(16, kernel: 3, padding: "same") -> relu -> conv2d(32, kernel: 3, padding: "same") -> relu
        -> max_pool2d(2) -> flatten -> linear(64) -> relu -> linear(4)
  loss cross_entropy(y, t)
}
train {
  data      csv("$tmp/img.csv")
  optimizer adam(lr: 0.001)
  epochs    2
  batch     8
}
NN
  same_bits "$tmp/conv.nn"
  same_bits "$tmp/conv.nn" --dtype f64
  ;;
features.choice)
  unset NNC_SPLIT
  w2="$examples/../bench/w2_digits.nn"
  NNC_THREAD_STATS=1 "$nnc" "$w2" --jit --train --epochs 1 --threads 2 >/dev/null 2>"$tmp/err" || fail "W2"
  grep -q '^threads: 2 (features), steps: 29; per step: products split [0-9.]*, whole [0-9.]*, waits [0-9.]* ([0-9.]* us), worker slept [0-9.]*, its part taken back [0-9.]*$' "$tmp/err" ||
    fail "W2 on two threads: $(cat "$tmp/err")"
  NNC_SPLIT=batch NNC_THREAD_STATS=1 "$nnc" "$w2" --jit --train --epochs 1 --threads 2 >/dev/null 2>"$tmp/err" || fail "W2, batch"
  grep -q '^threads: 2, steps: ' "$tmp/err" || fail "NNC_SPLIT=batch: $(cat "$tmp/err")"
  NNC_THREAD_STATS=1 "$nnc" "$w2" --jit --train --epochs 1 --threads 3 >/dev/null 2>"$tmp/err" || fail "W2, 3 threads"
  grep -q '^threads: 3, steps: ' "$tmp/err" || fail "3 threads: $(cat "$tmp/err")"
  cd "$(dirname "$0")/../conv" || fail "no tests/conv"
  NNC_THREAD_STATS=1 "$nnc" conv_net.nn --jit --train --batch 8 --epochs 1 --threads 2 >/dev/null 2>"$tmp/err" || fail "conv_net"
  grep -q '^threads: 2, steps: ' "$tmp/err" || fail "conv_net on two threads: $(cat "$tmp/err")"
  NNC_SPLIT=features NNC_THREAD_STATS=1 "$nnc" conv_net.nn --jit --train --batch 8 --epochs 1 --threads 2 >/dev/null 2>"$tmp/err" ||
    fail "conv_net, features"
  grep -q '^threads: 2 (features)' "$tmp/err" || fail "NNC_SPLIT=features: $(cat "$tmp/err")"
  ;;
threads.repeat)
  "$nnc" "$moons" --jit --train --batch 32 --epochs 30 --threads 2 >"$tmp/a" || fail "run 1"
  "$nnc" "$moons" --jit --train --batch 32 --epochs 30 --threads 2 >"$tmp/b" || fail "run 2"
  [ "$(final "$tmp/a")" = "$(final "$tmp/b")" ] || fail "two runs differ: $(final "$tmp/a") $(final "$tmp/b")"
  ;;
threads.agree)
  agree_threads "$moons"
  ;;
threads.gemm)
  w2="$examples/../bench/w2_digits.nn"
  agree_threads "$w2" --dtype f64 --epochs 3
  agree_threads "$w2" --dtype f64 --epochs 3 --batch 128
  ;;
threads.adam)
  # Adam's update in slices, its b1^t and b2^t written by the tail call
  # after every slice has read them (W2: 256 x 256 in slices)
  sed -e 's/optimizer .*/optimizer adam(lr: 0.001)/' -e "s#\.\./examples/data#$examples/data#" \
    "$examples/../bench/w2_digits.nn" >"$tmp/w2_adam.nn"
  grep -q adam "$tmp/w2_adam.nn" || fail "no adam in the model"
  agree_threads "$tmp/w2_adam.nn" --dtype f64 --epochs 1
  for run in a b; do
    "$nnc" "$tmp/w2_adam.nn" --jit --train --epochs 1 --threads 4 >"$tmp/$run" || fail "--threads 4"
  done
  [ "$(final "$tmp/a")" = "$(final "$tmp/b")" ] || fail "two runs with 4 threads differ: $(final "$tmp/a") $(final "$tmp/b")"
  ;;
threads.dropout)
  with_dropout
  agree_threads "$tmp/drop.nn"
  ;;
mpi.dropout)
  with_dropout
  mpi "$nnc" "$tmp/drop.nn" --jit --train --batch 16 --epochs 10 >"$tmp/mpi" 2>"$tmp/err" || fail "mpirun: $(cat "$tmp/err")"
  mpi "$nnc" "$tmp/drop.nn" --jit --train --batch 16 --epochs 10 --threads 2 >"$tmp/mpi_t" 2>/dev/null || fail "mpirun, threads"
  "$nnc" "$tmp/drop.nn" --jit --train --batch 32 --epochs 10 >"$tmp/one" || fail "one process"
  close "$(final "$tmp/mpi")" "$(final "$tmp/one")" || fail "2 ranks x 16 rows: $(final "$tmp/mpi"); 1 x 32 rows: $(final "$tmp/one")"
  close "$(final "$tmp/mpi_t")" "$(final "$tmp/one")" || fail "ranks x threads: $(final "$tmp/mpi_t") vs $(final "$tmp/one")"
  ;;
threads.unbatched)
  nn=$(dirname "$0")/unbatched.nn
  "$nnc" "$nn" --jit --train --save "$tmp/one.safetensors" >/dev/null || fail "--jit"
  "$nnc" "$nn" --jit --train --threads 2 --save "$tmp/two.safetensors" >/dev/null || fail "--threads 2"
  python3 "$(dirname "$0")/../train/seedcheck.py" params "$tmp/one.safetensors" "$tmp/two.safetensors" 1e-12 ||
    fail "--threads 2 ends with other parameters"
  # a loss of the parameters alone: each thread's share of its gradient
  nn=$(dirname "$0")/../gradcheck/param_only_loss.nn
  for n in 1 2 3; do
    "$nnc" "$nn" --jit --train --batch 4 --epochs 3 --threads $n --save "$tmp/p$n.safetensors" >/dev/null ||
      fail "param_only_loss --threads $n"
  done
  for n in 2 3; do
    python3 "$(dirname "$0")/../train/seedcheck.py" params "$tmp/p1.safetensors" "$tmp/p$n.safetensors" 1e-12 ||
      fail "param_only_loss: --threads $n ends with other parameters than one thread"
  done
  ;;
threads.stats)
  NNC_THREAD_STATS=1 "$nnc" "$moons" --jit --train --batch 32 --epochs 30 --threads 3 >"$tmp/a" 2>"$tmp/err" ||
    fail "run with NNC_THREAD_STATS=1"
  "$nnc" "$moons" --jit --train --batch 32 --epochs 30 --threads 3 >"$tmp/b" 2>"$tmp/err0" || fail "run without"
  [ "$(final "$tmp/a")" = "$(final "$tmp/b")" ] || fail "the stats change the training: $(final "$tmp/a") $(final "$tmp/b")"
  grep -q "^threads: 3, steps: [1-9][0-9]*, spin target [0-9.]* us; per step (us):$" "$tmp/err" || fail "header: $(cat "$tmp/err")"
  for k in 0 1 2; do
    grep -q "^  thread $k: work [0-9.]* reduce [0-9.]* update [0-9.]* | waits [0-9.]* slept [0-9.]* shared [0-9.]* futex_waits [0-9.]* wakes [0-9.]* | spin [0-9.]* sleep [0-9.]* wake [0-9.]* | cpu [0-9.]*$" "$tmp/err" ||
      fail "no line for thread $k: $(cat "$tmp/err")"
    grep -q "^  thread $k CPU: work [0-9.]* reduce [0-9.]* update [0-9.]*$" "$tmp/err" ||
      fail "no CPU line for thread $k: $(cat "$tmp/err")"
  done
  # thread 0's shards took CPU time
  awk '/^  thread 0 CPU:/ && $5 > 0 {ok = 1} END {exit !ok}' "$tmp/err" || fail "no CPU time in thread 0's shards"
  # before the shards of a step whose lines go through memory (the first
  # phase's at least), each thread read every parameter (the bytes before
  # the gradients): three times those bytes a step
  grep -q "^  lines through memory (drop) in [1-9][0-9]* of " "$tmp/err" || fail "no dropped steps: $(cat "$tmp/err")"
  params=$("$nnc" "$moons" --emit layout | awk '$1 == "grad" {print $7; exit}')
  grep -qx "  parameters read ahead: $((3 * params)) bytes a dropped step" "$tmp/err" ||
    fail "read ahead, not 3 x $params bytes: $(grep 'read ahead' "$tmp/err")"
  # a step with no update_part (clip_norm's norm sums every gradient): only thread 0 updates
  sed 's/^  batch /  clip_norm 1.0\n  batch /' "$moons" >"$tmp/clip.nn"
  grep -q clip_norm "$tmp/clip.nn" || fail "no clip_norm in the model"
  NNC_THREAD_STATS=1 "$nnc" "$tmp/clip.nn" --jit --train --batch 32 --epochs 30 --threads 3 >/dev/null 2>"$tmp/err" ||
    fail "run with clip_norm"
  grep -q "^  thread 1 CPU: .* update 0.0$" "$tmp/err" || fail "thread 1 updated: $(cat "$tmp/err")"
  # its update is compiled up front with grad_part, not at the first step (one compile's stages)
  NNC_CACHE=0 NNC_COMPILE_THREADS=1 "$nnc" "$tmp/clip.nn" --jit --train --batch 32 --epochs 2 --threads 2 --time \
    >/dev/null 2>"$tmp/time" || fail "run with clip_norm and --time"
  [ "$(grep -c '^time codegen' "$tmp/time")" = 1 ] || fail "update compiled apart: $(cat "$tmp/time")"
  ! grep -q "^threads:\|^  thread" "$tmp/a" "$tmp/err0" || fail "stats printed without NNC_THREAD_STATS or on standard output"
  ;;
threads.usage)
  err=$("$nnc" "$moons" --train --threads 2 2>&1 >/dev/null)
  [ $? -eq 2 ] || fail "exit status"
  echo "$err" | head -1 | grep -qx "nnc: --threads above 1 needs --jit (the interpreter runs on one thread)" || fail "message: $err"
  err=$("$nnc" "$moons" --jit --train --threads 0 2>&1 >/dev/null)
  [ $? -eq 2 ] || fail "--threads 0 accepted"
  ;;
threads.clamp)
  "$nnc" "$moons" --jit --train --epochs 20 --batch 2 --threads 3 >"$tmp/t3" 2>"$tmp/err" || fail "--threads 3"
  [ "$(cat "$tmp/err")" = "nnc: note: --threads 3 is more than a batch of 2 rows can use; training on 2 threads" ] ||
    fail "message: $(cat "$tmp/err")"
  "$nnc" "$moons" --jit --train --epochs 20 --batch 2 --threads 2 >"$tmp/t2" 2>"$tmp/err" || fail "--threads 2"
  [ -s "$tmp/err" ] && fail "--threads 2 with a batch of 2 printed: $(cat "$tmp/err")"
  [ "$(final "$tmp/t3")" = "$(final "$tmp/t2")" ] || fail "--threads 3 is not the run of 2: $(final "$tmp/t3") $(final "$tmp/t2")"
  "$nnc" "$moons" --jit --train --epochs 20 --threads 2 >"$tmp/b1" 2>"$tmp/err" || fail "batch 1"
  [ "$(cat "$tmp/err")" = "nnc: note: --threads 2 is more than a batch of 1 row can use; training on 1 thread" ] ||
    fail "message: $(cat "$tmp/err")"
  "$nnc" "$moons" --jit --train --epochs 20 --threads 1 >"$tmp/b1one" || fail "--threads 1"
  [ "$(final "$tmp/b1")" = "$(final "$tmp/b1one")" ] || fail "batch 1 on 2 threads is not the run of one"
  ;;
mpi.equal)
  mpi "$nnc" "$moons" --jit --train --batch 4 --epochs 20 >"$tmp/mpi" 2>"$tmp/err" || fail "mpirun: $(cat "$tmp/err")"
  "$nnc" "$moons" --jit --train --batch 8 --epochs 20 >"$tmp/one" || fail "one process"
  [ "$(grep -c '^final train loss' "$tmp/mpi")" = 1 ] || fail "rank 1 printed too"
  close "$(final "$tmp/mpi")" "$(final "$tmp/one")" || fail "2 ranks x 4 rows: $(final "$tmp/mpi"); 1 x 8 rows: $(final "$tmp/one")"
  # the interpreter and threads inside ranks take the same path
  mpi "$nnc" "$moons" --train --batch 4 --epochs 2 >"$tmp/mpi_i" 2>/dev/null || fail "mpirun, interpreter"
  "$nnc" "$moons" --train --batch 8 --epochs 2 >"$tmp/one_i" || fail "interpreter"
  close "$(final "$tmp/mpi_i")" "$(final "$tmp/one_i")" || fail "interpreter: $(final "$tmp/mpi_i") vs $(final "$tmp/one_i")"
  mpi "$nnc" "$moons" --jit --train --batch 16 --epochs 10 --threads 2 >"$tmp/mpi_t" 2>/dev/null || fail "mpirun, threads"
  "$nnc" "$moons" --jit --train --batch 32 --epochs 10 >"$tmp/one_t" || fail "batch 32"
  close "$(final "$tmp/mpi_t")" "$(final "$tmp/one_t")" || fail "ranks x threads: $(final "$tmp/mpi_t") vs $(final "$tmp/one_t")"
  # one row a rank: the mean is still over the step's rows, all ranks'
  mpi "$nnc" "$moons" --jit --train --batch 1 --epochs 3 >"$tmp/mpi1" 2>"$tmp/err" || fail "mpirun --batch 1: $(cat "$tmp/err")"
  "$nnc" "$moons" --jit --train --batch 2 --epochs 3 >"$tmp/one2" || fail "batch 2"
  close "$(final "$tmp/mpi1")" "$(final "$tmp/one2")" || fail "2 ranks x 1 row: $(final "$tmp/mpi1"); 1 x 2 rows: $(final "$tmp/one2")"
  # --save: rank 0 writes the same parameters one process would
  mpi "$nnc" "$moons" --jit --train --batch 4 --epochs 2 --save "$tmp/p.st" >/dev/null 2>&1 || fail "mpirun --save"
  [ -s "$tmp/p.st" ] || fail "no checkpoint"
  ;;
mpi.fault)
  "$nnc" "$moons" --train --epochs 0 --save "$tmp/init.st" >/dev/null || fail "init"
  mpi sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then p=$0/missing.st; else p=$0/init.st; fi
             exec "$1" "$2" --jit --train --epochs 3 --load "$p"' "$tmp" "$nnc" "$moons" >"$tmp/out" 2>"$tmp/err"
  [ $? -ne 0 ] || fail "a failing rank did not fail the job"
  [ "$(grep -c '^nnc: rank 1 of 2 failed, so every rank stops: .*missing.st: error: cannot open: No such file or directory$' "$tmp/err")" = 1 ] ||
    fail "message: $(cat "$tmp/err")"
  grep -q "^final" "$tmp/out" && fail "rank 0 trained alone"
  # a rank that fails before the ranks meet (an output it cannot write, a
  # file that does not compile there) ends every rank, never a hang
  printf 'model m {\n  input x[2]\n  y = x -> linaer(3)\n}\n' >"$tmp/bad.nn"
  early() { # MESSAGE, then what rank 1 runs (rank 0: moons, --save in $tmp)
    local want=$1
    shift
    mpi sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then shift 2; exec "$@"; fi
               exec "$0" "$1" --jit --train --epochs 2 --save "$2/ok.st"' "$nnc" "$moons" "$tmp" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ $rc = 1 ] || fail "$*: exit status $rc (124: a hang), expected 1: $(cat "$tmp/err")"
    [ "$(grep -c '^nnc' "$tmp/err")" = 1 ] && grep -q "^nnc: rank 1 of 2 failed, so every rank stops: $want" "$tmp/err" ||
      fail "$*: $(cat "$tmp/err")"
    grep -q "^final" "$tmp/out" && fail "$*: rank 0 trained alone"
  }
  early "$tmp/none/p.st: error: cannot write: No such file or directory" \
    "$nnc" "$moons" --jit --train --epochs 2 --save "$tmp/none/p.st"
  early "$tmp/bad.nn:3:12: error: unknown op 'linaer'" "$nnc" "$tmp/bad.nn" --jit --train --epochs 2
  # --predict has no meeting before its rows: a rank that fails says why
  printf 'x1,x2\n0.5,0.25\n' >"$tmp/rows.csv"
  mpi sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then r=$0/missing.csv; else r=$0/rows.csv; fi
             exec "$1" "$2" --jit --predict "$r"' "$tmp" "$nnc" "$moons" >"$tmp/out" 2>"$tmp/err"
  [ $? = 1 ] && grep -q "^nnc: rank 1 of 2 failed, so every rank stops: $tmp/missing.csv: error: cannot open" "$tmp/err" ||
    fail "--predict on rank 1: $(cat "$tmp/err")"
  ;;
mpi.batch_norm)
  mpi "$nnc" "$examples/../tests/batch_norm/resume.nn" --jit --train >"$tmp/out" 2>"$tmp/err"
  [ $? -ne 0 ] || fail "batch_norm trained under mpirun"
  [ "$(grep -c ': error: batch_norm1 normalizes with the statistics of the whole batch, computed in one step, so a model with batch_norm trains on one thread of one process (not under mpirun)$' "$tmp/err")" = 1 ] ||
    fail "message: $(cat "$tmp/err")"
  grep -q "^final" "$tmp/out" && fail "a rank trained"
  ;;
mpi.diverge)
  mpi "$nnc" "$moons" --jit --train --lr 1e5 --epochs 3 --batch 4 >"$tmp/out" 2>"$tmp/err"
  [ $? -ne 0 ] || fail "divergence did not fail"
  "$nnc" "$moons" --jit --train --lr 1e5 --epochs 3 --batch 8 >/dev/null 2>"$tmp/one"
  want=$(head -1 "$tmp/one")
  [ "$(grep -cF -- "$want" "$tmp/err")" = 1 ] || fail "expected once: $want; got: $(cat "$tmp/err")"
  ;;
mpi.disagree)
  sed 's/linear(4) -> relu -> linear(1)/linear(5) -> relu -> linear(1)/' "$moons" >"$tmp/wide.nn"
  cp "$moons" "$tmp/moons.nn"
  # each case: rank 1 runs "$@" with its own file or options, rank 0 the moons example
  disagree() {
    local want=$1
    shift
    mpi sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then shift; exec "$@"; else exec "$0" "$1" --jit --train --epochs 3; fi' \
      "$nnc" "$tmp/moons.nn" "$nnc" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ $rc = 1 ] || fail "$*: exit status $rc (124: a hang), expected 1: $(cat "$tmp/err")"
    [ "$(grep -c '^nnc' "$tmp/err")" = 1 ] || fail "$*: expected one line from nnc: $(cat "$tmp/err")"
    grep -qxF "$want" "$tmp/err" || fail "$*: expected: $want; got: $(cat "$tmp/err")"
    grep -q "^final" "$tmp/out" && fail "$*: rank 0 trained"
  }
  msg='nnc: rank 1 of 2 failed, so every rank stops: it would not run the same steps as rank 0:'
  disagree "$msg \"graph:%linear3.W = param f64[5,4]\" here, \"graph:%linear3.W = param f64[4,4]\" on rank 0" \
    "$tmp/wide.nn" --jit --train --epochs 3
  disagree "$msg \"epochs 4, batch 1 rows a rank, shuffle false, seed 0\" here, \"epochs 3, batch 1 rows a rank, shuffle false, seed 0\" on rank 0" \
    "$tmp/moons.nn" --jit --train --epochs 4
  disagree "$msg \"learning rate 0.5, schedule constant(every: 0, gamma: 0, min_lr: 0, warmup: 0), early_stop 0\" here, \"learning rate 0.05, schedule constant(every: 0, gamma: 0, min_lr: 0, warmup: 0), early_stop 0\" on rank 0" \
    "$tmp/moons.nn" --jit --train --epochs 3 --lr 0.5
  sed 's/^train {/train {\n  early_stop 2/' "$moons" >"$tmp/early.nn"
  disagree "$msg \"learning rate 0.05, schedule constant(every: 0, gamma: 0, min_lr: 0, warmup: 0), early_stop 2\" here, \"learning rate 0.05, schedule constant(every: 0, gamma: 0, min_lr: 0, warmup: 0), early_stop 0\" on rank 0" \
    "$tmp/early.nn" --jit --train --epochs 3
  "$nnc" "$moons" --jit --train --epochs 2 --save "$tmp/trained.st" >/dev/null || fail "trained.st"
  disagree "$msg \"resumed after epoch 2, step 640, 0 rows into the next\" here, \"resumed after epoch 0, step 0, 0 rows into the next\" on rank 0" \
    "$tmp/moons.nn" --jit --train --epochs 3 --resume "$tmp/trained.st"
  mpi sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then exec "$0" "$1" --jit --train --epochs 3 --load "$2"; fi
             exec "$0" "$1" --jit --train --epochs 3' "$nnc" "$tmp/moons.nn" "$tmp/trained.st" >"$tmp/out" 2>"$tmp/err"
  [ $? = 1 ] && grep -q "^$msg \"starting parameters and optimizer state: hash [0-9a-f]*\" here" "$tmp/err" ||
    fail "--load on rank 1 only: $(cat "$tmp/err")"
  sed 's/samples: 1000/samples: 999/' "$moons" >"$tmp/fewer.nn"
  disagree "$msg \"validation data: 679 rows\" here, \"validation data: 680 rows\" on rank 0" \
    "$tmp/fewer.nn" --jit --train --epochs 3
  ;;
*) fail "unknown case $case" ;;
esac
echo "1 passed, 0 failed"
