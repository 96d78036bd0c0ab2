#!/usr/bin/env bash
# obj_header.sh NNC MODEL.nn - --emit obj and --emit header give an object
# file and a C header that a C program compiles and links against, and the
# linked program trains: its train_epoch lowers the loss.
set -eu
nnc=$1 model=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$nnc" "$model" --emit obj -o "$tmp/m.o"
"$nnc" "$model" --emit header -o "$tmp/m.h"
cat > "$tmp/main.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include "m.h"
int main(void) {
  double *buf = aligned_alloc(64, sizeof(double) * ((nnc_moons_BUFFER_ELEMS + 7) / 8 * 8));
  for (int i = 0; i < nnc_moons_BUFFER_ELEMS; i++) buf[i] = 0.3 * sin(i * 1.3);
  double x[8] = {0.1, 0.9, 1.2, -0.3, -0.8, 0.4, 0.5, 0.5}, t[4] = {1, 0, 0, 1};
  double first = nnc_moons_train_epoch(buf, x, t, 4), last = first;
  for (int e = 0; e < 200; e++) last = nnc_moons_train_epoch(buf, x, t, 4);
  printf("%g -> %g\n", first, last);
  return !(last < first);
}
C
cc -O1 -I"$tmp" "$tmp/main.c" "$tmp/m.o" -lm -o "$tmp/main"
"$tmp/main"
