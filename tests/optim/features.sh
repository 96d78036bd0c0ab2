#!/bin/bash
# features.sh NNC TESTS_DIR EXAMPLES_DIR CASE ENGINE - training features
# around the optimizer step.
#
#   early_stop    tests/optim/early_stop.nn stops after epoch 15 with a line
#                 saying so, then `best epoch 11`, then the final lines; the
#                 checkpoint holds epoch 11's parameters (--eval --load prints
#                 the same final lines), the last epoch's as last.NAME, and
#                 the optimizer state
#   eval          --eval --load of a --save checkpoint prints the final lines
#                 of that run (losses and accuracies), no training lines
#   load_skips    --load reads a checkpoint with optimizer state (circles:
#                 Adam) and leaves the optimizer state fresh: --epochs 1 from
#                 it equals --epochs 1 from a copy without optimizer.* tensors
#   seed_valid    --seed N runs a file as its train block's `seed N` would,
#                 every seed of the file's own replaced: a generated valid
#                 set gets N + 1 and differs from the training set
#   load_dropout  --load of a dropout model's checkpoint starts dropout's
#                 step afresh, as a new run (the same final lines as from a
#                 copy of the parameters alone, which --load and --eval read)
#   resume_nothing_left  --resume of a checkpoint at the run's last epoch
#                 (or past it: a smaller --epochs) trains nothing, says so
#                 in a note and prints the same final lines
#   resume_no_epoch      --resume of a checkpoint --save did not write while
#                 training (no epoch in its metadata): exit 1, one line
#   resume_other_optimizer  --resume with another optimizer than the
#                 checkpoint's (sgd or adam under adamw): exit 1, one line
#                 naming both; of a checkpoint without the optimizer in its
#                 metadata, one line naming the missing state
#   resume_bad_metadata  --resume of a checkpoint whose metadata was changed
#                 (set_metadata.py): an epoch that is not a whole number, an
#                 epoch or a step count past 2^53, a shuffle_rng that is not
#                 four hexadecimal numbers, best_epoch without
#                 best_valid_loss, epoch_rows without epoch_loss, or rows of
#                 an epoch where this run's steps do not begin or past its
#                 data: exit 1, one line each
#   grad_no_data  --grad and --check-grad of a model without data: a note
#                 line on standard error, the same gradients each run, and
#                 a passing check
#   grad_no_data_embedding  the same with an embedding of 50 rows: the note
#                 says how its indices are drawn, the drawn indices reach
#                 rows beyond the first three (N(0, 1) values clamped to the
#                 table would not), and the check passes
#   dead_relu     examples/moons.nn with --seed 5 starts with its third relu
#                 dead: one note at line 7, column 67
#   dead_relu_sampled  a relu of -(x*x) - 1 (dead for any row) in a model
#                 whose forward pass is too dear for every one of its 1000
#                 rows: the note names how many rows spread over the set
#                 were checked, fewer than 1000
#   dead_relu_dropout  moons with dropout before a relu: the check runs
#                 the dropout from the step in the buffer (it aborted, no
#                 value for the state dropout.step); the run trains, no note
#   dead_relu_big the same relu in a model of more than 2^20 parameters: no
#                 note (the check is skipped)
#   loss_stuck    examples/moons.nn at --lr 1e-9: one note at the loss line
#   loss_initial_only  --train --epochs 0 (too few epochs for the loss
#                 check) takes no more CPU time than --eval: the train set's
#                 loss before training, a forward pass over all of it, is
#                 taken only when the check will compare it
#   schedule_plot --plot of a run with a schedule draws the learning rate
set -u
nnc=$1 tests=$2 examples=$3 case=$4 engine=$5
here=$tests/optim
check=$tests/train/seedcheck.py
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
args=()
[ "$engine" = jit ] && args+=(--jit)
fail() { echo "FAIL: $case ($engine): $*"; exit 1; }
run() { # OUT WANT_STATUS ARGS...
  local out=$1 want=$2
  shift 2
  "$nnc" "$@" "${args[@]}" >"$tmp/$out" 2>"$tmp/$out.err"
  local rc=$?
  [ $rc = "$want" ] || { cat "$tmp/$out" "$tmp/$out.err"; fail "nnc $* exited $rc, expected $want"; }
}
one_line_error() { # OUT REGEX
  [ -s "$tmp/$1" ] && { cat "$tmp/$1"; fail "something on standard output"; }
  [ "$(wc -l <"$tmp/$1.err")" = 1 ] || { cat "$tmp/$1.err"; fail "expected one line on standard error"; }
  grep -Eq -- "$2" "$tmp/$1.err" || { cat "$tmp/$1.err"; fail "the message does not match '$2'"; }
  echo "ok: $case ($engine): $(cat "$tmp/$1.err")"
}
strip_run_state() { # SRC DST PREFIX... - a copy of checkpoint SRC without the tensors named PREFIX*
  python3 - "$@" <<'PY' || fail "cannot write the copy"
import json, struct, sys
d = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", d[:8])[0]
h = json.loads(d[8:8 + n])
drop = lambda k: any(k.startswith(p) for p in sys.argv[3:])
assert all(any(k.startswith(p) for k in h) for p in sys.argv[3:]), sorted(h)
keep = {k: v for k, v in h.items() if k == "__metadata__" or not drop(k)}
body, out = d[8 + n:], b""
for k, v in keep.items():
    if k == "__metadata__":
        continue
    a, b = v["data_offsets"]
    v["data_offsets"] = [len(out), len(out) + b - a]
    out += body[a:b]
t = json.dumps(keep).encode()
t += b" " * (-len(t) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(t)) + t + out)
PY
}
tensors() { python3 -c "
import sys; sys.path.insert(0, '$tests/train'); import seedcheck
print(' '.join(sorted(seedcheck.read_safetensors('$1'))))"; }

case $case in
  early_stop)
    run out 0 "$here/early_stop.nn" --train --save "$tmp/es.safetensors"
    grep -E '^(stopped|best|final)' "$tmp/out" >"$tmp/lines"
    head -2 "$tmp/lines" | tr '\n' '|' | grep -q '^stopped early after epoch 15: the valid loss has not improved for 4 epochs|best epoch 11|$' ||
      { cat "$tmp/out"; fail "no stop line and best epoch 11 before the final lines"; }
    grep -q '^epoch 16/' "$tmp/out" && fail "an epoch after the stop"
    run eval 0 "$here/early_stop.nn" --eval --load "$tmp/es.safetensors"
    diff <(grep '^final' "$tmp/lines") "$tmp/eval" || fail "--eval of the checkpoint differs from the final lines"
    names=$(tensors "$tmp/es.safetensors")
    for t in linear1.W last.linear1.W last.linear3.b optimizer.linear1.W.m optimizer.bias_correction2; do
      [[ " $names " == *" $t "* ]] || fail "the checkpoint has no $t: $names"
    done
    echo "ok: $case ($engine)"; cat "$tmp/lines" ;;
  eval)
    run out 0 "$examples/circles.nn" --train --epochs 3 --save "$tmp/c.safetensors"
    run eval 0 "$examples/circles.nn" --eval --load "$tmp/c.safetensors"
    grep '^final' "$tmp/out" >"$tmp/final"
    diff "$tmp/final" "$tmp/eval" || fail "--eval printed other lines than the run's final lines"
    echo "ok: $case ($engine)"; cat "$tmp/eval" ;;
  load_skips)
    run out 0 "$examples/circles.nn" --train --epochs 2 --save "$tmp/c.safetensors"
    strip_run_state "$tmp/c.safetensors" "$tmp/p.safetensors" optimizer.
    run a 0 "$examples/circles.nn" --train --epochs 1 --load "$tmp/c.safetensors"
    run b 0 "$examples/circles.nn" --train --epochs 1 --load "$tmp/p.safetensors"
    diff <(grep '^final' "$tmp/a") <(grep '^final' "$tmp/b") || fail "--load used the optimizer state"
    echo "ok: $case ($engine)" ;;
  seed_valid)
    sed 's/moons(samples: 1000, noise: 0.15, seed: 42)/moons(samples: 300, noise: 0.15, seed: 42)/; s/split .*/valid moons(samples: 200, noise: 0.15, seed: 43)/; s/epochs .*/epochs 3/' \
      "$examples/moons.nn" >"$tmp/given.nn"
    sed 's/, seed: 4[23])/)/; s/xavier_normal(seed: 13)/xavier_normal/; s/epochs 3/epochs 3\n  seed 4/' "$tmp/given.nn" >"$tmp/seed4.nn"
    grep -q "seed" "$tmp/given.nn" && ! grep -q "seed:" "$tmp/seed4.nn" || fail "the models were not written"
    run a 0 "$tmp/given.nn" --train --seed 4
    run b 0 "$tmp/seed4.nn" --train
    diff <(grep '^final' "$tmp/a") <(grep '^final' "$tmp/b") || fail "--seed 4 is not the train block's seed 4"
    [ "$(sed -n 's/^final train loss //p' "$tmp/a")" != "$(sed -n 's/^final valid loss //p' "$tmp/a")" ] ||
      fail "the valid set is the training set"
    echo "ok: $case ($engine)" ;;
  load_dropout)
    sed 's/-> relu -> linear(1)/-> relu -> dropout(0.2) -> linear(1)/; s/optimizer .*/optimizer adam(lr: 0.01)/' "$examples/moons.nn" >"$tmp/drop.nn"
    run out 0 "$tmp/drop.nn" --train --epochs 2 --save "$tmp/c.safetensors"
    strip_run_state "$tmp/c.safetensors" "$tmp/p.safetensors" optimizer. dropout.step
    run a 0 "$tmp/drop.nn" --train --epochs 1 --load "$tmp/c.safetensors"
    run b 0 "$tmp/drop.nn" --train --epochs 1 --load "$tmp/p.safetensors"
    diff <(grep '^final' "$tmp/a") <(grep '^final' "$tmp/b") || fail "--load used dropout's step"
    run e 0 "$tmp/drop.nn" --eval --load "$tmp/p.safetensors"
    diff <(grep '^final' "$tmp/out") <(grep '^final' "$tmp/e") || fail "--eval of the parameters alone differs"
    echo "ok: $case ($engine)" ;;
  resume_nothing_left)
    run out 0 "$here/resume_adam.nn" --train --save "$tmp/a.safetensors"
    run again 0 "$here/resume_adam.nn" --train --resume "$tmp/a.safetensors" --save "$tmp/b.safetensors"
    grep -q '^epoch ' "$tmp/again" && fail "the resumed run trained"
    diff <(grep '^final' "$tmp/out") <(grep '^final' "$tmp/again") || fail "other final lines"
    python3 "$check" params "$tmp/a.safetensors" "$tmp/b.safetensors" 0 || fail "the checkpoints differ"
    grep -q "a.safetensors: note: the checkpoint reached epoch 10, and the run has 10 epochs: none is left" "$tmp/again.err" ||
      { cat "$tmp/again.err"; fail "no note that nothing is left to train"; }
    run past 0 "$here/resume_adam.nn" --train --epochs 4 --resume "$tmp/a.safetensors"
    grep -q "reached epoch 10, and the run has 4 epochs" "$tmp/past.err" || { cat "$tmp/past.err"; fail "no note"; }
    run past1 0 "$here/resume_adam.nn" --train --epochs 1 --resume "$tmp/a.safetensors"
    grep -q "reached epoch 10, and the run has 1 epoch: none" "$tmp/past1.err" || { cat "$tmp/past.err"; fail "no note"; }
    diff <(grep '^final' "$tmp/out") <(grep '^final' "$tmp/past") || fail "other final lines past the run's epochs"
    echo "ok: $case ($engine)" ;;
  resume_no_epoch)
    run out 1 "$tests/data/seed_moons.nn" --train --resume "$tests/data/init_seed0.safetensors"
    one_line_error out 'init_seed0.safetensors: error: no epoch in the checkpoint.s metadata: --resume continues a run that --save wrote' ;;
  resume_other_optimizer)
    run out 0 "$here/resume_nesterov.nn" --train --epochs 2 --save "$tmp/n.safetensors"
    sed 's/optimizer .*/optimizer adamw(lr: 0.01)/' "$here/resume_nesterov.nn" >"$tmp/adamw.nn"
    run bad 1 "$tmp/adamw.nn" --train --resume "$tmp/n.safetensors"
    one_line_error bad 'n.safetensors: error: the checkpoint holds the state of optimizer sgd, and this model trains with adamw: '
    # Adam's state has AdamW's names: the recorded optimizer tells them apart
    sed 's/optimizer .*/optimizer adam(lr: 0.01)/' "$here/resume_nesterov.nn" >"$tmp/adam.nn"
    run out 0 "$tmp/adam.nn" --train --epochs 2 --save "$tmp/a.safetensors"
    run bad 1 "$tmp/adamw.nn" --train --resume "$tmp/a.safetensors"
    one_line_error bad 'a.safetensors: error: the checkpoint holds the state of optimizer adam, and this model trains with adamw: '
    # a checkpoint without the optimizer in its metadata (an older nnc's):
    # the state it lacks
    python3 "$here/set_metadata.py" "$tmp/n.safetensors" "$tmp/old.safetensors" optimizer=
    run bad 1 "$tmp/adamw.nn" --train --resume "$tmp/old.safetensors"
    one_line_error bad 'old.safetensors: error: the checkpoint has no optimizer.bias_correction1, which this optimizer keeps' ;;
  resume_bad_metadata)
    run out 0 "$here/early_stop.nn" --train --epochs 3 --save "$tmp/es.safetensors"
    # refused KEY=VALUE... REGEX: --resume of es.safetensors with those metadata: one error line
    refused() {
      python3 "$here/set_metadata.py" "$tmp/es.safetensors" "$tmp/bad.safetensors" "${@:1:$#-1}"
      run bad 1 "$here/early_stop.nn" --train --resume "$tmp/bad.safetensors"
      one_line_error bad "bad.safetensors: error: ${*: -1}"
    }
    refused epoch=2.5 'metadata epoch is "2.5", not a whole number from 0 to 2\^53$'
    refused steps=18446744073709551615 'metadata steps is "18446744073709551615", not a whole number from 0 to 2\^53$'
    refused epoch=9223372036854775807 'metadata epoch is "9223372036854775807", not a whole number from 0 to 2\^53$'
    refused epoch_rows=20 'the checkpoint has epoch_rows but no epoch_loss \(a number\) in its metadata$'
    refused epoch_rows=25 epoch_loss=0x1p+0 'the checkpoint stopped within epoch 4 after 25 rows, where no step of 10 rows begins \(resume with the batch of the run it came from\)$'
    refused epoch_rows=100 epoch_loss=0x1p+0 'the checkpoint stopped within epoch 4 after 100 rows, where a training set of 100 rows has no more \(is it the run.s data\?\)$'
    refused shuffle_rng=0x1 'metadata shuffle_rng is "0x1", not four hexadecimal numbers$'
    refused best_valid_loss= 'the checkpoint has best_epoch but no best_valid_loss \(a number\) in its metadata$' ;;
  grad_no_data)
    run grad 0 "$here/nodata.nn" --grad
    grep -Eq '^.*nodata.nn: note: the train block has no data: --grad uses 3 rows of inputs drawn from N\(0, 1\) and targets from U\(0, 1\) with seed 7$' "$tmp/grad.err" ||
      { cat "$tmp/grad.err"; fail "no note about the drawn rows"; }
    [ "$(wc -l <"$tmp/grad.err")" = 1 ] || fail "more than one line on standard error"
    grep -q '^loss ' "$tmp/grad" && grep -q '^linear2.b \[2\] ' "$tmp/grad" || { cat "$tmp/grad"; fail "no gradients"; }
    run grad2 0 "$here/nodata.nn" --grad
    cmp -s "$tmp/grad" "$tmp/grad2" || fail "two runs drew other rows"
    run check 0 "$here/nodata.nn" --check-grad
    grep -q '^gradient check passed' "$tmp/check" || { cat "$tmp/check"; fail "the check did not pass"; }
    grep -q 'note: the train block has no data: --check-grad uses 3 rows' "$tmp/check.err" || fail "no note for --check-grad"
    # the rows are not the weights' draws (the init seed and the train
    # seed are both 0 by default): a linear(10) of 1000 N(0, 1) inputs
    # under Xavier weights has a loss near that of 10 classes, not one
    # that grows with the width (221 when the inputs were the weights)
    printf 'model m {\n  input x[1000]\n  target t[10]\n  y = x -> linear(10)\n  loss cross_entropy(y, t)\n}\ntrain {\n  batch 8\n}\n' >"$tmp/wide.nn"
    run wide 0 "$tmp/wide.nn" --grad
    awk '$1 == "loss" { exit !($2 < 40) }' "$tmp/wide" || { head -1 "$tmp/wide"; fail "the drawn rows repeat the weights"; }
    echo "ok: $case ($engine): $(cat "$tmp/grad.err")" ;;
  grad_no_data_embedding)
    run grad 0 "$here/nodata_embedding.nn" --grad
    grep -q 'note: the train block has no data: --grad uses 3 rows of inputs drawn from N(0, 1) (embedding indices uniformly from their tables. rows)' "$tmp/grad.err" ||
      { cat "$tmp/grad.err"; fail "no note about the drawn indices"; }
    # rows of embedding1.W [50,4] with a gradient, beyond rows 0 to 2
    far=$(awk '$1 == "embedding1.W" { for (i = 3; i <= NF; i++) if ($i != 0 && int((i - 3) / 4) > 2) r[int((i - 3) / 4)] = 1;
                                      n = 0; for (k in r) n++; print n }' "$tmp/grad")
    [ "${far:-0}" -ge 5 ] || { cat "$tmp/grad"; fail "the indices reach only $far rows beyond row 2"; }
    run check 0 "$here/nodata_embedding.nn" --check-grad
    grep -q '^embedding1.W .* ok' "$tmp/check" && grep -q '^gradient check passed' "$tmp/check" ||
      { cat "$tmp/check"; fail "the check did not pass"; }
    echo "ok: $case ($engine): $far rows beyond row 2 drawn" ;;
  dead_relu)
    run out 0 "$examples/moons.nn" --train --epochs 20 --seed 5
    [ "$(grep -c 'note:' "$tmp/out.err")" = 1 ] || { cat "$tmp/out.err"; fail "expected one note"; }
    grep -Eq 'moons.nn:7:67: note: every unit of this relu \(4\) gave 0 for every training row after epoch 1: the layer is dead.*leaky_relu' "$tmp/out.err" ||
      { cat "$tmp/out.err"; fail "no note on the dead relu"; }
    run ok 0 "$examples/moons.nn" --train --epochs 20
    [ -s "$tmp/ok.err" ] && { cat "$tmp/ok.err"; fail "a note on a run that trains"; }
    echo "ok: $case ($engine): $(head -1 "$tmp/out.err")" ;;
  dead_relu_dropout)
    sed 's/linear(4) -> relu -> linear(4)/linear(4) -> relu -> dropout(0.5) -> linear(4)/' "$examples/moons.nn" >"$tmp/drop.nn"
    grep -q dropout "$tmp/drop.nn" || fail "no dropout in the model"
    run out 0 "$tmp/drop.nn" --train --epochs 3
    grep -q '^final valid accuracy' "$tmp/out" || { cat "$tmp/out" "$tmp/out.err"; fail "no final lines"; }
    echo "ok: $case ($engine): $(grep '^final valid accuracy' "$tmp/out")" ;;
  dead_relu_sampled | dead_relu_big)
    width=400 hidden=300 rows=1000
    [ "$case" = dead_relu_big ] && width=1024 hidden=1024 rows=20
    awk -v w=$width -v n=$rows 'BEGIN { srand(3); for (r = 0; r < n; r++) { line = ""; for (k = 0; k < w; k++) line = line sprintf("%.2f,", rand()); print line rand() } }' >"$tmp/wide.csv"
    cat >"$tmp/wide.nn" <<NN
