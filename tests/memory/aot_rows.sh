#!/usr/bin/env bash
# aot_rows.sh NNC - an object file's forward and predict take any number of
# rows: a program linked with the object of an f32 model with GEMMs at
# batch 5 predicts 23 rows in one call, and gets what 23 calls of one row
# give and what forward gives, and nothing is written past the 23 rows.
set -eu
nnc=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/rows.nn" <<'NN'
model rows {
  input  x[24]
  target t[16]
  y = x -> linear(32) -> relu -> linear(16)
  loss mse(y, t)
}
train { batch 5 }
NN
"$nnc" "$tmp/rows.nn" --emit obj -o "$tmp/m.o"
"$nnc" "$tmp/rows.nn" --emit header -o "$tmp/m.h"
cat >"$tmp/main.c" <<'C'
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "m.h"
enum { N = 23, IC = nnc_rows_INPUT_COLS, TC = nnc_rows_TARGET_COLS, YC = nnc_rows_OUTPUT_COLS };
int main(void) {
  float *buf = aligned_alloc(64, (nnc_rows_BUFFER_BYTES + 63) / 64 * 64);
  static float x[N * IC], t[N * TC], y[(N + 1) * YC], yf[(N + 1) * YC], loss[N + 1], one[YC];
  nnc_rows_buffer_init(buf);
  for (int i = 0; i < nnc_rows_PARAM_COUNT; i++)
    for (int k = 0; k < nnc_rows_PARAMS[i].size; k++) buf[nnc_rows_PARAMS[i].offset + k] = 0.2f * sinf(i * 1.3f + k * 0.7f);
  for (int i = 0; i < N * IC; i++) x[i] = cosf(i * 0.31f);
  for (int i = 0; i < N * TC; i++) t[i] = sinf(i * 0.17f);
  for (int i = 0; i < (N + 1) * YC; i++) y[i] = yf[i] = 12345;
  loss[N] = 12345;
  nnc_rows_predict(buf, x, N, y);
  nnc_rows_forward(buf, x, t, N, yf, loss);
  int bad = 0;
  for (int r = 0; r < N; r++) {
    nnc_rows_predict(buf, x + r * IC, 1, one);
    for (int k = 0; k < YC; k++) {
      float a = y[r * YC + k], b = one[k], c = yf[r * YC + k];
      bad += fabsf(a - b) > 1e-6f * (1 + fabsf(b)) || fabsf(c - b) > 1e-6f * (1 + fabsf(b));
    }
  }
  for (int k = 0; k < YC; k++) bad += y[N * YC + k] != 12345 || yf[N * YC + k] != 12345;
  bad += loss[N] != 12345;
  printf("%d rows in one call, batch %d: %d values differ\n", N, nnc_rows_MAX_BATCH, bad);
  free(buf);
  return bad != 0;
}
C
cc -O1 -Wall -Wextra -Werror -I"$tmp" "$tmp/main.c" "$tmp/m.o" -lm -o "$tmp/main"
"$tmp/main"
