#!/usr/bin/env bash
# cxx_linkage.sh INCLUDE_DIR... - nnc.h from C++: every NNC_API function it
# declares has C linkage (no mangled name is referenced), so a C++ program
# links with libnnc.
set -eu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
incs=()
for d in "$@"; do incs+=(-I "$d"); done
header=$(for d in "$@"; do [ -f "$d/nnc.h" ] && echo "$d/nnc.h"; done | head -1)
names=$(tr '\n' ' ' < "$header" | grep -o 'NNC_API[^;]*;' | grep -o 'nnc_[a-z0-9_]*(' | tr -d '(' | sort -u)
[ -n "$names" ] || { echo "no NNC_API functions found in $header"; exit 1; }
{
  echo '#include <nnc.h>'
  echo 'void *nnc_cxx_uses[] = {'
  for n in $names; do echo "  (void *)&$n,"; done
  echo '};'
} > "$tmp/use.cc"
c++ -std=c++17 -Wall -Werror "${incs[@]}" -c "$tmp/use.cc" -o "$tmp/use.o"
if nm -u "$tmp/use.o" | grep ' _Z'; then
  echo "nnc.h declares the functions above outside its extern \"C\" block"
  exit 1
fi
echo "$(echo "$names" | wc -w) functions, all with C linkage"
