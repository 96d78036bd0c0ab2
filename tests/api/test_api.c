/*
 * test_api.c - libnnc's public calls (nnc.h) and nothing else: diagnostics
 * as data (and nothing printed), the buffer layout, JIT-compiled functions
 * against the interpreter on the same buffer, f32 and f64; --emit's text,
 * the train block's data, training, checkpoints, and the overrides' limits.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nnc.h"

#include "../check.h"

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
  m = nnc_compile_file("/dev/null/model.nn", NULL, &d);
  CHECK(m == NULL);
  CHECK(d.count == 1);
  if (d.count == 1) {
    CHECK(d.items[0].line == 0 && d.items[0].col == 0);
    CHECK(strstr(d.items[0].message, "cannot open") != NULL);
    static const char want[] = "/dev/null/model.nn: error: cannot open"; /* a path no file can have */
    CHECK(strncmp(d.items[0].text, want, sizeof want - 1) == 0);
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
  /* a CPU whose code this host may not run (bdver1: AMD's FMA4), for jit */
  o.cpu = "bdver1";
  o.jit = true;
  CHECK(nnc_compile_string("x.nn", "model a {\n input x[1]\n target t[1]\n loss squared(x, t)\n}\n", &o, &d) == NULL);
  CHECK(d.count == 1 && strstr(d.items[0].message, "'bdver1'") != NULL);
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
  CHECK(L->min_train_rows == 1);
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

/* A batch_norm that a row gives one value per channel needs two rows to
 * train on; over a feature map one row gives it many. */
static void min_train_rows(void) {
  static const char *const models[][2] = {
      {"x -> linear(3) -> batch_norm -> relu -> linear(1)", "2"},
      {"x -> linear(3) -> relu -> linear(1)", "1"},
  };
  for (int k = 0; k < 2; k++) {
    char src[512];
    snprintf(src, sizeof src,
             "model bn {\n  dtype f64\n  input x[2]\n  target t[1]\n  y = %s\n  loss squared(y, t)\n}\n"
             "train {\n  optimizer sgd(lr: 0.1)\n  batch 4\n}\n",
             models[k][0]);
    NncModel *m = nnc_compile_string("bn.nn", src, NULL, NULL);
    CHECK(m != NULL);
    if (!m) continue;
    const NncLayout *L = nnc_model_layout(m);
    CHECK(L->min_train_rows == atoi(models[k][1]));
    /* the interpreter refuses a batch below it */
    double *buf = nnc_buffer_new(m), x[8] = {0.5, -1, 1, 2, 0, 1, 3, 1}, t[4] = {1, 0, 1, 0}, loss;
    nnc_model_init_params(m, buf);
    CHECK(nnc_interp_train_step(m, buf, x, t, 1, &loss) == (L->min_train_rows == 2 ? -1 : 0));
    CHECK(nnc_interp_backward(m, buf, x, t, 2, &loss) == 0 && isfinite(loss));
    free(buf);
    nnc_model_free(m);
  }
  NncModel *m = nnc_compile_string("img.nn",
                                   "model img {\n  input x[1, 4, 4]\n  target t[1]\n"
                                   "  y = x -> conv2d(2, kernel: 3) -> batch_norm -> relu -> flatten -> linear(1)\n"
                                   "  loss squared(y, t)\n}\ntrain {\n  optimizer sgd(lr: 0.1)\n  batch 4\n}\n",
                                   NULL, NULL);
  CHECK(m != NULL);
  if (m) CHECK(nnc_model_layout(m)->min_train_rows == 1);
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
  CHECK(nnc_interp_forward(m, b, x, t, -1, f64 ? (void *)yi : (void *)yif, f64 ? (void *)li : (void *)lif) == -1);
  CHECK(nnc_interp_backward(m, b, x, t, 0, NULL) == -1);
  /* a second compilation, at -O0, lives alongside the first */
  const NncFunctions *f0 = nnc_model_jit(m, 0);
  CHECK(f0 != NULL && f0 != f);
  free(a);
  free(b);
  nnc_model_free(m);
}

/* Whether the diagnostics hold exactly one error whose message has `part`. */
static bool one_error(NncDiagnostics *d, const char *part) {
  bool ok = d->count == 1 && d->items[0].severity == NNC_ERROR && strstr(d->items[0].message, part) != NULL;
  if (!ok)
    for (int i = 0; i < d->count; i++) printf("  diagnostic: %s", d->items[i].text);
  nnc_diagnostics_free(d);
  return ok;
}

