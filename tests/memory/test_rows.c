/*
 * test_rows.c - forward and predict take any number of rows (nnc.h): the
 * compiled functions run them in chunks of the model's batch, and agree
 * with the interpreter evaluating the same rows one at a time, at row
 * counts around the batch (0, 1, B-1, B, B+1, 2B, 3B+2). Nothing past the
 * n rows of y and loss is written. Models: a small f64 step (loop nests,
 * inlined chunk), an f32 step with GEMMs and epilogues, a batch-1 register
 * step, and one whose output is computed in place of the node before it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnc.h"

#include "../check.h"

enum { MAX_ROWS = 64, SENTINEL = 12345 };

typedef struct Case {
  const char *name, *src;
} Case;

static const Case cases[] = {
    {"small_f64",
     "model small {\n  dtype f64\n  input x[3]\n  target t[2]\n  y = x -> linear(5) -> tanh -> linear(2)\n"
     "  loss mse(y, t)\n}\ntrain {\n  batch 8\n}\n"},
    {"gemm_f32",
     "model gemm {\n  input x[40]\n  target t[16]\n  y = x -> linear(48) -> relu -> linear(16)\n"
     "  loss mse(y, t)\n}\ntrain {\n  batch 5\n}\n"},
    {"registers_f64",
     "model regs {\n  dtype f64\n  input x[2]\n  target t[1]\n  y = x -> linear(4) -> relu -> linear(1)\n"
     "  loss squared(y, t)\n}\ntrain {\n  batch 1\n}\n"},
    {"in_place_f64",
     "model scaled {\n  dtype f64\n  input x[256]\n  target t[256]\n  param w[256] = normal(std: 0.5)\n"
     "  y = softmax(x * w) * 2\n  loss mse(y, t)\n}\ntrain {\n  batch 4\n}\n"},
};

static double get(const void *p, int64_t i, bool f64) { return f64 ? ((const double *)p)[i] : ((const float *)p)[i]; }
static void set(void *p, int64_t i, double v, bool f64) {
  if (f64)
    ((double *)p)[i] = v;
  else
    ((float *)p)[i] = (float)v;
}

static bool near(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

/* The JIT's forward and predict of n rows against the interpreter's, one
 * row at a time, on the same buffer. */
static void check_rows(const char *name, NncModel *m, const NncFunctions *f, void *buf, int64_t n) {
  const NncLayout *L = nnc_model_layout(m);
  bool f64 = L->dtype == NNC_F64;
  size_t es = (size_t)L->elem_size;
  int64_t ic = L->input_cols, tc = L->target_cols, yc = L->output_cols;
  void *x = calloc((size_t)(MAX_ROWS * ic), es), *t = calloc((size_t)(MAX_ROWS * tc), es);
  void *y = calloc((size_t)((MAX_ROWS + 1) * yc), es), *loss = calloc(MAX_ROWS + 1, es);
  void *yp = calloc((size_t)((MAX_ROWS + 1) * yc), es);
  void *yi = calloc((size_t)yc, es), *li = calloc(1, es);
  for (int64_t i = 0; i < MAX_ROWS * ic; i++) set(x, i, sin(0.37 * (double)i + 0.2), f64);
  for (int64_t i = 0; i < MAX_ROWS * tc; i++) set(t, i, cos(0.53 * (double)i), f64);
  for (int64_t i = 0; i < (MAX_ROWS + 1) * yc; i++) set(y, i, SENTINEL, f64), set(yp, i, SENTINEL, f64);
  for (int64_t i = 0; i <= MAX_ROWS; i++) set(loss, i, SENTINEL, f64);
  if (f64) {
    f->f64.forward(buf, x, t, n, y, loss);
    if (f->f64.predict) f->f64.predict(buf, x, n, yp);
  } else {
    f->f32.forward(buf, x, t, n, y, loss);
    if (f->f32.predict) f->f32.predict(buf, x, n, yp);
  }
  bool predict = f64 ? f->f64.predict != NULL : f->f32.predict != NULL;
  double tol = f64 ? 1e-12 : 2e-5;
  int bad = 0;
  for (int64_t r = 0; r < n; r++) {
    CHECK(nnc_interp_forward(m, buf, (const char *)x + (size_t)(r * ic) * es, (const char *)t + (size_t)(r * tc) * es,
                             1, yi, li) == 0);
    for (int64_t k = 0; k < yc; k++) {
      bad += !near(get(y, r * yc + k, f64), get(yi, k, f64), tol);
      if (predict) bad += !near(get(yp, r * yc + k, f64), get(yi, k, f64), tol);
    }
    bad += !near(get(loss, r, f64), get(li, 0, f64), tol);
  }
  if (bad) printf("  %s, %lld rows: %d values differ from the interpreter's\n", name, (long long)n, bad);
  CHECK(bad == 0);
  /* nothing written past the n rows */
  for (int64_t i = n * yc; i < (MAX_ROWS + 1) * yc; i++) {
    CHECK(get(y, i, f64) == SENTINEL);
    if (predict) CHECK(get(yp, i, f64) == SENTINEL);
  }
  for (int64_t i = n; i <= MAX_ROWS; i++) CHECK(get(loss, i, f64) == SENTINEL);
  /* the interpreter takes any number of rows too, and agrees with itself */
  if (n > 0) {
    void *yall = calloc((size_t)(n * yc), es), *lall = calloc((size_t)n, es);
    CHECK(nnc_interp_forward(m, buf, x, t, n, yall, lall) == 0);
    for (int64_t i = 0; i < n * yc; i++) CHECK(near(get(yall, i, f64), get(y, i, f64), tol));
    free(yall);
    free(lall);
  }
  free(x), free(t), free(y), free(loss), free(yp), free(yi), free(li);
}

static void run_case(const Case *c) {
  NncDiagnostics d = {0};
  NncModel *m = nnc_compile_string(c->name, c->src, NULL, &d);
  for (int i = 0; i < d.count; i++) fputs(d.items[i].text, stdout);
  nnc_diagnostics_free(&d);
  CHECK(m != NULL);
  if (!m) return;
  const NncFunctions *f = nnc_model_jit(m, 2);
  CHECK(f != NULL);
  if (!f) {
    nnc_model_free(m);
    return;
  }
  void *buf = nnc_buffer_new(m);
  nnc_model_init_params(m, buf);
  int64_t B = nnc_model_layout(m)->max_batch;
  int64_t counts[] = {0, 1, B - 1, B, B + 1, 2 * B, 3 * B + 2, MAX_ROWS};
  for (size_t i = 0; i < sizeof counts / sizeof *counts; i++)
    if (counts[i] >= 0 && counts[i] <= MAX_ROWS) check_rows(c->name, m, f, buf, counts[i]);
  CHECK(nnc_interp_forward(m, buf, buf, buf, -1, buf, buf) == -1);
  free(buf);
  nnc_model_free(m);
}

int main(void) {
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) run_case(&cases[i]);
  return check_report();
}
