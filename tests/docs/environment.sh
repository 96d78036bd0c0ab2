#!/usr/bin/env bash
# environment.sh ROOT - the environment-variable tables of docs/internals.md
# (section "Environment variables") are complete and true: every NNC*
# variable the sources read (C getenv, Python os.environ, shell ${NAME:-...})
# is listed there, and every NNC* variable listed there is read somewhere.
set -eu
root=$1
cd "$root"
sources=(compiler driver runtime util include python bench scripts examples .ci)
read_in_sources=$(grep -rhoE 'getenv\("NNC[A-Z0-9_]*"|environ(\.get\(|\[)"NNC[A-Z0-9_]*"|\$\{NNC[A-Z0-9_]*:?-' \
                    "${sources[@]}" tests/python 2>/dev/null |
                  grep -oE 'NNC[A-Z0-9_]*' | sort -u)
listed=$(sed -n '/^## [0-9]*\. Environment variables/,/^## /p' docs/internals.md |
         grep -oE '^\| `NNC[A-Z0-9_]*' | grep -oE 'NNC[A-Z0-9_]*' | sort -u)
status=0
for v in $(comm -23 <(echo "$read_in_sources") <(echo "$listed")); do
  echo "docs/internals.md: $v is read by the sources but not in the environment tables"
  status=1
done
for v in $(comm -13 <(echo "$read_in_sources") <(echo "$listed")); do
  echo "docs/internals.md: $v is in the environment tables but nothing reads it"
  status=1
done
[ "$status" = 0 ] && echo "$(echo "$listed" | wc -l) NNC* variables, each read and listed"
exit $status
