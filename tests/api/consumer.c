/*
 * consumer.c - a program built against an installed libnnc (tests/api/
 * install.sh): nnc.h's worked example, which also checks that the JIT's
 * forward equals the interpreter's on the trained parameters.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <nnc.h>

int main(void) {
  const char *src =
      "model tiny {\n"
      "  dtype f64\n"
      "  input x[2]\n"
      "  target t[1]\n"
      "  y = x -> linear(3) -> tanh -> linear(1)\n"
      "  loss squared(y, t)\n"
      "}\n"
      "train {\n  optimizer sgd(lr: 0.1)\n  batch 2\n}\n";
  NncDiagnostics diags = {0};
  NncModel *m = nnc_compile_string("tiny.nn", src, NULL, &diags);
  for (int i = 0; i < diags.count; i++) /* errors, and notes on rewrites */
    fputs(diags.items[i].text, stderr); /* (or .file .line .col .message) */
  nnc_diagnostics_free(&diags);
  if (!m) return 1;

  const NncLayout *L = nnc_model_layout(m); /* L->total, L->params[i].offset, ... */
  double *buf = nnc_buffer_new(m);          /* parameters, gradients, optimizer state */
  nnc_model_init_params(m, buf);            /* the file's initializers */
  const NncFunctions *f = nnc_model_jit(m, 2); /* native code, -O2 */
  if (!f) return 1;

  double x[4] = {0, 1, 1, 0}, t[2] = {1, -1}, y[2], loss[2], yi[2], li[2];
  for (int step = 0; step < 100; step++) f->f64.train_step(buf, x, t, 2);
  f->f64.forward(buf, x, t, 2, y, loss);
  nnc_interp_forward(m, buf, x, t, 2, yi, li); /* the interpreter agrees */
  printf("%d parameters in %d tensors: y = %g %g (interpreter %g %g)\n", (int)L->param_elems, L->nparams, y[0],
         y[1], yi[0], yi[1]);
  int bad = 0;
  for (int i = 0; i < 2; i++) bad |= !(fabs(y[i] - yi[i]) < 1e-9 && fabs(loss[i] - li[i]) < 1e-9);
  bad |= !(fabs(y[0] - 1) < 0.1 && fabs(y[1] + 1) < 0.1); /* it learned the two rows */
  free(buf);
  nnc_model_free(m); /* also frees the compiled code */
  return bad;
}
