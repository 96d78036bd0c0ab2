#!/usr/bin/env bash
# every_op.sh OPS_DEF - every op of ops.def but the leaves has its derivative
# rule pinned: a golden file tests/rules/NAME.grad named after the op. The
# gradient ops of the window ops (NAME_dx, NAME_dw) are made by derivative
# rules only and nnc differentiates once: they have none.
set -u
rows=$(sed -n 's/^OP([A-Z_0-9]*, *"\([a-z_0-9]*\)", *[0-9]*, *\(OPC_[A-Z0-9]*\),.*/\1 \2/p' "$1") || exit 1
if [ -z "$rows" ]; then
  echo "no op rows in $1"
  exit 1
fi
cd "$(dirname "$0")" || exit 1
missing=0
while read -r name cls; do
  [ "$cls" = OPC_LEAF ] && continue
  case $name in *_dx | *_dw) continue ;; esac
  if [ ! -e "$name.grad" ]; then
    echo "op $name has no tests/rules/$name.grad (a $name.nn, or for an op no .nn file can write, a case in rule_graph.c)"
    missing=1
  fi
done <<<"$rows"
[ $missing -eq 0 ] && echo "every op has a rule golden"
exit $missing
