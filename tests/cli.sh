#!/usr/bin/env bash
# cli.sh NNC STATUS STREAM REGEX [ARGS...]
#
# Run NNC ARGS... in this script's ir/ directory and check the exit
# status and that STREAM (stdout or stderr) has a line matching the
# extended regular expression REGEX.
set -u

if [ $# -lt 4 ]; then
  echo "usage: cli.sh NNC STATUS STREAM REGEX [ARGS...]" >&2
  exit 2
fi
nnc=$1 want_status=$2 stream=$3 regex=$4
shift 4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$(dirname "$0")/ir" && exec "$nnc" "$@") >"$tmp/stdout" 2>"$tmp/stderr"
status=$?

fail=0
if [ "$status" -ne "$want_status" ]; then
  echo "nnc $*: exit status $status, expected $want_status"
  fail=1
fi
if ! grep -Eq -- "$regex" "$tmp/$stream"; then
  echo "nnc $*: no line of $stream matches /$regex/"
  fail=1
fi
if [ $fail -ne 0 ]; then
  echo "--- stdout"; head -n 20 "$tmp/stdout"
  echo "--- stderr"; head -n 20 "$tmp/stderr"
fi
exit $fail
