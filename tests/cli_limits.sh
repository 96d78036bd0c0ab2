#!/usr/bin/env bash
# cli_limits.sh NNC CASE - what the machine refuses nnc is an error line
# and exit status 1, never a crash:
#   stdout_full     standard output on /dev/full (a full disk) or closed,
#                   for --emit ir, --grad and --train: "nnc: error: cannot
#                   write standard output"
#   out_of_memory   a model whose --grad needs 2 GiB under `ulimit -v` of
#                   1.5 GB: "nnc: error: out of memory (...)", no core dump
#   llvm_memory     `ulimit -v` too small for LLVM's static constructors
#                   (before main): the same one line, not std::terminate;
#                   limits from 64 to 120 MB, each one that nnc does not
#                   fit in must give the line (and at least one must)
#   control_name    a file name with a newline and an escape sequence is
#                   shown as \xNN: one line, nothing for the terminal to act on
#   file_size       outputs past `ulimit -f` (-o, --save): "cannot write:
#                   File too large", not a death by SIGXFSZ, no temporary
#                   file left, the old file kept; the object cache's entry
#                   past it is skipped without a word
set -u
nnc=$1 case=$2
here=$(dirname "$0")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*"; exit 1; }
# one_error STATUS: exit status 1 and one line on standard error matching $2
one_error() {
  [ "$1" = 1 ] || fail "exit status $1, expected 1: $(cat "$tmp/err")"
  [ "$(wc -l <"$tmp/err")" = 1 ] && grep -Eq "$2" "$tmp/err" || fail "standard error: $(cat "$tmp/err")"
}
case $case in
stdout_full)
  for args in "--emit ir" "--grad" "--train --epochs 2"; do
    # shellcheck disable=SC2086
    "$nnc" "$here/gradcheck/exp.nn" $args >/dev/full 2>"$tmp/err"
    one_error $? '^nnc: error: cannot write standard output'
    # shellcheck disable=SC2086
    "$nnc" "$here/gradcheck/exp.nn" $args >&- 2>"$tmp/err"
    one_error $? '^nnc: error: cannot write standard output'
  done
  ;;
out_of_memory)
  cat >"$tmp/m.nn" <<EOF
model m {
  dtype f64
  input x[2]
  target t[1]
  y = x -> linear(4096) -> relu -> linear(4096) -> relu -> linear(1)
  loss squared(y, t)
}
train {
  data csv("rows.csv")
  batch 65536
}
EOF
  printf 'x0,x1,t0\n1,2,3\n' >"$tmp/rows.csv"
  (ulimit -c 0; ulimit -v 1500000; exec "$nnc" "$tmp/m.nn" --grad --batch 16) >/dev/null 2>"$tmp/err"
  one_error $? '^nnc: error: out of memory \(an allocation of [0-9]+ bytes failed\)$'
  ;;
llvm_memory)
  refused=0
  for kb in 64000 72000 80000 88000 96000 120000; do
    (ulimit -c 0; ulimit -v $kb; exec "$nnc" --version) >"$tmp/out" 2>"$tmp/err"
    status=$?
    if [ $status = 0 ]; then
      grep -q '^nnc [0-9]' "$tmp/out" || fail "ulimit -v $kb: exit 0 without the version"
    else
      one_error $status '^nnc: error: out of memory \(an allocation in LLVM failed\)$'
      refused=$((refused + 1))
    fi
  done
  [ $refused -gt 0 ] || fail "no limit from 64 to 120 MB was too small: the case tests nothing"
  ;;
control_name)
  "$nnc" "$(printf 'a\nb\033[31m.nn')" --grad 2>"$tmp/err"
  one_error $? '^a\\x0ab\\x1b\[31m\.nn: error: cannot open: No such file or directory$'
  ;;
file_size)
  cd "$tmp" || exit 1
  echo old >old.safetensors
  (ulimit -f 4; exec "$nnc" "$here/../examples/digits.nn" --emit obj -o d.o) >/dev/null 2>"$tmp/err"
  one_error $? '^d.o: error: cannot write: File too large$'
  (ulimit -f 4; NNC_CACHE=0 exec "$nnc" "$here/../examples/digits.nn" --jit --train --epochs 1 \
    --save old.safetensors) >/dev/null 2>"$tmp/err"
  one_error $? '^old.safetensors: error: cannot write: File too large$'
  [ "$(cat old.safetensors)" = old ] || fail "the old checkpoint was replaced"
  (ulimit -f 4; NNC_CACHE_DIR=$tmp/cache exec "$nnc" "$here/../examples/digits.nn" --jit --grad) >/dev/null 2>"$tmp/err"
  [ $? = 0 ] && [ ! -s "$tmp/err" ] || fail "a cache entry past the limit: $(cat "$tmp/err")"
  left=$(find . -name '*.tmp.*')
  [ -z "$left" ] || fail "temporary files left: $left"
  ;;
*) fail "unknown case $case" ;;
esac
echo "1 passed, 0 failed"
