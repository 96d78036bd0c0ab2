/*
 * test_api.c - libnnc's public calls (nnc.h) and nothing else: diagnostics
 * as data (and nothing printed), the buffer layout, JIT-compiled functions
 * against the interpreter on the same buffer, f32 and f64.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

static int failures;

#define CHECK(cond)                                                                                                \
  do {                                                                                                             \
    if (!(cond)) {                                                                                                 \
      failures++;                                                                                                  \
      printf("FAILED line %d: %s\n", __LINE__, #cond);                                                             \
    }                                                                                                              \
  } while (0)

static bool close_to(double a, double b) { return fabs(a - b) <= 1e-9 * (1 + fabs(a) + fabs(b)); }

static void errors_as_data(void) {
  NncDiagnostics d = {0};
  NncModel *m = nnc_compile_string("bad.nn",
                                   "model bad {\n  input x[2]\n  target t[1]\n  y = x -> relux -> linear(1)\n"
                                   "  z = nope\n  loss squared(y, t)\n}\n",
                                   NULL, &d);
  CHECK(m == NULL);
  CHECK(d.count == 2);
  if (d.count >= 1) {
    CHECK(strcmp(d.items[0].file, "bad.nn") == 0);
    CHECK(d.items[0].line == 4 && d.items[0].col == 12);
    CHECK(d.items[0].severity == NNC_ERROR);
    CHECK(strstr(d.items[0].message, "relux") != NULL);
    CHECK(strncmp(d.items[0].text, "bad.nn:4:12: error: ", 20) == 0);
    CHECK(strstr(d.items[0].text, "\n    y = x -> relux -> linear(1)\n") != NULL); /* source line and caret */
    CHECK(strstr(d.items[0].text, "^\n") != NULL);
  }
  if (d.count >= 2) CHECK(d.items[1].line == 5);
  nnc_diagnostics_free(&d);
  CHECK(d.count == 0 && d.items == NULL);

  /* a file error has no position */
  m = nnc_compile_file("/nonexistent/model.nn", NULL, &d);
  CHECK(m == NULL);
  CHECK(d.count == 1);
  if (d.count == 1) {
    CHECK(d.items[0].line == 0 && d.items[0].col == 0);
    CHECK(strstr(d.items[0].message, "cannot open") != NULL);
    CHECK(strncmp(d.items[0].text, "/nonexistent/model.nn: error: cannot open", 41) == 0);
  }
  nnc_diagnostics_free(&d);

  /* an empty string, an unknown CPU; and no list at all is fine */
  CHECK(nnc_compile_string("empty.nn", "", NULL, &d) == NULL && d.count == 1);
  nnc_diagnostics_free(&d);
  NncOptions o;
  nnc_options_default(&o);
  o.cpu = "pentium9";
  CHECK(nnc_compile_string("x.nn", "model a {\n input x[1]\n target t[1]\n loss squared(x, t)\n}\n", &o, &d) == NULL);
  CHECK(d.count == 1 && strstr(d.items[0].message, "pentium9") != NULL);
  nnc_diagnostics_free(&d);
  CHECK(nnc_compile_string("bad.nn", "model {", NULL, NULL) == NULL);

  /* a note does not stop the compilation */
  m = nnc_compile_string("note.nn",
                         "model n {\n  input x[2]\n  target t[1]\n  z = x -> linear(1)\n"
                         "  loss bce(sigmoid(z), t)\n}\n",
                         NULL, &d);
  CHECK(m != NULL);
  CHECK(d.count == 1 && d.items[0].severity == NNC_NOTE && d.items[0].line == 5);
  nnc_diagnostics_free(&d);
  nnc_model_free(m);
}

static const char tiny[] = "model tiny {\n"
                           "  dtype f64\n"
                           "  input x[2]\n"
                           "  target t[1]\n"
                           "  y = x -> linear(3) -> tanh -> linear(1)\n"
                           "  loss squared(y, t)\n"
                           "}\n"
                           "train {\n  optimizer sgd(lr: 0.1, momentum: 0.9)\n  batch 2\n  init xavier_normal(seed: 5)\n}\n";

static void layout(void) {
  NncDiagnostics d = {0};
  NncModel *m = nnc_compile_string("tiny.nn", tiny, NULL, &d);
  CHECK(m != NULL && d.count == 0);
  if (!m) return;
  const NncLayout *L = nnc_model_layout(m);
  CHECK(strcmp(L->model, "tiny") == 0);
  CHECK(L->dtype == NNC_F64 && L->elem_size == 8);
  CHECK(L->max_batch == 2 && L->input_cols == 2 && L->target_cols == 1 && L->output_cols == 1);
  CHECK(L->has_predict);
  CHECK(L->nparams == 4);
  CHECK(L->param_elems == 6 + 3 + 3 + 1);
  if (L->nparams == 4) {
    CHECK(strcmp(L->params[0].name, "linear1.W") == 0);
    CHECK(L->params[0].rank == 2 && L->params[0].shape[0] == 3 && L->params[0].shape[1] == 2);
    CHECK(L->params[0].offset == 0 && L->params[0].size == 6);
    CHECK(strcmp(L->params[3].name, "linear2.b") == 0 && L->params[3].size == 1);
    for (int i = 0; i < 4; i++) {
      CHECK(L->params[i].offset % 8 == 0); /* 64-byte aligned */
      CHECK(L->params[i].grad_offset >= L->params[3].offset + 1);
      CHECK(L->params[i].grad_offset + L->params[i].size <= L->total);
    }
  }
  /* momentum: 4 velocity tensors after the gradients */
  CHECK(L->total >= 8 * 12);
  /* the file's init: weights nonzero, biases zero */
  double *buf = nnc_buffer_new(m);
  nnc_model_init_params(m, buf);
  CHECK(buf[L->params[0].offset] != 0 && buf[L->params[1].offset] == 0);
  free(buf);
  nnc_model_free(m);
}

