#!/usr/bin/env bash
# cli_limits.sh NNC CASE - what the machine refuses nnc is an error line
# and exit status 1, never a crash:
#   stdout_full     standard output on /dev/full (a full disk) or closed,
#                   for --emit ir, --grad and --train, or a pipe whose
#                   reader has gone: "nnc: error: cannot write standard
#                   output: REASON"
#   stdout_nonblocking  standard output a non-blocking pipe with a slow
#                   reader: every row of --predict arrives
#   big_batch       a batch the interpreter refuses (every node would take
#                   61 GiB in f64) runs in compiled code (a 0.3 GiB workspace)
#   out_of_memory   a model whose --grad needs 2 GiB under `ulimit -v` of
#                   1.5 GB: "nnc: error: out of memory (...)", no core dump
#   llvm_memory     `ulimit -v` too small for LLVM's static constructors
#                   (before main): the same one line, not std::terminate;
#                   limits from 64 to 120 MB, each one that nnc does not
#                   fit in must give the line (and at least one must)
#   control_name    a file name with a newline and an escape sequence (the
#                   model's, --load's, --resume's, --predict's) is shown
#                   as \xNN: one line, nothing for the terminal to act on
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
    one_error $? '^nnc: error: cannot write standard output: No space left on device$'
    # shellcheck disable=SC2086
    "$nnc" "$here/gradcheck/exp.nn" $args >&- 2>"$tmp/err"
    one_error $? '^nnc: error: cannot write standard output: Bad file descriptor$'
  done
  # closed, while a checkpoint is written: the checkpoint is whole (its
  # file does not take descriptor 1)
  "$nnc" "$here/gradcheck/exp.nn" --train --epochs 2 --save "$tmp/p.st" >&- 2>"$tmp/err"
  one_error $? '^nnc: error: cannot write standard output: Bad file descriptor$'
  "$nnc" "$here/gradcheck/exp.nn" --eval --load "$tmp/p.st" >/dev/null 2>"$tmp/err" || fail "the checkpoint: $(cat "$tmp/err")"
  # a pipe whose reader has gone before nnc writes, SIGPIPE ignored: EPIPE
  if command -v python3 >/dev/null; then
    python3 -c '
import os, subprocess, sys
r, w = os.pipe()
os.close(r)
with open(sys.argv[3], "wb") as err:  # (restore_signals=False: SIGPIPE stays ignored)
    sys.exit(subprocess.run([sys.argv[1], sys.argv[2], "--emit", "llvm"], stdout=w, stderr=err,
                            restore_signals=False).returncode)' "$nnc" "$here/gradcheck/exp.nn" "$tmp/err"
    one_error $? '^nnc: error: cannot write standard output: Broken pipe$'
  fi
  ;;
stdout_nonblocking)
  # standard output a non-blocking pipe (as node.js hands out) whose reader
  # starts late: every row arrives, none is lost at EAGAIN
  command -v python3 >/dev/null || { echo "python3 is missing: skipped"; exit 0; }
  python3 - "$nnc" "$here/../examples" "$tmp" <<'PY' || exit 1
import fcntl, os, subprocess, sys, time
nnc, examples, tmp = sys.argv[1:]
rows = os.path.join(tmp, "rows.csv")
with open(rows, "w") as f:
    f.write("x1,x2\n")
    for i in range(40000):
        f.write("%d.25,-%d.5\n" % (i % 7, i % 5))
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, fcntl.fcntl(w, fcntl.F_GETFL) | os.O_NONBLOCK)
p = subprocess.Popen([nnc, os.path.join(examples, "moons.nn"), "--predict", rows],
                     stdout=w, stderr=subprocess.PIPE)
os.close(w)
time.sleep(0.5)
data = b""
while True:
    chunk = os.read(r, 1 << 16)
    if not chunk:
        break
    data += chunk
err = p.stderr.read().decode()
p.wait()
lines = data.count(b"\n")
if p.returncode != 0 or lines != 40001:
    print("FAILED: exit %d, %d lines of 40001: %s" % (p.returncode, lines, err))
    sys.exit(1)
PY
  ;;
big_batch)
  # a batch whose every node (the interpreter's way, f64) would take 61 GiB,
  # while the compiled code's workspace takes 0.3 GiB: --jit runs it, the
  # interpreter refuses it before allocating
  cat >"$tmp/m.nn" <<EOF
model wide {
  input x[784]
  target t[10]
  logits = x -> linear(512) -> relu -> linear(10)
  loss cross_entropy(logits, t)
}
train {
  batch 20000
}
EOF
  "$nnc" "$tmp/m.nn" --jit --grad >"$tmp/out" 2>"$tmp/err" || fail "--jit: $(cat "$tmp/err")"
  grep -q '^loss ' "$tmp/out" || fail "--jit printed no loss"
  "$nnc" "$tmp/m.nn" --grad >/dev/null 2>"$tmp/err"
  one_error $? 'm.nn: error: the model needs 61.1 GiB for its parameters and a batch of 20000 rows of intermediates \(limit 16 GiB\)'
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
  # the files the options read: --load, --resume, --predict
  name=$(printf 'a\nb\033[31m')
  for args in "--grad --load" "--train --resume" "--predict"; do
    # shellcheck disable=SC2086
    "$nnc" "$here/gradcheck/exp.nn" $args "$name" 2>"$tmp/err"
    one_error $? '^a\\x0ab\\x1b\[31m: error: cannot open: No such file or directory$'
  done
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