static void emit_text(void) {
  NncDiagnostics d = {0};
  NncModel *m = nnc_compile_string("tiny.nn", tiny, NULL, &d);
  CHECK(m != NULL);
  if (!m) return;
  static const char *const kinds[] = {"ast", "ir", "grad", "opt", "layout", "dot", "llvm", "asm", "header"};
  static const char *const marks[] = {"model tiny", "linear1.W", "d.linear1.W", "update", "grad   d.linear1.W",
                                      "digraph", "define", "nnc_tiny_train_step", "#define nnc_tiny_MAX_BATCH 2"};
  for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
    size_t len = 0;
    char *text = nnc_model_emit(m, kinds[k], 2, &len, &d);
    CHECK(text != NULL && len > 0 && strlen(text) == len && d.count == 0);
    if (text && !strstr(text, marks[k])) printf("  --emit %s lacks '%s'\n", kinds[k], marks[k]);
    CHECK(text && strstr(text, marks[k]));
    free(text);
  }
  size_t len = 0;
  char *obj = nnc_model_emit(m, "obj", 0, &len, &d);
  CHECK(obj != NULL && len > 64 && memcmp(obj, "\x7f" "ELF", 4) == 0);
  free(obj);
  CHECK(nnc_model_emit(m, "pdf", 2, &len, &d) == NULL);
  CHECK(one_error(&d, "unknown emit kind 'pdf'"));
  char *text = nnc_model_emit(m, "ir", 2, NULL, NULL); /* no length, no list: fine */
  CHECK(text != NULL);
  free(text);
  CHECK(nnc_model_emit(m, NULL, 2, &len, NULL) == NULL); /* printed nowhere */
  nnc_model_free(m);

  /* a model whose object's symbols would be libnnc's (nnc_interp_forward):
     no object, no header, an error at the name; its other kinds are fine */
  m = nnc_compile_string("interp.nn", "model interp {\n  input x[1]\n  target t[1]\n  loss squared(x, t)\n}\n", NULL,
                         &d);
  CHECK(m != NULL && d.count == 0);
  if (!m) return;
  for (int k = 0; k < 2; k++) {
    CHECK(nnc_model_emit(m, k ? "header" : "obj", 2, &len, &d) == NULL);
    CHECK(d.count == 1 && d.items[0].line == 1 && d.items[0].col == 7 && strstr(d.items[0].text, "^\n"));
    CHECK(one_error(&d, "prefix nnc_interp_ of libnnc's functions"));
  }
  text = nnc_model_emit(m, "llvm", 2, &len, &d);
  CHECK(text != NULL && d.count == 0);
  free(text);
  nnc_model_free(m);
}

static const char trainable[] = "model two {\n"
                                "  dtype f64\n"
                                "  input x[2]\n"
                                "  target t[1]\n"
                                "  y = x -> linear(4) -> relu -> linear(1)\n"
                                "  loss squared(y, t)\n"
                                "}\n"
                                "train {\n"
                                "  data moons(samples: 60, noise: 0.1, seed: 3)\n"
                                "  split 40\n"
                                "  optimizer sgd(lr: %s)\n"
                                "  epochs 5\n"
                                "  batch 4\n"
                                "}\n";

static NncModel *compile_trainable(const char *lr) {
  char src[1024];
  snprintf(src, sizeof src, trainable, lr);
  NncDiagnostics d = {0};
  NncModel *m = nnc_compile_string("two.nn", src, NULL, &d);
  CHECK(m != NULL && d.count == 0);
  nnc_diagnostics_free(&d);
  return m;
}

