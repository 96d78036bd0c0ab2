#!/usr/bin/env bash
# signals.sh NNC EXAMPLES_DIR CASE - SIGINT and SIGTERM during --train
# (driver/train.c): the run stops at a step boundary, prints its final lines
# for what was trained, writes --save atomically and exits 128 + the signal;
# a second signal ends it at once. Cases (ENGINE: interp or jit):
#   int.ENGINE    SIGINT: exit 130, the final lines, a "stopped by" line on
#                 standard error, a checkpoint that loads, whose epoch is
#                 the one the message names
#   term.ENGINE   the same for SIGTERM: exit 143
#   twice         SIGTERM then SIGINT at once: the process ends at once (no
#                 final lines, no checkpoint)
#   ignored       started with SIGINT ignored (a background job of a script):
#                 SIGINT changes nothing, SIGTERM still stops the run
#   big_table     a step made mostly of a large table's update (an
#                 embedding under Adam): SIGTERM is seen within steps, not
#                 an epoch (about a minute) later
#   resume.ENGINE SIGTERM within an epoch (Adam, a cosine schedule, shuffled
#                 rows): the checkpoint says how many rows of that epoch were
#                 trained, and --resume from it ends with the bits of the
#                 run never stopped
set -u
set -m # background jobs keep SIGINT (without job control they would ignore it)
nnc=$1 examples=$2 case=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*"; echo "--- stdout"; cat "$tmp/out"; echo "--- stderr"; cat "$tmp/err"; exit 1; }
engine=()
case $case in *.jit) engine=(--jit) ;; esac

# start [PREFIX...]: training that would take days, in the background;
# returns once its first progress line is out (compiling is over, training
# runs)
start() {
  "$@" "$nnc" "$examples/moons.nn" "${engine[@]}" --train --epochs 100000000 --save "$tmp/p.safetensors" \
    >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q '^epoch 1/' "$tmp/out" 2>/dev/null && return
    kill -0 $pid 2>/dev/null || fail "nnc ended before training"
    sleep 0.1
  done
  kill -KILL $pid
  fail "no progress line after 60 s"
}

# finish: waits for nnc to end (at most 60 s); rc gets its exit status
finish() {
  for _ in $(seq 1 600); do
    kill -0 $pid 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 $pid 2>/dev/null; then
    kill -KILL $pid
    wait $pid
    fail "still running 60 s after the signal"
  fi
  wait $pid
  rc=$?
}

case $case in
int.* | term.*)
  sig=${case%%.*}
  want=$([ "$sig" = int ] && echo 130 || echo 143)
  name=$([ "$sig" = int ] && echo SIGINT || echo SIGTERM)
  start
  sleep 0.3
  kill -s "$name" $pid
  finish
  [ $rc = "$want" ] || fail "exit status $rc, expected $want"
  grep -q '^final train loss ' "$tmp/out" || fail "no final lines"
  grep -q '^final valid loss ' "$tmp/out" || fail "no final valid line"
  grep -q '^steps/s ' "$tmp/out" || fail "no steps/s line"
  line=$(grep '^nnc: stopped by' "$tmp/err")
  [[ $line =~ ^nnc:\ stopped\ by\ $name\ after\ ([0-9]+)\ of\ 100000000\ epochs\ and\ [0-9]+\ steps\;\ the\ final\ lines\ are\ for\ the\ parameters\ reached$ ]] ||
    fail "the message: $line"
  epochs=${BASH_REMATCH[1]}
  [ "$(grep -c . "$tmp/err")" = 1 ] || fail "more than one line on standard error"
  ls "$tmp" | grep -q '\.tmp\.' && fail "a temporary file was left"
  # the checkpoint: the parameters the final lines were computed with
  python3 - "$tmp/p.safetensors" "$epochs" <<'PY' || fail "the checkpoint's epoch"
import json, struct, sys
data = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", data[:8])[0]
meta = json.loads(data[8:8 + n])["__metadata__"]
sys.exit(0 if meta["epoch"] == sys.argv[2] else 1)
PY
  final=$(grep '^final train loss ' "$tmp/out")
  "$nnc" "$examples/moons.nn" "${engine[@]}" --train --epochs 0 --load "$tmp/p.safetensors" >"$tmp/again" 2>&1 ||
    fail "the checkpoint does not load: $(cat "$tmp/again")"
  grep -qxF "$final" "$tmp/again" || fail "the checkpoint is not what the final lines measured: $(grep final "$tmp/again")"
  ;;
twice)
  engine=(--jit)
  start
  kill -TERM $pid
  kill -INT $pid
  finish
  [ $rc = 130 ] || [ $rc = 143 ] || fail "exit status $rc, expected death by a signal"
  grep -q '^final' "$tmp/out" && fail "a second signal let the run finish"
  [ -e "$tmp/p.safetensors" ] && fail "a second signal let the run save"
  ;;
