#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] - build the libFuzzer target (clang, ASan, UBSan)
# in build-fuzz, replay the saved corpus, then fuzz for SECONDS (default 120)
# starting from the corpus, the examples and the test files. A crash, a
# sanitizer report, an internal error or a leak fails the run; the input is
# left in build-fuzz/artifacts/. For a long run: scripts/fuzz.sh 36000.
#
# scripts/fuzz.sh --minimize [DIR...] - reduce tests/fuzz/corpus, with the
# inputs in DIRs if given (what another fuzzing run found), to the fewest
# files with the same coverage (libFuzzer's -set_cover_merge=1, the set-cover form
# of -merge=1). Kept files keep their names; crash-* files (inputs that once
# crashed nnc) are kept whatever they cover; new ones are named by their SHA-1.
set -euo pipefail
cd "$(dirname "$0")/.."
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DLLVM_DIR=/usr/lib/llvm-19/lib/cmake/llvm \
  -DNNC_FUZZ=ON -DNNC_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_nnc
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ "${1:-}" = --minimize ]; then
  shift
  before=$(ls tests/fuzz/corpus | wc -l)
  mkdir "$work/kept"
  build-fuzz/fuzz_nnc -set_cover_merge=1 -timeout=20 -rss_limit_mb=4096 \
    -merge_control_file="$work/control" "$work/kept" tests/fuzz/corpus "$@" 2>&1 | grep '^MERGE-OUTER: [0-9]'
  for f in tests/fuzz/corpus/*; do
    sum=$(sha1sum <"$f" | cut -c1-40)
    if [ -e "$work/kept/$sum" ]; then
      rm "$work/kept/$sum"
    else
      case ${f##*/} in crash-*) ;; *) rm "$f" ;; esac
    fi
  done
  if ls "$work/kept"/* >/dev/null 2>&1; then cp "$work/kept"/* tests/fuzz/corpus/; fi
  echo "tests/fuzz/corpus: $before files before, $(ls tests/fuzz/corpus | wc -l) now"
  exit 0
fi

secs=${1:-120}
mkdir -p build-fuzz/artifacts
cp tests/fuzz/corpus/* "$work"/
for f in examples/*.nn tests/*/*.nn; do
  if [ -f "$f" ]; then cp "$f" "$work/seed-$(echo "$f" | tr / _)"; fi
done
echo "replaying $(ls tests/fuzz/corpus | wc -l) saved inputs"
build-fuzz/fuzz_nnc -runs=0 tests/fuzz/corpus
build-fuzz/fuzz_nnc "$work" -dict=tests/fuzz/nnc.dict -max_total_time="$secs" -max_len=4096 \
  -timeout=20 -rss_limit_mb=4096 -artifact_prefix=build-fuzz/artifacts/ -print_final_stats=1 2>&1 |
  grep -E "^(INFO: seed corpus|#[0-9]+ *(DONE|pulse)|stat::|==[0-9]+==ERROR|SUMMARY|artifact_prefix)" || true
# libFuzzer's status is lost in the pipe: a crash leaves an artifact
if ls build-fuzz/artifacts/* >/dev/null 2>&1; then
  echo "fuzzing found a problem: $(ls build-fuzz/artifacts)"
  exit 1
fi
