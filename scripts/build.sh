#!/usr/bin/env bash
# scripts/build.sh - install what a fresh Debian 12 machine lacks, then
# configure and build nnc in ./build (or $NNC_BUILD_DIR).
#   scripts/build.sh                 release build with the test suite
#   NNC_SANITIZE=1 scripts/build.sh  ASan + UBSan build (in build-asan by default)
# Package installation needs root and is skipped when nothing is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake make gcc g++ pkg-config flex bison llvm-19-dev llvm-19-tools libcjson-dev libcairo2-dev python3
          clang libclang-rt-14-dev lld zlib1g-dev libzstd-dev libopenmpi-dev openmpi-bin graphviz libsodium-dev
          python3-numpy python3-pytest python3-setuptools python3-pip python3-venv python3-wheel
          dataset-fashion-mnist locales)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

sanitize=${NNC_SANITIZE:-0}
if [ "$sanitize" = 1 ]; then
  build=${NNC_BUILD_DIR:-build-asan}
  extra=(-DNNC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug)
else
  build=${NNC_BUILD_DIR:-build}
  extra=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
fi
cmake -S . -B "$build" -DLLVM_DIR=/usr/lib/llvm-19/lib/cmake/llvm "${extra[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)"