static void data_and_fit(void) {
  NncModel *m = compile_trainable("0.05");
  if (!m) return;
  const NncLayout *L = nnc_model_layout(m);
  NncDiagnostics d = {0};
  NncDataset tr, va;
  CHECK(nnc_model_data(m, &tr, &va, &d) == 0 && d.count == 0);
  CHECK(tr.rows == 40 && va.rows == 20);
  /* moons' labels are 0 and 1 */
  for (int64_t r = 0; r < tr.rows; r++) CHECK(((double *)tr.t)[r] == 0 || ((double *)tr.t)[r] == 1);

  /* nnc_buffer_init on a buffer of the caller's equals nnc_buffer_new */
  size_t bytes = (size_t)L->total * 8;
  double *a = nnc_buffer_new(m), *b = aligned_alloc(64, (bytes + 63) / 64 * 64);
  memset(b, 0xff, bytes);
  nnc_buffer_init(m, b);
  CHECK(memcmp(a, b, bytes) == 0);
  nnc_model_init_params(m, a);
  memcpy(b, a, bytes);

  /* the interpreter and the JIT train alike; the history has every epoch */
  NncFitResult ri, rj;
  CHECK(nnc_model_fit(m, a, NULL, -1, false, &ri, &d) == 0 && d.count == 0);
  CHECK(ri.epochs == 5 && ri.steps == 5 * 10 && ri.train_loss && ri.valid_loss);
  CHECK(ri.final_train_loss > 0 && ri.final_valid_loss > 0 && ri.train_time >= 0);
  CHECK(ri.final_train_accuracy >= 0 && ri.final_train_accuracy <= 1 && ri.final_valid_accuracy >= 0);
  CHECK(ri.train_loss[4] < ri.train_loss[0]);
  const NncFunctions *f = nnc_model_jit(m, 2);
  CHECK(f != NULL);
  CHECK(nnc_model_fit(m, b, f, 3, false, &rj, &d) == 0 && rj.epochs == 3 && rj.steps == 30);
  for (int k = 0; k < 3; k++) {
    CHECK(close_to(ri.train_loss[k], rj.train_loss[k]));
    CHECK(close_to(ri.valid_loss[k], rj.valid_loss[k]));
  }
  /* the final train loss is the mean per-row loss over the set */
  double y[4], loss[4], sum = 0;
  nnc_fit_result_free(&rj);
  nnc_model_fit(m, b, f, 0, false, &rj, &d);
  for (int64_t r = 0; r < tr.rows; r += 4) {
    CHECK(nnc_interp_forward(m, b, (double *)tr.x + 2 * r, (double *)tr.t + r, 4, y, loss) == 0);
    for (int i = 0; i < 4; i++) sum += loss[i];
  }
  CHECK(rj.epochs == 0 && close_to(rj.final_train_loss, sum / 40));
  nnc_fit_result_free(&ri);
  nnc_fit_result_free(&rj);
  CHECK(ri.train_loss == NULL && rj.valid_loss == NULL);

  /* checkpoints: a round trip; a failed load changes nothing */
  char dir[] = "/tmp/nnc-api-XXXXXX", path[64], other[64];
  CHECK(mkdtemp(dir) != NULL);
  snprintf(path, sizeof path, "%s/a.safetensors", dir);
  snprintf(other, sizeof other, "%s/tiny.safetensors", dir);
  CHECK(nnc_model_save(m, a, path, 5, &d) == 0 && d.count == 0);
  double *c = nnc_buffer_new(m);
  CHECK(nnc_model_load(m, c, path, &d) == 0 && d.count == 0);
  for (int i = 0; i < L->nparams; i++)
    CHECK(memcmp(c + L->params[i].offset, a + L->params[i].offset, (size_t)L->params[i].size * 8) == 0);
  memcpy(c, b, bytes);
  CHECK(nnc_model_load(m, c, "/dev/null/p.safetensors", &d) == -1);
  CHECK(one_error(&d, "cannot"));
  NncModel *t = nnc_compile_string("tiny.nn", tiny, NULL, NULL);
  double *tb = nnc_buffer_new(t);
  CHECK(nnc_model_save(t, tb, other, 0, &d) == 0);
  CHECK(nnc_model_load(m, c, other, &d) == -1 && d.count == 1);
  nnc_diagnostics_free(&d);
  CHECK(memcmp(c, b, bytes) == 0);
  CHECK(nnc_model_save(m, a, "/dev/null/p.safetensors", 0, &d) == -1);
  CHECK(one_error(&d, "cannot"));

  /* another model's code, too many epochs */
  CHECK(nnc_model_fit(t, tb, f, 1, false, &rj, &d) == -1);
  CHECK(one_error(&d, "not this model's"));
  CHECK(nnc_model_fit(m, a, NULL, 100000001, false, NULL, &d) == -1);
  CHECK(one_error(&d, "epochs"));
  /* no data in the train block */
  nnc_dataset_free(&tr);
  nnc_dataset_free(&va);
  CHECK(nnc_model_data(t, &tr, &va, &d) == -1 && tr.rows == 0);
  CHECK(one_error(&d, "no training data"));
  CHECK(nnc_model_fit(t, tb, NULL, 1, false, &rj, &d) == -1 && rj.epochs == 0);
  CHECK(one_error(&d, "no training data"));
  nnc_dataset_free(&tr);
  nnc_dataset_free(&va);
  unlink(path);
  unlink(other);
  rmdir(dir);
  free(a);
  free(b);
  free(c);
  free(tb);
  nnc_model_free(t);
  nnc_model_free(m);
}

