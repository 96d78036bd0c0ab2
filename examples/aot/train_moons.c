/*
 * train_moons.c - examples/moons.nn trained by an ahead-of-time compiled
 * object, linked with nothing but libc and libm (no LLVM, no libnnc):
 *
 *   nnc examples/moons.nn --emit obj -o model.o
 *   nnc examples/moons.nn --emit header -o model.h
 *   cc -I. -Iruntime examples/aot/train_moons.c model.o \
 *      runtime/rng.c runtime/data.c runtime/init.c -lm -o train_moons
 *   ./train_moons            # the same final lines as nnc examples/moons.nn --jit --train
 *
 * It does what `nnc --train` does for this file, in the same order: the data
 * come from nnc's own generator (runtime/data.c: scikit-learn's make_moons
 * geometry, 1000 samples, noise 0.15, seed 42; the first 320 rows train, the
 * rest validate), drawn with nnc's random number generator (runtime/rng.c);
 * the layer weights get xavier_normal values from one generator seeded 13,
 * in creation order, and the biases zero (runtime/init.c, the train block's
 * `init`); 400 epochs of train_epoch over the rows in file order (no
 * shuffling, batch 1, SGD at lr 0.05, all compiled into the object). Then
 * forward gives the mean per-row losses and predict the accuracies, each
 * over a whole set in one call.
 *
 * Those three runtime files are plain C (libc and libm): they are compiled
 * into this program rather than reimplemented, so the numbers are the same.
 * For a given --cpu the object holds the same code as nnc's JIT, so the
 * final lines equal `nnc examples/moons.nn --jit --train --cpu CPU` digit
 * for digit (see docs/embedding.md).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"   /* nnc examples/moons.nn --emit header */
#include "runtime.h" /* nnc's data generators, RNG and initializers */

typedef nnc_moons_real real;

/* Mean per-row loss over a set: forward takes any number of rows. */
static double mean_loss(real *buf, const real *x, const real *t, size_t rows) {
  real *y = malloc(sizeof(real) * (rows * nnc_moons_OUTPUT_COLS + 1)), *loss = malloc(sizeof(real) * (rows + 1));
  if (!y || !loss) abort();
  nnc_moons_forward(buf, x, t, (int64_t)rows, y, loss);
  double total = 0;
  for (size_t i = 0; i < rows; i++) total += loss[i];
  free(y);
  free(loss);
  return total / (double)rows;
}

/* Share of rows whose prediction (threshold 0.5) matches the 0/1 label. */
static double accuracy(real *buf, const real *x, const real *t, size_t rows) {
  real *y = malloc(sizeof(real) * (rows * nnc_moons_OUTPUT_COLS + 1));
  if (!y) abort();
  nnc_moons_predict(buf, x, (int64_t)rows, y);
  size_t correct = 0;
  for (size_t i = 0; i < rows; i++) correct += (y[i] > 0.5) == (t[i] > 0.5);
  free(y);
  return (double)correct / (double)rows;
}

/* A data set's columns in the model's dtype. */
static real *cast(const double *v, size_t n) {
  real *out = malloc(sizeof(real) * (n + 1));
  if (!out) abort();
  for (size_t i = 0; i < n; i++) out[i] = (real)v[i];
  return out;
}

/* %.17g for f64 and %.9g for f32, as nnc prints; -0 prints as 0. */
static void print_value(const char *what, double v) {
  if (v == 0) v = 0;
  printf(strcmp(nnc_moons_DTYPE, "f64") == 0 ? "%s %.17g\n" : "%s %.9g\n", what, v);
}

int main(int argc, char **argv) {
  long epochs = argc > 1 ? strtol(argv[1], NULL, 10) : 400;
  char err[256];
  NncData all, train, valid;
  if (nnc_data_moons(&all, 1000, 0.15, 42, nnc_moons_INPUT_COLS, nnc_moons_TARGET_COLS, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    return 1;
  }
  nnc_data_split(&all, 320, &train, &valid);

  real *buf = aligned_alloc(64, (nnc_moons_BUFFER_BYTES + 63) / 64 * 64);
  if (!buf) abort();
  nnc_moons_buffer_init(buf);
  NncRng rng;
  nnc_rng_seed(&rng, 13);
  for (int i = 0; i < nnc_moons_PARAM_COUNT; i++) {
    const nnc_moons_param *p = &nnc_moons_PARAMS[i];
    const char *dot = strrchr(p->name, '.');
    if (!dot || strcmp(dot, ".W") != 0) continue; /* biases stay zero */
    double *v = malloc(sizeof(double) * (size_t)p->size);
    if (!v) abort();
    nnc_init_fill(NNC_INIT_XAVIER_NORMAL, 0, &rng, p->rank, p->shape, v);
    for (int64_t k = 0; k < p->size; k++) buf[p->offset + k] = (real)v[k];
    free(v);
  }

  real *tx = cast(train.x, train.rows * nnc_moons_INPUT_COLS), *tt = cast(train.t, train.rows * nnc_moons_TARGET_COLS);
  real *vx = cast(valid.x, valid.rows * nnc_moons_INPUT_COLS), *vt = cast(valid.t, valid.rows * nnc_moons_TARGET_COLS);
  for (long e = 1; e <= epochs; e++) {
    double running = nnc_moons_train_epoch(buf, tx, tt, (int64_t)train.rows) / (double)train.rows;
    if (e == 1 || e % 40 == 0) printf("epoch %ld/%ld  train loss %.6g\n", e, epochs, running);
  }
  print_value("final train loss", mean_loss(buf, tx, tt, train.rows));
  print_value("final valid loss", mean_loss(buf, vx, vt, valid.rows));
  printf("final train accuracy %.9g\n", accuracy(buf, tx, tt, train.rows));
  printf("final valid accuracy %.9g\n", accuracy(buf, vx, vt, valid.rows));

  /* the trained model on two points: one in each moon */
  real points[2 * nnc_moons_INPUT_COLS] = {0, 1, 1, -0.5}, y[2 * nnc_moons_OUTPUT_COLS];
  nnc_moons_predict(buf, points, 2, y);
  for (int i = 0; i < 2; i++)
    printf("predict (%g, %g) -> %.6f\n", (double)points[2 * i], (double)points[2 * i + 1], (double)y[i]);
  free(tx);
  free(tt);
  free(vx);
  free(vt);
  free(buf);
  nnc_data_free(&train);
  nnc_data_free(&valid);
  return 0;
}
