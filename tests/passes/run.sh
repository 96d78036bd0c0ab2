#!/usr/bin/env bash
# run.sh NNC NAME.nn MODE - a pass test: `nnc NAME.nn --emit MODE` run in
# this directory must print NAME.MODE on standard output and NAME.notes (or
# nothing) on standard error, and exit 0. tests/update_golden.sh regenerates.
set -u
nnc=$1 nn=$2 mode=$3
cd "$(dirname "$0")" || exit 1
name=${nn%.nn}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$nnc" "$nn" --emit "$mode" >"$tmp/out" 2>"$tmp/err"
status=$?
fail=0
[ $status -eq 0 ] || { echo "exit status $status"; fail=1; }
diff -u "$name.$mode" "$tmp/out" || fail=1
if [ -f "$name.notes" ]; then diff -u "$name.notes" "$tmp/err" || fail=1
else [ -s "$tmp/err" ] && { echo "unexpected standard error:"; cat "$tmp/err"; fail=1; }
fi
[ $fail -eq 0 ] && echo "1 passed, 0 failed"
exit $fail
