#!/usr/bin/env bash
# run_filecheck.sh NNC FILECHECK CHECKFILE [PREFIX] -- NNC-ARGS...
# Pipes nnc's output into FileCheck with the given check file.
set -u
nnc=$1 filecheck=$2 checks=$3 prefix=$4
shift 4
[ "${1:-}" = "--" ] && shift
out=$("$nnc" "$@") || { echo "nnc failed: $nnc $*"; exit 1; }
printf '%s\n' "$out" | "$filecheck" --check-prefix="$prefix" "$checks"
