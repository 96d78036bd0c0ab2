#!/usr/bin/env bash
# cache.sh NNC EXAMPLES_DIR - the JIT's object cache (compiler/objcache.h):
# a second run loads the objects instead of compiling and prints the same;
# a damaged or foreign file is ignored and replaced; NNC_CACHE=0 writes
# nothing; an unusable directory changes nothing but the time; a different
# model, learning rate or CPU is a different entry.
set -u
nnc=$1 examples=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*"; exit 1; }
export NNC_CACHE_DIR=$tmp/cache
unset NNC_CACHE
results() { grep -E '^final' "$1"; }
run() { "$nnc" "$examples/moons.nn" --jit --train --epochs 5 --time "$@" >"$tmp/out" 2>"$tmp/err" || fail "run $*: $(cat "$tmp/err")"; }

run; results "$tmp/out" >"$tmp/cold"
grep -q "^time llvm-opt" "$tmp/err" || fail "the first run did not compile"
n=$(ls "$tmp/cache" | wc -l)
[ "$n" = 2 ] || fail "expected 2 objects (training and evaluation), found $n"
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

# another learning rate is another module, another CPU another object
run --lr 0.01
[ "$(ls "$tmp/cache" | wc -l)" = 3 ] || fail "--lr 0.01 did not make a new training object"
run --cpu x86-64-v2
[ "$(ls "$tmp/cache" | wc -l)" = 5 ] || fail "--cpu x86-64-v2 did not make new objects"

# off, and unusable
NNC_CACHE=0 NNC_CACHE_DIR=$tmp/off run
[ -e "$tmp/off" ] && fail "NNC_CACHE=0 wrote a cache"
touch "$tmp/file"
NNC_CACHE_DIR=$tmp/file/sub run
[ -s "$tmp/err" ] && grep -qv '^time' "$tmp/err" && fail "an unusable cache directory printed: $(cat "$tmp/err")"
results "$tmp/out" | cmp -s - "$tmp/cold" || fail "an unusable cache directory changed the numbers"
ls "$tmp/cache" | grep -q tmp && fail "a temporary file was left"
echo "1 passed, 0 failed"
