#!/usr/bin/env bash
# golden.sh NNC [MODE ARGS...] INPUT EXPECTED
#
# Run `NNC INPUT MODE ARGS...` in INPUT's directory, with INPUT's base name
# (so file names in the output do not depend on where the tree lives), and
# compare with the golden file EXPECTED:
#   EXPECTED ending in .err: standard error must equal it, the exit status
#                            must be 1 and standard output must be empty;
#   otherwise:               standard output must equal it, the exit status
#                            must be 0 and standard error must be empty.
# Prints a unified diff on a mismatch; exits 1 on any mismatch.
# INPUT need not exist (a test of a missing file). tests/update_golden.sh
# writes the golden files.
set -u

if [ $# -lt 3 ]; then
  echo "usage: golden.sh NNC [MODE ARGS...] INPUT EXPECTED" >&2
  exit 2
fi
abspath() { (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd)" "$(basename "$1")"); }
nnc=$(abspath "$1")
shift
args=("$@")
n=${#args[@]}
input=${args[n-2]}
expected=$(abspath "${args[n-1]}")
mode=("${args[@]:0:n-2}")

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$(dirname "$input")" && exec "$nnc" "$(basename "$input")" "${mode[@]}") \
  >"$tmp/stdout" 2>"$tmp/stderr"
status=$?

case "$expected" in
  *.err) want_status=1 compared=stderr other=stdout ;;
  *)     want_status=0 compared=stdout other=stderr ;;
esac

fail=0
shown="nnc $(basename "$input") ${mode[*]}"
if [ ! -f "$expected" ]; then
  echo "golden file $expected is missing (tests/update_golden.sh writes it)"
  fail=1
elif ! diff -u --label "$expected" --label "$shown ($compared)" \
       "$expected" "$tmp/$compared"; then
  fail=1
fi
if [ "$status" -ne "$want_status" ]; then
  echo "$shown: exit status $status, expected $want_status"
  fail=1
fi
if [ -s "$tmp/$other" ]; then
  echo "$shown: unexpected $other:"
  head -n 40 "$tmp/$other"
  fail=1
fi
exit $fail
