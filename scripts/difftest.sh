#!/usr/bin/env bash
# scripts/difftest.sh [MINUTES] [FIRST_SEED] - the random-model differential
# tester (tests/differential/difftest.py) for longer than CI runs it: models
# from FIRST_SEED on (default: a seed from the clock) for MINUTES (default 60)
# against build/nnc (or $NNC_BUILD_DIR/nnc). Failing models are kept in
# ./difftest-failures/seed-S with their data, commands and outputs;
#   python3 tests/differential/difftest.py build/nnc --seed S --count 1
# checks one again, and --show prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-60}
seed=${2:-$(date +%s)}
nnc=${NNC_BUILD_DIR:-build}/nnc
[ -x "$nnc" ] || { echo "difftest.sh: build nnc first (scripts/build.sh)" >&2; exit 2; }
echo "difftest: from seed $seed for $minutes minutes"
exec python3 tests/differential/difftest.py "$nnc" --seed "$seed" --minutes "$minutes" --keep difftest-failures
