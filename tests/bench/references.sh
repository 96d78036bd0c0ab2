#!/bin/sh
# tests/bench/references.sh CC SRC WORK -- bench/'s hand-written references
# (the programs bench/run and bench/scaling compare nnc with) still build
# and still end at the seed's losses (tests/data/expected.json): ref_moons
# after 400 epochs, ref_digits and ref_digits_threads (every mode) after
# one; and a missing file is a one-line error, exit 1.
set -eu
CC=$1 SRC=$2 WORK=$3
mkdir -p "$WORK"
cd "$SRC"
FLAGS="-O2 -march=native -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror"
for ref in ref_moons ref_digits ref_digits_threads; do
	"$CC" $FLAGS -o "$WORK/$ref" "bench/$ref.c" -lcjson -lm -pthread
done

# LOSS EXPECTED TOLERANCE NAME: relative difference within the tolerance
close() {
	python3 - "$@" <<'PY'
import sys
got, want, tol, name = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
rel = abs(got - want) / abs(want)
print("%s: %.10g against %.10g, relative difference %.2g" % (name, got, want, rel))
sys.exit(0 if rel <= tol else 1)
PY
}
expected() { python3 -c "import json,sys; d=json.load(open('tests/data/expected.json')); print(eval(sys.argv[1]))" "$1"; }
loss() { sed -n 's/^final train loss \([^ ]*\).*/\1/p' "$1" | tail -1; }

"$WORK/ref_moons" tests/data/moons_train.csv tests/data/moons_test.csv tests/data/init_seed0.safetensors >"$WORK/moons.out"
close "$(loss "$WORK/moons.out")" "$(expected 'd["moons"][0]["final_train_loss"]')" 1e-9 ref_moons

W2=$(expected 'd["digits"]["f64_reference"]["1"]["train_loss"]')
"$WORK/ref_digits" examples/data/digits.csv tests/data/digits_init_seed0.safetensors 1 >"$WORK/digits.out"
close "$(loss "$WORK/digits.out")" "$W2" 1e-5 ref_digits
modes=one
[ "$(nproc)" -ge 2 ] && modes="one batch features"
for mode in $modes; do
	"$WORK/ref_digits_threads" examples/data/digits.csv tests/data/digits_init_seed0.safetensors "$mode" 1 >"$WORK/threads.out"
	close "$(loss "$WORK/threads.out")" "$W2" 1e-5 "ref_digits_threads $mode"
done

# a file that is not there: one line naming it, exit 1
for ref in ref_moons ref_digits; do
	if [ "$ref" = ref_moons ]; then
		set -- tests/data/moons_train.csv tests/data/moons_test.csv "$WORK/missing.safetensors"
	else
		set -- examples/data/digits.csv "$WORK/missing.safetensors"
	fi
	status=0
	"$WORK/$ref" "$@" >/dev/null 2>"$WORK/err" || status=$?
	[ "$status" = 1 ] && [ "$(wc -l <"$WORK/err")" = 1 ] && grep -q "^$ref: cannot open .*missing.safetensors" "$WORK/err" ||
		{ echo "$ref with a missing file: exit $status, $(cat "$WORK/err")"; exit 1; }
done
echo "references ok"
