#!/usr/bin/env bash
# includes.sh ROOT - the source layers point down only, and the include
# graph has no cycles. The layers, from the bottom:
#
#   0  include/ (nnc.h), util/      depend on nothing
#   1  runtime/                     util only
#   2  compiler/, grammar/          runtime and util
#   3  driver/                      everything below
#
# Each #include "NAME" in those directories is resolved by file name (as the
# build's include paths resolve it; generated headers such as parser.tab.h
# are not in the tree and are skipped) and must name a file of its own layer
# or a lower one; tsort then finds no loop in the file-to-file graph.
set -eu
cd "$1"
dirs=(include util runtime compiler grammar driver)
rank() {
  case $1 in
    include | util) echo 0 ;;
    runtime) echo 1 ;;
    compiler | grammar) echo 2 ;;
    driver) echo 3 ;;
  esac
}
declare -A where
for f in $(find "${dirs[@]}" -type f); do
  name=${f##*/}
  [ -z "${where[$name]:-}" ] || { echo "$f and ${where[$name]}: two files of one name"; exit 1; }
  where[$name]=$f
done
status=0
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
for f in $(find "${dirs[@]}" -type f | sort); do
  for inc in $(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]+"([^"]+)".*/\1/p' "$f"); do
    to=${where[${inc##*/}]:-}
    [ -n "$to" ] || continue
    echo "$f $to" >>"$edges"
    if [ "$(rank "${to%%/*}")" -gt "$(rank "${f%%/*}")" ]; then
      echo "$f includes $to: ${f%%/*}/ may not depend on ${to%%/*}/"
      status=1
    fi
  done
done
tsort "$edges" >/dev/null || status=1
[ "$status" = 0 ] && echo "$(wc -l <"$edges") includes among $(find "${dirs[@]}" -type f | wc -l) files: downward only, no cycle"
exit $status
