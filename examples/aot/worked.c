/*
 * worked.c - the smallest use of an object file that nnc compiled ahead of
 * time: the gradients of tests/grad/worked.nn (one linear(2) -> relu layer,
 * squared loss) at one sample, with nothing linked but the object and libm.
 *
 *   nnc tests/grad/worked.nn --emit obj -o worked.o
 *   nnc tests/grad/worked.nn --emit header -o worked.h
 *   cc -I. examples/aot/worked.c worked.o -lm -o worked && ./worked
 */
#include <stdio.h>

#include "worked.h"

int main(void) {
  /* the buffer: parameters, gradients, optimizer state (64-byte aligned) */
  static _Alignas(64) double buf[nnc_worked_BUFFER_ELEMS];
  nnc_worked_buffer_init(buf);
  const double W[4] = {1, 2, -1, 3}, b[2] = {0.5, 1};
  for (int i = 0; i < 4; i++) buf[nnc_worked_linear1_W_OFFSET + i] = W[i];
  for (int i = 0; i < 2; i++) buf[nnc_worked_linear1_b_OFFSET + i] = b[i];

  const double x[2] = {2, 1}, t[2] = {3, 2};
  double y[2];
  nnc_worked_predict(buf, x, 1, y);
  double loss = nnc_worked_backward(buf, x, t, 1);
  printf("y = [%g, %g], loss = %g\n", y[0], y[1], loss);
  for (int p = 0; p < nnc_worked_PARAM_COUNT; p++) {
    const nnc_worked_param *prm = &nnc_worked_PARAMS[p];
    printf("d %s =", prm->name);
    for (int64_t k = 0; k < prm->size; k++) {
      double g = buf[prm->grad_offset + k];
      printf(" %g", g == 0 ? 0.0 : g); /* a zero gradient may be -0 */
    }
    printf("\n");
  }
  return 0;
}
