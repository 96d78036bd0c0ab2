#!/bin/bash
# checkpoint.sh NNC TESTS_DIR EXAMPLES_DIR CASE - --save and --load.
#
#   roundtrip:ENGINE:MODEL  train MODEL (moons: f64, circles: f32) a few epochs
#       with --save A; then --epochs 0 --load A --save B reports the very
#       same final losses and accuracies (the in-memory parameters and the
#       loaded ones are the same bits), A and B hold the same parameters, and
#       --grad --load A = --grad --load B. Nothing else is left in the folder.
#   wrong_shape     loading another model's checkpoint: exit 1, one line
#                   naming the tensor and both shapes
#   wrong_dtype     an F64 checkpoint into an f32 model: exit 1, one line
#   missing_tensor  the model has a parameter the file lacks: exit 1, one line
#   extra_tensor    the file has a tensor the model lacks: exit 1, one line
#   no_save_on_failure  a run that fails before training (a wrong --load,
#                   missing data) writes no --save file and leaves an existing
#                   one as it was
#   save_after_divergence  training that diverges exits 1 with a message; a
#                   file --save leaves holds the model's tensors, all finite
#   save_bad_path   --save into a folder that does not exist: exit 1, a message
set -u
nnc=$1 tests=$2 examples=$3 case=$4
here=$(cd "$(dirname "$0")" && pwd)
check="python3 $here/seedcheck.py"
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $case: $*"; exit 1; }

# load_error FILE.nn CHECKPOINT REGEX [ARGS...]: --grad --load fails with exit
# 1, nothing on standard output, one line on standard error matching REGEX
load_error() {
  local nn=$1 st=$2 regex=$3
  shift 3
  "$nnc" "$nn" --grad --load "$st" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ $rc = 1 ] || { cat "$tmp/out" "$tmp/err"; fail "exit status $rc, expected 1"; }
  [ -s "$tmp/out" ] && { cat "$tmp/out"; fail "something on standard output"; }
  [ "$(wc -l <"$tmp/err")" = 1 ] || { cat "$tmp/err"; fail "expected one line on standard error"; }
  grep -Eq -- "$regex" "$tmp/err" || { cat "$tmp/err"; fail "the message does not match '$regex'"; }
  echo "ok: $case: $(cat "$tmp/err")"
}

