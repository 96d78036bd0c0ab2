#!/usr/bin/env bash
# workspace.sh NNC CASE - the compiled code's workspace (what `--time` prints
# as "workspace N bytes") is sized by the batch, never by the data set, and
# buffers are reused as their values die.
#
#   by_batch   an MLP 64-128-128-10 (f32) trained one epoch with --jit at
#              batch 16 on 48 rows and on 2000 rows: the same workspace, below
#              4 batches of every per-row value plus the largest weight for
#              each of the two modules (training, evaluation) to pack (one
#              that held every node for the batch, or was sized by the rows,
#              is several times that); at batch 32 it grows with the batch
#              and stays below the bound for 32 rows
#   in_place   y = softmax(x * w) * 2 over 256 values, f64, batch 4: --predict
#              keeps x * w (8 KiB) and softmax's result, and y is written over
#              softmax's result, which dies in it: 16384 bytes, not 24576
#   shared     the JIT maps the workspace and defines it for the modules: one
#              module, two modules (they share it: the same size as one) and
#              the cached objects of each (a second run) train to the same
#              output, the workspace 1 MB and more (a mapping of its own)
#   aot_bss    an object file (--emit obj) still holds its own workspace
#              (.bss), so a C program links it alone
#   map_fails  when the workspace cannot be mapped (fail_mmap.c preloaded;
#              under ASan, its link-order check off):
#              one line on stderr, exit status 1, no crash
set -u
nnc=$1 case=$2 fail_mmap=${3:-}
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: workspace $case: $*"; exit 1; }
wide() { # TRAIN_BLOCK: a 64-1024-10 MLP as $tmp/w.nn
	printf 'model wide {\n  input  x[64]\n  target t[10]\n  y = x -> linear(1024) -> relu -> linear(10)\n  loss cross_entropy(y, t)\n}\n%s\n' "$1" >"$tmp/w.nn"
}
# one module on one thread: the JIT picks two modules when a CPU is idle,
# and the workspace follows the layout, which must not follow the load here
export NNC_COMPILE_THREADS=1
# rows of 64 inputs and a class label (0-9)
data() {
	awk -v rows="$1" 'BEGIN { for (r = 0; r < rows; r++) { line = ""; for (k = 0; k < 64; k++) line = line sprintf("%.3f,", sin(r * 0.7 + k * 0.3)); print line (r % 10) } }' >"$2"
}
workspace() { # workspace FILE.nn ARGS... -> the bytes --time reports
	"$nnc" "$@" --time 2>"$tmp/err" >"$tmp/out" || { cat "$tmp/err" "$tmp/out"; fail "nnc $* failed"; }
	awk '$1 == "workspace" { print $2 }' "$tmp/err"
}
case $case in
by_batch)
	data 48 "$tmp/small.csv"
	data 2000 "$tmp/large.csv"
	for rows in small large; do
		cat >"$tmp/$rows.nn" <<NN
model mlp {
  input  x[64]
  target t[10]
  y = x -> linear(128) -> relu -> linear(128) -> relu -> linear(10)
  loss cross_entropy(y, t)
}
train {
  data      csv("$rows.csv", onehot: true)
  optimizer adam(lr: 0.001)
  epochs    1
  batch     16
}
NN
	done
	small=$(workspace "$tmp/small.nn" --jit --train --threads 1)
	large=$(workspace "$tmp/large.nn" --jit --train --threads 1)
	large32=$(workspace "$tmp/large.nn" --jit --train --threads 1 --batch 32)
	echo "workspace at batch 16: $small bytes on 48 rows, $large bytes on 2000 rows; at batch 32: $large32 bytes"
	[ -n "$small" ] && [ -n "$large" ] && [ -n "$large32" ] || fail "no workspace line in --time's output"
	[ "$small" = "$large" ] || fail "the workspace follows the data set"
	# per row: 64 inputs, 10 targets, 128 + 128 + 10 values a layer; f32
	row=$(((64 + 10 + 128 + 128 + 10) * 4)) weight=$((2 * 128 * 128 * 4))
	bound16=$((4 * 16 * row + weight)) bound32=$((4 * 32 * row + weight))
	[ "$large" -le "$bound16" ] || fail "$large bytes at batch 16, more than $bound16"
	[ "$large32" -le "$bound32" ] || fail "$large32 bytes at batch 32, more than $bound32"
	[ "$large32" -gt "$large" ] || fail "the workspace does not grow with the batch"
	;;
