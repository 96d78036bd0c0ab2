#!/usr/bin/env bash
# cache.sh NNC EXAMPLES_DIR - the JIT's object cache (compiler/objcache.h):
# a second run loads the objects instead of compiling and prints the same;
# a damaged or foreign file is ignored and replaced; NNC_CACHE=0 writes
# nothing; an unusable directory changes nothing but the time; a different
# model or CPU is a different entry, a different learning rate is not; a
# directory or an entry that someone else could have written is not used
# (one note, then the run compiles), nor an entry that is a FIFO or a link;
# past NNC_CACHE_SIZE the least recently used entries are removed; the
# default directory comes from XDG_CACHE_HOME or HOME when absolute.
set -u
nnc=$1 examples=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*"; exit 1; }
export NNC_CACHE_DIR=$tmp/cache
unset NNC_CACHE
export NNC_COMPILE_THREADS=1 # one module (else two when a CPU is idle: modules.sh)
results() { grep -E '^final' "$1"; }
run() { timeout 120 "$nnc" "$examples/moons.nn" --jit --train --epochs 5 --time "$@" >"$tmp/out" 2>"$tmp/err" || fail "run $*: $(cat "$tmp/err")"; }

run; results "$tmp/out" >"$tmp/cold"
grep -q "^time llvm-opt" "$tmp/err" || fail "the first run did not compile"
objects() { ls "$1" | grep -Ec '^[0-9a-f]{64}\.o$'; }
n=$(objects "$tmp/cache")
# one module holds the training and the evaluation functions (jit.c)
[ "$n" = 1 ] || fail "expected 1 object named by 64 hex digits (training and evaluation), found: $(ls "$tmp/cache")"
run; results "$tmp/out" >"$tmp/warm"
grep -q "^time cache-hit" "$tmp/err" || fail "the second run did not use the cache: $(cat "$tmp/err")"
grep -q "^time llvm-opt" "$tmp/err" && fail "the second run compiled"
cmp -s "$tmp/cold" "$tmp/warm" || fail "a cached run printed other numbers"