case $case in
  roundtrip:*)
    IFS=: read -r _ engine model <<<"$case"
    args=()
    [ "$engine" = jit ] && args+=(--jit -O0)
    nn=$examples/$model.nn
    "$nnc" "$nn" --train --epochs 3 "${args[@]}" --save "$tmp/A.safetensors" >"$tmp/out1" 2>"$tmp/err" ||
      { cat "$tmp/out1" "$tmp/err"; fail "training with --save failed"; }
    [ -f "$tmp/A.safetensors" ] || fail "--save wrote no file"
    "$nnc" "$nn" --train --epochs 0 "${args[@]}" --load "$tmp/A.safetensors" --save "$tmp/B.safetensors" \
      >"$tmp/out2" 2>"$tmp/err" || { cat "$tmp/out2" "$tmp/err"; fail "--epochs 0 --load failed"; }
    grep -E '^final' "$tmp/out1" >"$tmp/final1"
    grep -E '^final' "$tmp/out2" >"$tmp/final2"
    grep -q '^final train loss' "$tmp/final1" || { cat "$tmp/out1"; fail "no final train loss"; }
    if ! cmp -s "$tmp/final1" "$tmp/final2"; then
      echo "after training:"; cat "$tmp/final1"; echo "after loading the saved parameters:"; cat "$tmp/final2"
      fail "the losses of the loaded parameters differ"
    fi
    # B's optimizer state is fresh (--load does not read A's)
    $check model "$tmp/A.safetensors" "$tmp/B.safetensors" 0 || fail "the saved parameters differ"
    "$nnc" "$nn" --grad "${args[@]}" --load "$tmp/A.safetensors" >"$tmp/gradA" 2>"$tmp/err" || { cat "$tmp/err"; fail "--grad --load A failed"; }
    "$nnc" "$nn" --grad "${args[@]}" --load "$tmp/B.safetensors" >"$tmp/gradB" 2>"$tmp/err" || { cat "$tmp/err"; fail "--grad --load B failed"; }
    cmp -s "$tmp/gradA" "$tmp/gradB" || { diff "$tmp/gradA" "$tmp/gradB"; fail "--grad differs"; }
    left=$(cd "$tmp" && ls | grep -Ev '^(A|B)\.safetensors$|^(out[12]|final[12]|err|grad[AB])$')
    [ -z "$left" ] || fail "files left behind: $left"
    echo "ok: $case"; cat "$tmp/final1" ;;
  wrong_shape)
    load_error "$tests/grad/worked.nn" "$tests/data/init_seed0.safetensors" 'linear1\.W.*\[4, ?2\].*\[2, ?2\]' ;;
  wrong_dtype)
    load_error "$tests/data/seed_moons.nn" "$tests/data/init_seed0.safetensors" 'linear1\.W.*F64.*F32' --dtype f32 ;;
  missing_tensor)
    load_error "$here/two_layers.nn" "$tests/grad/worked.safetensors" 'linear2\.W.*missing' ;;
  extra_tensor)
    load_error "$here/moons3.nn" "$tests/data/init_seed0.safetensors" 'linear4\.W' ;;
  no_save_on_failure)
    # runs that fail before training: a checkpoint of another model, a
    # missing data file. No file appears; an existing one stays as it was.
    for engine in interp jit; do
      args=(); [ $engine = jit ] && args=(--jit)
      for how in load data; do
        if [ $how = load ]; then
          cmd=("$tests/grad/worked.nn" --train --load "$tests/data/init_seed0.safetensors")
        else
          cmd=("$here/missing_data.nn" --train)
        fi
        "$nnc" "${cmd[@]}" "${args[@]}" --save "$tmp/new.safetensors" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        [ $rc = 1 ] || { cat "$tmp/out" "$tmp/err"; fail "$engine, $how: exit status $rc, expected 1"; }
        [ -e "$tmp/new.safetensors" ] && fail "$engine, $how: --save wrote a file"
        echo "old contents" >"$tmp/old.safetensors"
        "$nnc" "${cmd[@]}" "${args[@]}" --save "$tmp/old.safetensors" >"$tmp/out" 2>"$tmp/err"
        [ "$(cat "$tmp/old.safetensors")" = "old contents" ] || fail "$engine, $how: an existing --save file was overwritten"
        rm -f "$tmp/old.safetensors"
        left=$(cd "$tmp" && ls | grep -Ev '^(out|err)$')
        [ -z "$left" ] || fail "$engine, $how: files written: $left"
      done
    done
    echo "ok: $case" ;;
  save_after_divergence)
    # training that diverges exits 1 with a message; whatever --save leaves
    # is a complete checkpoint of finite values, and no temporary file
    for engine in interp jit; do
      args=(); [ $engine = jit ] && args=(--jit)
      rm -f "$tmp"/*
      "$nnc" "$here/diverge.nn" --train "${args[@]}" --save "$tmp/d.safetensors" >"$tmp/out" 2>"$tmp/err"
      rc=$?
      [ $rc = 1 ] || { cat "$tmp/err"; fail "$engine: exit status $rc for a diverging run, expected 1"; }
      grep -Eiq 'diverged|not finite|non-finite' "$tmp/err" || { cat "$tmp/err"; fail "$engine: no message about the divergence"; }
      if [ -e "$tmp/d.safetensors" ]; then
        python3 - "$here" "$tmp/d.safetensors" <<'PY' || fail "$engine: the file left by --save is not a good checkpoint"
import math, sys
sys.path.insert(0, sys.argv[1])
import seedcheck
t = seedcheck.read_safetensors(sys.argv[2])
assert sorted(t) == ["linear1.W", "linear1.b"], sorted(t)
assert all(math.isfinite(v) for _, _, vals in t.values() for v in vals), t
PY
      fi
      left=$(cd "$tmp" && ls | grep -Ev '^(out|err|d\.safetensors)$')
      [ -z "$left" ] || fail "$engine: files left: $left"
    done
    echo "ok: $case" ;;
  save_bad_path)
    "$nnc" "$tests/grad/worked.nn" --train --save "$tmp/no/such/dir/w.safetensors" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc = 1 ] || { cat "$tmp/out" "$tmp/err"; fail "exit status $rc, expected 1"; }
    grep -q 'w.safetensors' "$tmp/err" || { cat "$tmp/err"; fail "the message does not name the file"; }
    [ -e "$tmp/no" ] && fail "something was created"
    echo "ok: $case: $(cat "$tmp/err")" ;;
  *) echo "checkpoint.sh: unknown case '$case'"; exit 2 ;;
esac
