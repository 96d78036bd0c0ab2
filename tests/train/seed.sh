#!/bin/bash
# seed.sh NNC TESTS_DIR ENGINE CASE - nnc reproduces the seed's training
# procedure (tests/data/seed_moons.nn from init_seed0.safetensors) against
# tests/data/expected.json (moons[0]). ENGINE is interp or jit. CASE:
#
#   first_grad     --grad: loss and gradients of training row 0, rel 1e-12
#   final          --train, 400 epochs: final train/valid loss (rel 1e-9)
#                  and accuracies
#   checkpoint:N   --train --epochs N: losses after N epochs (rel 1e-9)
#   initial        --train --epochs 0: the losses of the initial parameters
#   batch32        --train --batch 32: the minibatch variant's final losses
#   params         --train --save: the trained parameters equal
#                  trained_seed0.safetensors (rel 1e-9)
set -u
nnc=$1 tests=$2 engine=$3 case=$4
data=$tests/data
check="python3 $(cd "$(dirname "$0")" && pwd)/seedcheck.py"
args=(--load "$data/init_seed0.safetensors")
[ "$engine" = jit ] && args+=(--jit)
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

run() { # run ARGS...: nnc on seed_moons.nn; output in $tmp/out
  if ! "$nnc" "$data/seed_moons.nn" "${args[@]}" "$@" >"$tmp/out" 2>"$tmp/err"; then
    echo "FAIL: nnc seed_moons.nn ${args[*]} $* exited with an error"
    cat "$tmp/out" "$tmp/err"
    exit 1
  fi
}
verdict() { # verdict COMMAND...: run the comparison, show the output on failure
  if ! "$@"; then
    echo "FAIL: $case ($engine); nnc printed:"
    grep -v '^epoch ' "$tmp/out"
    exit 1
  fi
  echo "ok: seed $case ($engine)"
}

case $case in
  first_grad)
    run --grad
    verdict $check grad "$data/expected.json" "$tmp/out" ;;
  final)
    run --train
    verdict $check losses "$data/expected.json" "$tmp/out" final ;;
  checkpoint:*)
    run --train --epochs "${case#checkpoint:}"
    verdict $check losses "$data/expected.json" "$tmp/out" "$case" ;;
  initial)
    run --train --epochs 0
    verdict $check losses "$data/expected.json" "$tmp/out" initial ;;
  batch32)
    run --train --batch 32
    verdict $check losses "$data/expected.json" "$tmp/out" batch32 ;;
  params)
    run --train --save "$tmp/trained.safetensors"
    verdict $check params "$tmp/trained.safetensors" "$data/trained_seed0.safetensors" 1e-9 ;;
  *) echo "seed.sh: unknown case '$case'"; exit 2 ;;
esac