/* Training that leaves the finite numbers stops with an error naming the
 * step, and keeps the last finite parameters. */
static void divergence(void) {
  NncModel *m = compile_trainable("1000000");
  if (!m) return;
  const NncLayout *L = nnc_model_layout(m);
  double *buf = nnc_buffer_new(m);
  nnc_model_init_params(m, buf);
  NncDiagnostics d = {0};
  NncFitResult r;
  CHECK(nnc_model_fit(m, buf, nnc_model_jit(m, 2), 50, false, &r, &d) == 1);
  CHECK(r.epochs < 50 && isnan(r.final_train_loss));
  for (int64_t i = 0; i < r.epochs; i++) CHECK(isfinite(r.train_loss[i]));
  CHECK(one_error(&d, "diverged"));
  for (int i = 0; i < L->nparams; i++)
    for (int64_t k = 0; k < L->params[i].size; k++) CHECK(isfinite(buf[L->params[i].offset + k]));
  nnc_fit_result_free(&r);
  free(buf);
  nnc_model_free(m);
}

/* Overrides out of the command line's ranges are errors, not crashes. */
static void override_limits(void) {
  struct {
    const char *part;
    NncOptions o;
  } cases[5];
  for (int i = 0; i < 5; i++) nnc_options_default(&cases[i].o);
  cases[0].o.batch = 0, cases[0].part = "batch";
  cases[1].o.epochs = -7, cases[1].part = "epochs";
  cases[2].o.dtype = 2, cases[2].part = "dtype";
  cases[3].o.lr = NAN, cases[3].part = "lr";
  cases[4].o.seed = -2, cases[4].part = "seed";
  for (int i = 0; i < 5; i++) {
    NncDiagnostics d = {0};
    CHECK(nnc_compile_string("tiny.nn", tiny, &cases[i].o, &d) == NULL);
    CHECK(one_error(&d, cases[i].part));
  }
}

/* nnc_run refuses options the command line could not make (exit 2 and a
 * message), before reading any file: a batch of 0 divided by zero. */
static void run_limits(void) {
  enum { N = 9 };
  NncOptions o[N];
  for (int i = 0; i < N; i++) {
    nnc_options_default(&o[i]);
    o[i].file = "never-read.nn";
    o[i].train = true;
  }
  o[0].batch = 0;
  o[1].opt_level = 9;
  o[2].threads = -3;
  o[3].threads = 4; /* without jit */
  o[4].train = false, o[4].emit = "obj"; /* without out */
  o[5].grad = true;  /* and train */
  o[6].file = NULL;
  o[7].lr = NAN;
  o[8].train = false, o[8].save = "x.safetensors";
  /* (nnc_run prints as the command does: its messages to a file here) */
  FILE *messages = tmpfile();
  CHECK(messages != NULL);
  if (!messages) return;
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  dup2(fileno(messages), STDERR_FILENO);
  int status[N + 1];
  for (int i = 0; i < N; i++) status[i] = nnc_run(&o[i]);
  status[N] = nnc_run(NULL);
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  for (int i = 0; i <= N; i++) CHECK(status[i] == 2);
  rewind(messages);
  char line[256];
  int lines = 0;
  while (fgets(line, sizeof line, messages)) lines += strncmp(line, "nnc: error: options: ", 21) == 0;
  CHECK(lines == N + 1);
  fclose(messages);
  CHECK(access("x.safetensors", F_OK) != 0);
}

/* The learning rate lives in the buffer: a store changes the next steps
 * of the compiled code and of the interpreter alike, without compiling. */
