#!/usr/bin/env bash
# dot.sh NNC EXAMPLES_DIR DOT - --emit dot of every example renders with
# Graphviz as well-formed SVG; for moons, the picture shows the backward
# rules, the shapes on the edges and both clusters, and is deterministic.
set -u
nnc=$1 examples=$2 dot=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAILED: $*"; exit 1; }
for nn in "$examples"/*.nn; do
  name=$(basename "$nn" .nn)
  "$nnc" "$nn" --emit dot -o "$tmp/$name.dot" || fail "--emit dot of $name"
  "$dot" -Tsvg "$tmp/$name.dot" -o "$tmp/$name.svg" 2>"$tmp/err" || fail "dot -Tsvg $name: $(cat "$tmp/err")"
  [ -s "$tmp/err" ] && fail "dot -Tsvg $name warns: $(cat "$tmp/err")"
  grep -q '<svg' "$tmp/$name.svg" || fail "$name: no <svg> in dot's output"
  python3 -c 'import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])' "$tmp/$name.svg" ||
    fail "$name: dot's SVG is not well-formed"
done
m=$tmp/moons.dot
head -1 "$m" | grep -q '^digraph "moons" {$' || fail "first line: $(head -1 "$m")"
for want in 'subgraph cluster_forward' 'subgraph cluster_backward' 'd linear1.W via matmul' \
            'label="\[B,4\]"' 'label="\[4,2\]"' '%d.linear1.W\\nbatch_sum' 'd %7 via relu' 'n0 -> n4'; do
  grep -q -- "$want" "$m" || fail "moons.dot has no '$want'"
done
# the 8 gradients are marked, and no constant is a node of its own
[ "$(grep -c '(gradient)' "$m")" -eq 8 ] || fail "moons.dot marks $(grep -c '(gradient)' "$m") gradients"
grep -q 'const' "$m" && fail "a constant is drawn as a node"
"$nnc" "$examples/moons.nn" --emit dot | cmp -s - "$m" || fail "--emit dot is not deterministic"
echo "1 passed, 0 failed"