/* The JIT's functions and the interpreter on copies of one buffer. */
static void jit_equals_interp(const char *dtype) {
  char src[1024];
  snprintf(src, sizeof src,
           "model m {\n  dtype %s\n  input x[3]\n  target t[2]\n"
           "  z = x -> linear(5) -> relu -> linear(2)\n  loss cross_entropy(z, t)\n}\n"
           "train {\n  optimizer adam(lr: 0.01)\n  batch 4\n}\n",
           dtype);
  NncDiagnostics d = {0};
  NncModel *m = nnc_compile_string("m.nn", src, NULL, &d);
  CHECK(m != NULL);
  nnc_diagnostics_free(&d);
  if (!m) return;
  const NncLayout *L = nnc_model_layout(m);
  const NncFunctions *f = nnc_model_jit(m, 2);
  CHECK(f != NULL);
  if (!f) {
    nnc_model_free(m);
    return;
  }
  bool f64 = L->dtype == NNC_F64;
  CHECK(f->dtype == L->dtype);
  CHECK(f64 ? f->f64.train_step && f->f64.predict && !f->f32.forward
            : f->f32.train_step && f->f32.predict && !f->f64.forward);
  size_t bytes = (size_t)L->total * (size_t)L->elem_size;
  void *a = nnc_buffer_new(m), *b = nnc_buffer_new(m);
  nnc_model_init_params(m, a);
  memcpy(b, a, bytes);
  double xd[12], td[8];
  for (int i = 0; i < 12; i++) xd[i] = sin(i * 0.9);
  for (int r = 0; r < 4; r++) td[2 * r] = r % 2, td[2 * r + 1] = 1 - r % 2;
  float xf[12], tf[8];
  for (int i = 0; i < 12; i++) xf[i] = (float)xd[i];
  for (int i = 0; i < 8; i++) tf[i] = (float)td[i];
  const void *x = f64 ? (void *)xd : (void *)xf, *t = f64 ? (void *)td : (void *)tf;
  double tol = f64 ? 1e-9 : 1e-4;
  for (int step = 0; step < 5; step++) {
    double lj = f64 ? f->f64.train_step(a, xd, td, 4) : f->f32.train_step(a, xf, tf, 4);
    double li = 0;
    CHECK(nnc_interp_train_step(m, b, x, t, 4, &li) == 0);
    CHECK(fabs(lj - li) <= tol * (1 + fabs(li)));
  }
  double yj[8], lj[4], yi[8], li[4];
  float yjf[8], ljf[4], yif[8], lif[4];
  if (f64) {
    f->f64.forward(a, xd, td, 4, yj, lj);
    CHECK(nnc_interp_forward(m, b, xd, td, 4, yi, li) == 0);
  } else {
    f->f32.forward(a, xf, tf, 4, yjf, ljf);
    CHECK(nnc_interp_forward(m, b, xf, tf, 4, yif, lif) == 0);
    for (int i = 0; i < 8; i++) yj[i] = yjf[i], yi[i] = yif[i];
    for (int i = 0; i < 4; i++) lj[i] = ljf[i], li[i] = lif[i];
  }
  for (int i = 0; i < 8; i++) CHECK(fabs(yj[i] - yi[i]) <= tol * (1 + fabs(yi[i])));
  for (int i = 0; i < 4; i++) CHECK(fabs(lj[i] - li[i]) <= tol * (1 + fabs(li[i])));
  /* predict without targets */
  CHECK(nnc_interp_forward(m, b, x, NULL, 4, f64 ? (void *)yi : (void *)yif, NULL) == 0);
  /* gradients */
  double bj = f64 ? f->f64.backward(a, xd, td, 4) : f->f32.backward(a, xf, tf, 4), bi = 0;
  CHECK(nnc_interp_backward(m, b, x, t, 4, &bi) == 0);
  CHECK(fabs(bj - bi) <= tol * (1 + fabs(bi)));
  for (int i = 0; i < L->nparams; i++)
    for (int64_t k = 0; k < L->params[i].size; k++) {
      int64_t o = L->params[i].grad_offset + k;
      double ga = f64 ? ((double *)a)[o] : ((float *)a)[o], gb = f64 ? ((double *)b)[o] : ((float *)b)[o];
      CHECK(fabs(ga - gb) <= tol * (1 + fabs(gb)));
    }
  /* rows out of range */
  CHECK(nnc_interp_forward(m, b, x, t, 5, f64 ? (void *)yi : (void *)yif, f64 ? (void *)li : (void *)lif) == -1);
  CHECK(nnc_interp_backward(m, b, x, t, 0, NULL) == -1);
  /* a second compilation, at -O0, lives alongside the first */
  const NncFunctions *f0 = nnc_model_jit(m, 0);
  CHECK(f0 != NULL && f0 != f);
  free(a);
  free(b);
  nnc_model_free(m);
  (void)close_to;
}

int main(void) {
  errors_as_data();
  layout();
  jit_equals_interp("f64");
  jit_equals_interp("f32");
  if (failures) {
    printf("%d checks failed\n", failures);
    return 1;
  }
  printf("all API checks passed\n");
  return 0;
}