static void learning_rate(void) {
  NncModel *m = nnc_compile_string("tiny.nn", tiny, NULL, NULL);
  CHECK(m != NULL);
  if (!m) return;
  const NncLayout *L = nnc_model_layout(m);
  const NncFunctions *f = nnc_model_jit(m, 2);
  CHECK(f != NULL && L->lr_offset >= 0 && L->lr_offset < L->total);
  if (!f || L->lr_offset < 0) {
    nnc_model_free(m);
    return;
  }
  size_t bytes = (size_t)L->total * 8;
  double *a = nnc_buffer_new(m), *b = nnc_buffer_new(m), *before = nnc_buffer_new(m);
  CHECK(a[L->lr_offset] == 0.1); /* the train block's lr */
  nnc_model_init_params(m, a);
  double x[4] = {0.5, -1, 1, 0.25}, t[2] = {1, -1}, loss = 0;
  /* rate 0: the step changes nothing but the momentum buffers */
  a[L->lr_offset] = 0;
  memcpy(before, a, bytes);
  f->f64.train_step(a, x, t, 2);
  for (int i = 0; i < L->nparams; i++)
    for (int64_t k = 0; k < L->params[i].size; k++)
      CHECK(a[L->params[i].offset + k] == before[L->params[i].offset + k]);
  /* a rate set in the buffer: the interpreter and the JIT agree */
  memcpy(a, before, bytes);
  a[L->lr_offset] = 0.03;
  memcpy(b, a, bytes);
  for (int step = 0; step < 3; step++) {
    f->f64.train_step(a, x, t, 2);
    CHECK(nnc_interp_train_step(m, b, x, t, 2, &loss) == 0);
  }
  bool moved = false;
  for (int i = 0; i < L->nparams; i++)
    for (int64_t k = 0; k < L->params[i].size; k++) {
      int64_t o = L->params[i].offset + k;
      CHECK(close_to(a[o], b[o]));
      moved |= a[o] != before[o];
    }
  CHECK(moved);
  free(a);
  free(b);
  free(before);
  nnc_model_free(m);
}

/* NULL where nnc.h allows it does what it says; any other NULL is the
 * call's error value (and an error in diags), never a crash. */
static void null_arguments(void) {
  NncDiagnostics d = {0};
  nnc_options_default(NULL);
  CHECK(nnc_compile_file(NULL, NULL, &d) == NULL);
  CHECK(d.count == 1 && strcmp(d.items[0].text, "nnc: error: nnc_compile_file: the path is NULL\n") == 0);
  nnc_diagnostics_free(&d);
  CHECK(nnc_model_layout(NULL) == NULL && nnc_buffer_new(NULL) == NULL && nnc_model_jit(NULL, 2) == NULL);
  const NncIndexInput *in = (const NncIndexInput *)&d;
  CHECK(nnc_model_index_inputs(NULL, &in) == 0 && in == NULL);
  nnc_model_stop(NULL, true);
  nnc_model_restart(NULL);
  nnc_buffer_init(NULL, NULL);
  nnc_model_init_params(NULL, NULL);
  CHECK(nnc_model_emit(NULL, "ir", 2, NULL, &d) == NULL);
  CHECK(one_error(&d, "nnc_model_emit: the model is NULL"));
  CHECK(nnc_model_fit(NULL, NULL, NULL, 1, false, NULL, &d) == -1);
  CHECK(one_error(&d, "nnc_model_fit: the model is NULL"));
  CHECK(nnc_model_data(NULL, NULL, NULL, &d) == -1);
  CHECK(one_error(&d, "nnc_model_data: the model is NULL"));

  NncModel *m = compile_trainable("0.05");
  if (!m) return;
  const NncLayout *L = nnc_model_layout(m);
  CHECK(nnc_model_index_inputs(m, NULL) == 0); /* the count alone */
  nnc_buffer_init(m, NULL);
  nnc_model_init_params(m, NULL);
  double *buf = nnc_buffer_new(m);
  nnc_model_init_params(m, buf);
  double x[2 * 2] = {0.5, -0.5, 1, 0}, t[2] = {1, 0}, y[2], loss;
  CHECK(nnc_interp_forward(m, NULL, x, t, 2, y, NULL) == -1);
  CHECK(nnc_interp_forward(m, buf, NULL, t, 2, y, NULL) == -1);
  CHECK(nnc_interp_forward(m, buf, x, t, 2, NULL, NULL) == -1);
  CHECK(nnc_interp_forward(m, buf, x, NULL, 2, y, NULL) == 0); /* t and loss may be NULL */
  CHECK(nnc_interp_backward(m, NULL, x, t, 2, &loss) == -1);
  CHECK(nnc_interp_backward(m, buf, NULL, t, 2, &loss) == -1);
  CHECK(nnc_interp_train_step(m, buf, NULL, t, 2, &loss) == -1);
  CHECK(nnc_interp_backward(m, buf, x, t, 2, NULL) == 0);

  char path[] = "/tmp/nnc_api_nullXXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd >= 0) close(fd);
  CHECK(nnc_model_save(m, buf, NULL, 0, &d) == -1);
  CHECK(one_error(&d, "nnc_model_save: the path is NULL"));
  CHECK(nnc_model_save(m, NULL, path, 0, &d) == -1);
  CHECK(one_error(&d, "nnc_model_save: buf is NULL"));
  CHECK(nnc_model_save(NULL, buf, path, 0, &d) == -1);
  CHECK(one_error(&d, "nnc_model_save: the model is NULL"));
  CHECK(nnc_model_save(m, buf, path, 0, &d) == 0 && d.count == 0);
  CHECK(nnc_model_load(m, buf, NULL, &d) == -1);
  CHECK(one_error(&d, "nnc_model_load: the path is NULL"));
  CHECK(nnc_model_load(m, NULL, path, &d) == -1);
  CHECK(one_error(&d, "nnc_model_load: buf is NULL"));
  CHECK(nnc_model_load(m, buf, path, &d) == 0 && d.count == 0);
  unlink(path);

  /* either data set may be left out */
  NncDataset tr;
  CHECK(nnc_model_data(m, &tr, NULL, &d) == 0 && d.count == 0 && tr.rows == 40 && tr.x && tr.t);
  nnc_dataset_free(&tr);
  CHECK(nnc_model_data(m, NULL, NULL, &d) == 0 && d.count == 0);
  CHECK(nnc_model_fit(m, NULL, NULL, 1, false, NULL, &d) == -1);
  CHECK(one_error(&d, "nnc_model_fit: buf is NULL"));
  CHECK(nnc_model_fit(m, buf, NULL, 1, false, NULL, &d) == 0 && d.count == 0); /* no result wanted */
  CHECK(L->input_cols == 2);
  free(buf);
  nnc_model_free(m);
}