in_place)
	cat >"$tmp/s.nn" <<'NN'
model scaled {
  dtype f64
  input  x[256]
  target t[256]
  param  w[256] = normal(std: 0.1)
  y = softmax(x * w) * 2
  loss mse(y, t)
}
train { batch 4 }
NN
	awk 'BEGIN { for (r = 0; r < 9; r++) { line = ""; for (k = 0; k < 256; k++) line = line (k ? "," : "") sprintf("%.2f", cos(r + k)); print line } }' >"$tmp/x.csv"
	ws=$(workspace "$tmp/s.nn" --jit --predict "$tmp/x.csv")
	echo "workspace of predict: $ws bytes"
	[ "$(wc -l <"$tmp/out")" = 10 ] || fail "not 9 rows of predictions and a header"
	[ "$ws" = 16384 ] || fail "$ws bytes, not 16384"
	;;
shared | map_fails)
	data 40 "$tmp/d.csv"
	wide 'train {
  data      csv("d.csv", onehot: true)
  init      he_normal(seed: 1)
  optimizer adam(lr: 0.001)
  epochs    2
  batch     256
}'
	if [ "$case" = map_fails ]; then
		cd "$tmp" || exit 2
		NNC_CACHE=0 NNC_TEST_MMAP_FAIL=1048576 LD_PRELOAD="$fail_mmap" ASAN_OPTIONS=verify_asan_link_order=0 \
			"$nnc" w.nn --jit --train >out 2>err
		rc=$?
		cat err
		[ "$rc" = 1 ] || fail "exit status $rc, not 1"
		[ "$(wc -l <err)" = 1 ] || fail "not one line on stderr"
		grep -q "^nnc: error: cannot allocate the workspace of the compiled code ([0-9]* bytes): " err ||
			fail "not the error expected"
		exit 0
	fi
	export NNC_CACHE_DIR=$tmp/cache
	one=$(NNC_COMPILE_THREADS=1 workspace "$tmp/w.nn" --jit --train) && cp "$tmp/out" "$tmp/one"
	two=$(NNC_COMPILE_THREADS=2 workspace "$tmp/w.nn" --jit --train) && cp "$tmp/out" "$tmp/two"
	echo "workspace: one module $one bytes, two modules $two bytes"
	[ -n "$one" ] && [ "$one" -ge 1048576 ] || fail "workspace '$one', not 1 MB or more"
	[ "$one" = "$two" ] || fail "two modules' workspace $two bytes, one module's $one"
	# the losses and accuracies, not the speed
	results() { grep -v -e time -e '^steps/s' "$1" | sed -E 's/ +[0-9]+ steps\/s.*//'; }
	results "$tmp/one" >"$tmp/one.r"
	results "$tmp/two" >"$tmp/two.r"
	cmp -s "$tmp/one.r" "$tmp/two.r" || fail "one module and two trained differently"
	for n in 1 2; do
		NNC_COMPILE_THREADS=$n workspace "$tmp/w.nn" --jit --train >/dev/null
		grep -q "cache-hit" "$tmp/err" || fail "no cached object used ($n module(s))"
		results "$tmp/out" | cmp -s - "$tmp/one.r" || fail "the cached objects ($n module(s)) trained differently"
	done
	;;
aot_bss)
	wide 'train { batch 256 }'
	"$nnc" "$tmp/w.nn" --emit obj -o "$tmp/w.o" || fail "--emit obj failed"
	syms=$(nm "$tmp/w.o" | grep 'nnc\.workspace$')
	echo "the object's workspace: $syms"
	echo "$syms" | grep -q '^[0-9a-f]* [bB] nnc\.workspace$' || fail "the object does not define its workspace in .bss"
	;;
*) echo "unknown case $case"; exit 2 ;;
esac