ignored)
  engine=(--jit)
  # python3 execs nnc with SIGINT ignored, as a shell without job control would
  start python3 -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); os.execv(sys.argv[1], sys.argv[1:])'
  kill -INT $pid
  sleep 1
  kill -0 $pid 2>/dev/null || fail "an ignored SIGINT stopped the run"
  kill -TERM $pid
  finish
  [ $rc = 143 ] || fail "exit status $rc, expected 143"
  grep -q '^nnc: stopped by SIGTERM' "$tmp/err" || fail "no stopped-by-SIGTERM line"
  ;;
big_table)
  # a step that is mostly the update of a large table (an embedding of 16
  # M values under Adam: tens of milliseconds a step, an epoch of about a
  # minute): the signal is still seen within steps, not at the epoch's end
  python3 -c "
import random
random.seed(1)
print('s0,s1,s2,s3,t')
for i in range(2000):
    print(','.join(str(random.randrange(2000000)) for _ in range(4)) + ',%.3f' % random.random())" >"$tmp/rows.csv"
  cat >"$tmp/m.nn" <<EOF
model m {
  dtype f32
  input s[4]
  target t[1]
  y = s -> embedding(2000000, 8) -> flatten -> linear(1)
  loss mse(y, t)
}
train {
  data      csv("rows.csv")
  optimizer adam(lr: 0.01)
  epochs    5
  batch     1
}
EOF
  "$nnc" "$tmp/m.nn" --jit --train >"$tmp/out" 2>"$tmp/err" &
  pid=$!
  sleep 4
  kill -TERM $pid
  sent=$(date +%s%N)
  finish
  waited_ms=$(( ($(date +%s%N) - sent) / 1000000 ))
  [ $rc = 143 ] || fail "exit status $rc, expected 143"
  grep -q '^nnc: stopped by SIGTERM after 0 of 5 epochs and [0-9]* steps' "$tmp/err" || fail "no stopped-by line"
  [ $waited_ms -lt 15000 ] || fail "the run ended $waited_ms ms after the signal"
  ;;
resume.*)
  # an epoch of tens of milliseconds or more, which the signal sent as
  # epoch 1 ends lands in, and of several of the runs of rows between
  # which training looks for a signal (about 2^22 values of work each:
  # driver/train.c, chunk_rows)
  rows=1000000 width=8 batch=1
  [ "$case" = resume.interp ] && rows=40000 width=32 batch=8
  cat >"$tmp/m.nn" <<EOF
model m {
  dtype f64
  input x[2]
  target t[1]
  y = x -> linear($width) -> relu -> linear(1)
  loss squared(y, t)
}
train {
  data      moons(samples: $((rows + 100)), noise: 0.15, seed: 42)
  split     $rows
  init      xavier_normal(seed: 13)
  optimizer adam(lr: 0.001)
  schedule  cosine(min_lr: 0.0001)
  epochs    3
  batch     $batch
  shuffle   true
}
EOF
  "$nnc" "$tmp/m.nn" "${engine[@]}" --train --save "$tmp/full.safetensors" >"$tmp/full" 2>&1 || fail "the whole run"
  # (a signal that came as an epoch ended would leave no rows of the next:
  # tried again)
  for try in 1 2 3; do
    "$nnc" "$tmp/m.nn" "${engine[@]}" --train --save "$tmp/cut.safetensors" >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    until grep -q '^epoch 1/' "$tmp/out" 2>/dev/null; do
      kill -0 $pid 2>/dev/null || fail "nnc ended before its first epoch did"
      sleep 0.01
    done
    kill -TERM $pid
    finish
    # (on a busy machine the signal may come only as the run ends)
    [ $rc = 143 ] && [ -e "$tmp/cut.safetensors" ] && python3 - "$tmp/cut.safetensors" <<'PY' && break
import json, struct, sys
data = open(sys.argv[1], "rb").read()
meta = json.loads(data[8:8 + struct.unpack("<Q", data[:8])[0]])["__metadata__"]
sys.exit(0 if int(meta.get("epoch_rows", "0")) > 0 else 1)
PY
    [ $try = 3 ] && fail "three signals, none within an epoch (exit status $rc)"
  done
  "$nnc" "$tmp/m.nn" "${engine[@]}" --train --resume "$tmp/cut.safetensors" --save "$tmp/resumed.safetensors" \
    >"$tmp/out" 2>"$tmp/err" || fail "--resume"
  grep '^final' "$tmp/full" >"$tmp/want"
  grep '^final' "$tmp/out" | cmp -s - "$tmp/want" || fail "final lines differ from the whole run's: $(cat "$tmp/want")"
  python3 - "$tmp/full.safetensors" "$tmp/resumed.safetensors" <<'PY' || fail "the checkpoints differ"
import json, struct, sys
def tensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    head = json.loads(data[8:8 + n])
    meta = head.pop("__metadata__")
    return {k: data[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in head.items()}, meta
(a, ma), (b, mb) = tensors(sys.argv[1]), tensors(sys.argv[2])
bad = [k for k in a if a[k] != b.get(k)] + [k for k in ("epoch", "steps", "shuffle_rng") if ma[k] != mb[k]]
if bad:
    print("differ:", bad)
sys.exit(1 if bad else 0)
PY
  ;;
*) fail "unknown case $case" ;;
esac
echo "1 passed, 0 failed"
