#!/usr/bin/env bash
# error.sh NNC TEST_IDX CASE.nn CASE.err
#
# One malformed-data case of the idx source: writes the IDX files of
# `test_idx write` into a temporary directory, runs `nnc CASE.nn --train`
# there, and compares standard error with CASE.err. The exit status must be
# 1 and standard output empty.
set -u
nnc=$1 test_idx=$2 nn=$3 expected=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$test_idx" write "$tmp" || exit 1
cp "$nn" "$tmp/"
name=$(basename "$nn")
(cd "$tmp" && exec "$nnc" "$name" --train) >"$tmp/stdout" 2>"$tmp/stderr"
status=$?
fail=0
diff -u --label "$expected" --label "nnc $name --train (stderr)" "$expected" "$tmp/stderr" || fail=1
[ "$status" -eq 1 ] || { echo "nnc $name --train: exit status $status, expected 1"; fail=1; }
[ -s "$tmp/stdout" ] && { echo "unexpected standard output:"; head -n 20 "$tmp/stdout"; fail=1; }
exit $fail
