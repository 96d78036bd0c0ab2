#!/usr/bin/env bash
# obj_header.sh NNC MODEL.nn - --emit obj and --emit header give an object
# file and a C header that a C program compiles and links against, and the
# linked program trains: its train_epoch lowers the loss. The object is
# position-independent (no absolute relocations; it links into a shared
# library), and its layout table agrees with --emit layout. The step reads
# the learning rate at LR_OFFSET: buffer_init writes the file's, and 0 there
# leaves the parameters as they are. The header, in f64 and f32, compiles
# without a warning as C99, C11, C++11 and C++17 with gcc, g++, clang and
# clang++ (those installed) at -Wall -Wextra -pedantic -Wconversion: an f32
# header's constants are float constants.
set -eu
nnc=$1 model=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$nnc" "$model" --emit obj -o "$tmp/m.o"
"$nnc" "$model" --emit header -o "$tmp/m.h"
if readelf -rW "$tmp/m.o" | grep -E 'R_X86_64_(32|32S|64) '; then
  echo "absolute relocations in a position-independent object"
  exit 1
fi
cc -shared -o "$tmp/m.so" "$tmp/m.o" -lm
cat > "$tmp/main.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "m.h"
int main(void) {
  double *buf = aligned_alloc(64, (nnc_moons_BUFFER_BYTES + 63) / 64 * 64);
  nnc_moons_buffer_init(buf);
  for (int i = 0; i < nnc_moons_PARAM_COUNT; i++)
    for (int k = 0; k < nnc_moons_PARAMS[i].size; k++) buf[nnc_moons_PARAMS[i].offset + k] = 0.3 * sin(i * 1.3 + k);
  double x[8] = {0.1, 0.9, 1.2, -0.3, -0.8, 0.4, 0.5, 0.5}, t[4] = {1, 0, 0, 1};
  double first = nnc_moons_train_epoch(buf, x, t, 4), last = first;
  for (int e = 0; e < 200; e++) last = nnc_moons_train_epoch(buf, x, t, 4);
  if (buf[nnc_moons_LR_OFFSET] != 0.05) return 2;
  double w = buf[nnc_moons_linear1_W_OFFSET];
  buf[nnc_moons_LR_OFFSET] = 0;
  nnc_moons_train_epoch(buf, x, t, 4);
  if (buf[nnc_moons_linear1_W_OFFSET] != w) return 3;
  printf("%g -> %g\n", first, last);
  for (int i = 0; i < nnc_moons_PARAM_COUNT; i++) printf("%s %lld\n", nnc_moons_PARAMS[i].name, (long long)nnc_moons_PARAMS[i].offset);
  return !(last < first) || nnc_moons_linear1_W_SIZE != 8 || strcmp(nnc_moons_DTYPE, "f64") != 0;
}
C
cc -O1 -Wall -Wextra -Werror -I"$tmp" "$tmp/main.c" "$tmp/m.o" -lm -o "$tmp/main"
"$tmp/main" > "$tmp/out"
cat "$tmp/out"
# the offsets in the header's table are the ones --emit layout prints
"$nnc" "$model" --emit layout | awk '$1 == "param" {print $2, $5}' > "$tmp/layout"
tail -n +2 "$tmp/out" | diff - "$tmp/layout"

# the header alone, by every compiler there is
"$nnc" "$model" --emit header --dtype f32 -o "$tmp/m32.h"
for h in m.h m32.h; do
  printf '#include "%s"\n#include "%s"\nint main(void) {\n  static nnc_moons_real buf[nnc_moons_BUFFER_ELEMS];\n  nnc_moons_buffer_init(buf);\n  return buf[0] != 0;\n}\n' "$h" "$h" > "$tmp/use_$h.c"
  cp "$tmp/use_$h.c" "$tmp/use_$h.cpp"
  for cc in gcc clang; do
    command -v $cc >/dev/null || continue
    for std in c99 c11; do
      $cc -std=$std -Wall -Wextra -pedantic -Wconversion -Werror -I"$tmp" -c "$tmp/use_$h.c" -o "$tmp/use.o"
    done
  done
  for cxx in g++ clang++; do
    command -v $cxx >/dev/null || continue
    for std in c++11 c++17; do
      $cxx -std=$std -Wall -Wextra -pedantic -Wconversion -Werror -I"$tmp" -c "$tmp/use_$h.cpp" -o "$tmp/use.o"
    done
  done
done
grep -q '= 0.05f;' "$tmp/m32.h" || { echo "no float constant for the learning rate in the f32 header"; exit 1; }
