#!/usr/bin/env bash
# large_workspace.sh NNC EXAMPLES - an object whose workspace is over 2 GiB
# (fashion_cnn at batch 9000) links with another model's object and a
# program's own .bss in either order, into an executable and a shared
# library: its workspace is in .lbss (no bytes in the file), which the code
# reaches by 64-bit offsets, not in .bss, where 32-bit ones to whatever
# follows it would not reach. A small workspace stays in .bss.
set -eu
nnc=$1 examples=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$nnc" "$examples/fashion_cnn.nn" --batch 9000 --emit obj -o "$tmp/big.o"
"$nnc" "$examples/fashion_cnn.nn" --batch 9000 --emit header -o "$tmp/big.h"
"$nnc" "$examples/digits.nn" --emit obj -o "$tmp/digits.o"
"$nnc" "$examples/digits.nn" --emit header -o "$tmp/digits.h"
"$nnc" "$examples/moons.nn" --emit obj -o "$tmp/moons.o"

# the section of an object's nnc.workspace, and its size
section_of() {
  local ndx
  ndx=$(readelf -sW "$1" | awk '$8 == "nnc.workspace" { print $7 }')
  readelf -SW "$1" | sed 's/^ *\[ *\([0-9]*\)\]/\1/' | awk -v n="$ndx" '$1 == n { print $2, $3 }'
}
size=$(readelf -sW "$tmp/big.o" | awk '$8 == "nnc.workspace" { print $3 }')
[ $((size)) -gt $((2 << 30)) ] || { echo "the workspace has $((size)) bytes, expected over 2 GiB"; exit 1; }
[ "$(section_of "$tmp/big.o")" = ".lbss NOBITS" ] || { echo "big workspace in $(section_of "$tmp/big.o")"; exit 1; }
[ "$(section_of "$tmp/moons.o")" = ".bss NOBITS" ] || { echo "small workspace in $(section_of "$tmp/moons.o")"; exit 1; }
[ "$(stat -c %s "$tmp/big.o")" -lt 10000000 ] || { echo "the object holds its workspace's bytes"; exit 1; }

cat >"$tmp/main.c" <<'C'
#include <stdio.h>
#include "big.h"
#include "digits.h"
static char own_bss[1 << 16];
int main(int argc, char **argv) {
  (void)argv;
  if (argc > 99) { /* linked, not run: the workspace alone is 2 GiB */
    nnc_fashion_cnn_update(0);
    nnc_digits_update(0);
  }
  own_bss[argc] = 1;
  return own_bss[1] != 1;
}
C
cc -O1 -I"$tmp" -c "$tmp/main.c" -o "$tmp/main.o"
cc "$tmp/main.o" "$tmp/digits.o" "$tmp/big.o" -lm -o "$tmp/a1"
cc "$tmp/main.o" "$tmp/big.o" "$tmp/digits.o" -lm -o "$tmp/a2"
cc "$tmp/big.o" "$tmp/main.o" "$tmp/digits.o" -lm -o "$tmp/a3"
cc -shared "$tmp/big.o" "$tmp/digits.o" -lm -o "$tmp/l1.so"
cc -shared "$tmp/digits.o" "$tmp/big.o" -lm -o "$tmp/l2.so"
echo "ok: a $((size >> 20)) MiB workspace in .lbss; links in every order"