# damaged files: truncated, a flipped byte, garbage: ignored and replaced
for f in "$tmp"/cache/*.o; do
  head -c 100 "$f" >"$f.x" && mv "$f.x" "$f"
done
run; results "$tmp/out" | cmp -s - "$tmp/cold" || fail "after truncation the numbers changed"
grep -q "^time llvm-opt" "$tmp/err" || fail "a truncated object was used"
for f in "$tmp"/cache/*.o; do
  size=$(stat -c %s "$f")
  printf '\x55' | dd of="$f" bs=1 seek=$((size - 7)) conv=notrunc 2>/dev/null
done
run; results "$tmp/out" | cmp -s - "$tmp/cold" || fail "after a flipped byte the numbers changed"
grep -q "^time llvm-opt" "$tmp/err" || fail "an object with a bad checksum was used"
for f in "$tmp"/cache/*.o; do head -c 4096 /dev/urandom >"$f"; done
run; results "$tmp/out" | cmp -s - "$tmp/cold" || fail "after garbage the numbers changed"
run; grep -q "^time cache-hit" "$tmp/err" || fail "replaced objects were not used"

# another learning rate is the same module (the step reads the rate from
# the buffer) with other numbers; another CPU is another object
run --lr 0.01
[ "$(objects "$tmp/cache")" = 1 ] || fail "--lr 0.01 made a new object"
grep -q "^time cache-hit" "$tmp/err" || fail "--lr 0.01 compiled again"
results "$tmp/out" | cmp -s - "$tmp/cold" && fail "--lr 0.01 printed the numbers of lr 0.05"
run --cpu x86-64-v2
[ "$(objects "$tmp/cache")" = 2 ] || fail "--cpu x86-64-v2 did not make a new object"

# off, and unusable
NNC_CACHE=0 NNC_CACHE_DIR=$tmp/off run
[ -e "$tmp/off" ] && fail "NNC_CACHE=0 wrote a cache"
touch "$tmp/file"
NNC_CACHE_DIR=$tmp/file/sub run
[ -s "$tmp/err" ] && grep -Eqv '^(time|workspace) ' "$tmp/err" && fail "an unusable cache directory printed: $(cat "$tmp/err")"
results "$tmp/out" | cmp -s - "$tmp/cold" || fail "an unusable cache directory changed the numbers"
ls "$tmp/cache" | grep -q tmp && fail "a temporary file was left"

# ---- trust: nothing someone else could have written is loaded ----
export NNC_CACHE_DIR=$tmp/trust
run
run
compiled() { grep -q "^time llvm-opt" "$tmp/err"; }
# expect_note TEXT: the run printed this one note, compiled and printed the same numbers
expect_note() {
  [ "$(grep -c '^nnc: note:' "$tmp/err")" = 1 ] || fail "$1: expected one note, got: $(cat "$tmp/err")"
  grep -qxF "nnc: note: not using the compile cache: $1; compiling instead" "$tmp/err" ||
    fail "expected the note '$1', got: $(grep '^nnc' "$tmp/err")"
  compiled || fail "$1: the cache was used"
  results "$tmp/out" | cmp -s - "$tmp/cold" || fail "$1: the numbers changed"
}
chmod 0777 "$tmp/trust"
run
expect_note "the directory $tmp/trust is writable by others (it must be yours, mode 0700)"
chmod 0700 "$tmp/trust"
run
compiled && fail "the directory made private again was not used"
# the module's entry (training and evaluation functions)
entry=$(grep -l train_epoch "$tmp"/trust/*.o)
chmod 0660 "$entry"
run
expect_note "$entry is writable by others"
run
compiled && fail "the entry replaced by the run that compiled was not used"
rm "$entry" && mkfifo "$entry"
run # opening a FIFO for reading must not wait for a writer
expect_note "$entry is not a regular file"
mkdir "$tmp/elsewhere"
cp -p "$entry" "$tmp/elsewhere/" && ln -sf "$tmp/elsewhere/$(basename "$entry")" "$entry"
run
expect_note "$entry is a symbolic link"
[ -L "$entry" ] && fail "a link was left in place of a compiled entry"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  # what root can make: an entry and a directory that belong to someone else
  chown nobody "$entry"
  run
  expect_note "$entry is not owned by you"
  chown nobody "$tmp/trust"
  run
  expect_note "the directory $tmp/trust is not owned by you (it must be yours, mode 0700)"
  chown root "$tmp/trust"
fi

# ---- eviction: past NNC_CACHE_SIZE the least recently used entries go ----
export NNC_CACHE_DIR=$tmp/small
mkdir -p "$NNC_CACHE_DIR"
touch "$NNC_CACHE_DIR/0123456789abcdef0123456789abcdef.o" "$NNC_CACHE_DIR/notes.txt"
run
[ -e "$NNC_CACHE_DIR/0123456789abcdef0123456789abcdef.o" ] && fail "an entry of an older nnc was kept"
[ -e "$NNC_CACHE_DIR/notes.txt" ] || fail "a file that is not the cache's was removed"
bytes() { stat -c %s "$NNC_CACHE_DIR"/*.o | awk '{ s += $1 } END { print s }'; }
two=$(bytes)
[ "$(cat "$NNC_CACHE_DIR/size")" = "$two" ] || fail "size says $(cat "$NNC_CACHE_DIR/size"), the entries hold $two bytes"
# (the learning rate is read from the buffer, so other batch sizes make
# the other entries; room for two runs of the largest)
run --batch 7
export NNC_CACHE_SIZE=$(($(bytes) * 2))
for b in 2 3 4 5 6 7; do
  run --batch $b
  [ "$(bytes)" -le "$NNC_CACHE_SIZE" ] || fail "after --batch $b the cache holds $(bytes) bytes, more than $NNC_CACHE_SIZE"
done
run --batch 7
compiled && fail "the newest entries were evicted"
run --batch 2
compiled || fail "the oldest entry was kept"
unset NNC_CACHE_SIZE

# the default directory: $XDG_CACHE_HOME/nnc, else $HOME/.cache/nnc, each
# only as an absolute path (a relative one would put a cache wherever nnc
# runs)
mkdir -p "$tmp/cwd"
(
  unset NNC_CACHE_DIR
  cd "$tmp/cwd" || exit 1
  XDG_CACHE_HOME=$tmp/xdg run
  [ "$(objects "$tmp/xdg/nnc")" = 1 ] || fail "no entry in \$XDG_CACHE_HOME/nnc"
  XDG_CACHE_HOME= HOME=$tmp/home run
  [ "$(objects "$tmp/home/.cache/nnc")" = 1 ] || fail "no entry in \$HOME/.cache/nnc"
  XDG_CACHE_HOME=relx HOME=relh run
  grep -q "^time llvm-opt" "$tmp/err" || fail "relative XDG_CACHE_HOME and HOME: not compiled"
  [ -z "$(ls "$tmp/cwd")" ] || fail "relative XDG_CACHE_HOME or HOME made $(ls "$tmp/cwd") in the working directory"
) || exit 1
echo "1 passed, 0 failed"
