#!/usr/bin/env bash
# update_golden.sh [NNC]
#
# Regenerate every golden file of the front-end tests from what NNC (default:
# build/nnc) prints now, for review with `git diff tests/`. CI never runs
# this: a golden file changes only when a reviewed change of the compiler
# means it to.
#   tests/ir/NAME.nn        -> NAME.ir (--emit ir); NAME.ast (--emit ast)
#                              where NAME.ast exists
#   examples/NAME.nn        -> tests/examples/NAME.ir and NAME.ast
#   tests/errors/NAME.nn    -> NAME.err (standard error of --emit ir)
#   tests/errors/NAME.err   with no NAME.nn: a missing file, regenerated too
#   tests/rules/NAME.nn     -> NAME.grad (--emit grad); NAME.grad with no
#                              NAME.nn: rule_graph NAME.op (build/tests/)
# nnc runs in the .nn file's directory with its base name, as tests/golden.sh
# does. A new ir test gets an .ast golden file with `touch tests/ir/NAME.ast`,
# a rule of an op no .nn file can write one with `touch tests/rules/NAME.grad`.
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
nnc=${1:-$root/build/nnc}
nnc=$(cd "$(dirname "$nnc")" && printf '%s/%s' "$(pwd)" "$(basename "$nnc")")
if [ ! -x "$nnc" ]; then
  echo "update_golden.sh: $nnc is not an executable (build first, or pass NNC)" >&2
  exit 2
fi
problems=0

# emit DIR FILE MODE OUT: stdout of `nnc FILE --emit MODE` in DIR, into OUT
emit() {
  local dir=$1 file=$2 mode=$3 out=$4 status
  (cd "$dir" && exec "$nnc" "$file" --emit "$mode") >"$out.tmp" 2>"$out.stderr"
  status=$?
  if [ $status -ne 0 ] || [ -s "$out.stderr" ]; then
    echo "warning: $dir/$file --emit $mode: exit status $status:" >&2
    cat "$out.stderr" >&2
    problems=$((problems + 1))
  fi
  mv "$out.tmp" "$out"
  rm -f "$out.stderr"
}

for nn in "$root"/tests/ir/*.nn; do
  name=$(basename "$nn" .nn)
  emit "$root/tests/ir" "$name.nn" ir "$root/tests/ir/$name.ir"
  if [ -e "$root/tests/ir/$name.ast" ]; then
    emit "$root/tests/ir" "$name.nn" ast "$root/tests/ir/$name.ast"
  fi
done

mkdir -p "$root/tests/examples"
for nn in "$root"/examples/*.nn; do
  name=$(basename "$nn" .nn)
  emit "$root/examples" "$name.nn" ir "$root/tests/examples/$name.ir"
  emit "$root/examples" "$name.nn" ast "$root/tests/examples/$name.ast"
  if [ "$name" = moons ]; then
    emit "$root/examples" "$name.nn" grad "$root/tests/examples/$name.grad"
    emit "$root/examples" "$name.nn" opt "$root/tests/examples/$name.opt"
    emit "$root/examples" "$name.nn" layout "$root/tests/examples/$name.layout"
  fi
done

cd "$root/tests/errors" || exit 1
for name in $(for f in *.nn *.err; do [ -e "$f" ] && echo "${f%.*}"; done | sort -u); do
  "$nnc" "$name.nn" --emit ir >"$name.stdout" 2>"$name.err"
  status=$?
  if [ $status -ne 1 ] || [ -s "$name.stdout" ]; then
    echo "warning: tests/errors/$name.nn: exit status $status (expected 1)" \
         "or output on stdout" >&2
    problems=$((problems + 1))
  fi
  rm -f "$name.stdout"
done

# tests/rules: one backward graph per derivative rule
for stem in $(ls "$root"/tests/rules/*.nn "$root"/tests/rules/*.grad | sed 's/\.[a-z]*$//' | sort -u); do
  name=$(basename "$stem")
  if [ -e "$stem.nn" ]; then
    emit "$root/tests/rules" "$name.nn" grad "$stem.grad"
  else
    (cd "$root/tests/rules" && exec "$(dirname "$nnc")/tests/rule_graph" "$name.op") >"$stem.grad" || {
      echo "warning: rule_graph $name.op failed" >&2
      problems=$((problems + 1))
    }
  fi
done

# tests/passes: --emit opt and grad, and the notes on standard error
cd "$root/tests/passes" || exit 1
for nn in *.nn; do
  name=${nn%.nn}
  "$nnc" "$nn" --emit opt >"$name.opt" 2>"$name.notes"
  "$nnc" "$nn" --emit grad >"$name.grad" 2>/dev/null
  [ -s "$name.notes" ] || rm -f "$name.notes"
done

echo "golden files regenerated; review them with: git diff -- tests/" >&2
[ $problems -eq 0 ] || echo "$problems warning(s) above" >&2
exit $((problems > 0))
