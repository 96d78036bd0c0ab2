#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] - build the libFuzzer target (clang, ASan, UBSan)
# in build-fuzz, replay the saved corpus, then fuzz for SECONDS (default 120)
# starting from the corpus, the examples and the test files. A crash, a
# sanitizer report, an internal error or a leak fails the run; the input is
# left in build-fuzz/artifacts/. For a long run: scripts/fuzz.sh 36000.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-120}
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DLLVM_DIR=/usr/lib/llvm-19/lib/cmake/llvm \
  -DNNC_FUZZ=ON -DNNC_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target fuzz_nnc
mkdir -p build-fuzz/artifacts
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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