model wide {
  input  x[$width]
  target t[1]
  dead = relu(-(x * x) - 1)
  y = (x -> linear($hidden) -> relu -> linear(1)) + (dead -> linear(1))
  loss mse(y, t)
}
train {
  data      csv("$tmp/wide.csv")
  optimizer sgd(lr: 0.01)
  epochs    1
  batch     10
}
NN
    run out 0 "$tmp/wide.nn" --train
    if [ "$case" = dead_relu_big ]; then
      [ -s "$tmp/out.err" ] && { cat "$tmp/out.err"; fail "a note on a model the check skips"; }
      echo "ok: $case ($engine): no note"
    else
      checked=$(sed -n 's/.*wide.nn:4:10: note: every unit of this relu (400) gave 0 for each of \([0-9]*\) training rows spread over the set after epoch 1: the layer is dead.*/\1/p' "$tmp/out.err")
      [ -n "$checked" ] && [ "$checked" -lt 1000 ] && [ "$checked" -ge 8 ] ||
        { cat "$tmp/out.err"; fail "no note naming the rows checked"; }
      echo "ok: $case ($engine): $checked rows checked"
    fi ;;
  loss_stuck)
    run out 0 "$examples/moons.nn" --train --epochs 5 --lr 1e-9
    grep -Eq 'moons.nn:8:3: note: the training loss is 1.0078[0-9]* after 3 epochs, where it started \(1.0078[0-9]*\): nothing is learning; a larger learning rate' "$tmp/out.err" ||
      { cat "$tmp/out.err"; fail "no note on the loss"; }
    echo "ok: $case ($engine): $(head -1 "$tmp/out.err")" ;;
  loss_initial_only)
    # a forward pass over the 8000 rows takes the interpreter about 0.4 s
    cat >"$tmp/m.nn" <<NN
