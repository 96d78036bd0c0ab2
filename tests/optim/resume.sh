#!/bin/bash
# resume.sh NNC FILE.nn ENGINE SPLIT [ARGS...] - --resume continues a run bit
# for bit: FILE.nn trained for its epochs in one run (--save A) ends exactly
# where SPLIT epochs (--epochs SPLIT --save B) and then --resume B (--save C)
# end: the same final lines (and `best epoch` line), and A and C hold the
# same tensors, bit for bit (parameters, optimizer state, last.* with early
# stopping). ENGINE is interp or jit; ARGS go to every run (--threads 2).
set -u
nnc=$1 nn=$2 engine=$3 split=$4
shift 4
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
args=("$@")
[ "$engine" = jit ] && args+=(--jit)
fail() { echo "FAIL: $(basename "$nn") $engine: $*"; exit 1; }
run() { # OUT ARGS...
  local out=$1
  shift
  "$nnc" "$nn" --train "${args[@]}" "$@" >"$tmp/$out" 2>"$tmp/$out.err" ||
    { cat "$tmp/$out" "$tmp/$out.err"; fail "nnc $* exited $?"; }
}
run full --save "$tmp/A.safetensors"
run first --epochs "$split" --save "$tmp/B.safetensors"
run rest --resume "$tmp/B.safetensors" --save "$tmp/C.safetensors"
grep -E '^(final|best epoch|stopped early)' "$tmp/full" >"$tmp/full.lines"
grep -E '^(final|best epoch|stopped early)' "$tmp/rest" >"$tmp/rest.lines"
grep -q '^final train loss' "$tmp/full.lines" || fail "no final lines"
cmp -s "$tmp/full.lines" "$tmp/rest.lines" || { diff "$tmp/full.lines" "$tmp/rest.lines"; fail "the final lines differ"; }
python3 "$here/../train/seedcheck.py" params "$tmp/A.safetensors" "$tmp/C.safetensors" 0 || fail "the checkpoints differ"
# the resumed run trained the epochs after SPLIT only
first=$(grep -m1 '^epoch ' "$tmp/rest" | sed 's/^epoch \([0-9]*\)\/.*/\1/')
[ -z "$first" ] || [ "$first" -gt "$split" ] || fail "the resumed run started at epoch $first"
echo "ok: $(basename "$nn") ($engine${*:+ $*}): $split epochs, --save, --resume equal one run, bit for bit"
cat "$tmp/full.lines"