/* threads 2: nnc_model_fit of the JIT code splits the products between
 * two threads on the caller's buffer, and ends with one thread's bits;
 * the model's own buffer is the engine's again after (freed once). */
static void two_threads_fit(void) {
  static const char *src = "model wide {\n  input x[2]\n  target t[1]\n"
                           "  y = x -> linear(512) -> relu -> linear(512) -> relu -> linear(1)\n"
                           "  loss squared(y, t)\n}\n"
                           "train {\n  data moons(samples: 256, noise: 0.1, seed: 1)\n"
                           "  optimizer adam(lr: 0.001)\n  epochs 2\n  batch 64\n}\n";
  void *bufs[2] = {NULL, NULL};
  size_t bytes = 0;
  for (int threads = 1; threads <= 2; threads++) {
    NncOptions o;
    nnc_options_default(&o);
    o.threads = threads;
    NncDiagnostics d = {0};
    NncModel *m = nnc_compile_string("wide.nn", src, &o, &d);
    CHECK(m != NULL && d.count == 0);
    nnc_diagnostics_free(&d);
    if (!m) return;
    const NncLayout *L = nnc_model_layout(m);
    bytes = (size_t)L->total * (L->dtype == NNC_F64 ? 8 : 4);
    bufs[threads - 1] = nnc_buffer_new(m);
    nnc_model_init_params(m, bufs[threads - 1]);
    const NncFunctions *f = nnc_model_jit(m, 2);
    NncFitResult r;
    CHECK(f && nnc_model_fit(m, bufs[threads - 1], f, -1, false, &r, &d) == 0 && r.epochs == 2 && r.steps == 8);
    nnc_fit_result_free(&r);
    nnc_model_free(m);
  }
  CHECK(bufs[0] && bufs[1] && memcmp(bufs[0], bufs[1], bytes) == 0);
  free(bufs[0]);
  free(bufs[1]);
}

int main(void) {
  errors_as_data();
  layout();
  min_train_rows();
  learning_rate();
  jit_equals_interp("f64");
  jit_equals_interp("f32");
  emit_text();
  data_and_fit();
  two_threads_fit();
  divergence();
  override_limits();
  run_limits();
  null_arguments();
  return check_report();
}