model m {
  input  x[2]
  target t[1]
  y = x -> linear(256) -> relu -> linear(256) -> relu -> linear(1)
  loss squared(y, t)
}
train {
  data      moons(samples: 8000, noise: 0.2, seed: 3)
  optimizer sgd(lr: 0.01)
  epochs    0
  batch     100
}
NN
    cpu() { # OUT ARGS: run nnc, its user CPU seconds into OUT.cpu
      local TIMEFORMAT=%U
      { time run "$1" 0 "$tmp/m.nn" "${@:2}"; } 2>"$tmp/$1.cpu"
    }
    cpu eval --eval
    cpu train --train
    e=$(cat "$tmp/eval.cpu") t=$(cat "$tmp/train.cpu")
    awk -v t="$t" -v e="$e" 'BEGIN { exit !(t < 1.5 * e) }' ||
      fail "--train --epochs 0 took $t s of CPU, --eval $e s: a forward pass over the train set more"
    diff <(grep '^final' "$tmp/train") "$tmp/eval" || fail "other final lines"
    echo "ok: $case ($engine): --train --epochs 0 $t s, --eval $e s of CPU" ;;
  schedule_plot)
    run out 0 "$here/resume_adam.nn" --train --plot "$tmp/r.svg"
    grep -q 'lr 0.005' "$tmp/out" || { cat "$tmp/out"; fail "no learning rate in the progress lines"; }
    [ -s "$tmp/r.svg" ] || fail "no report"
    echo "ok: $case ($engine)" ;;
  *) echo "features.sh: unknown case '$case'"; exit 2 ;;
esac
