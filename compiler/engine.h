/*
 * engine.h - what runs a model: the reference interpreter (interp.c) or
 * compiled code (jit.c), behind one interface, so the training driver,
 * --grad, --check-grad and --predict work the same with either.
 *
 * Both work on the same parameter buffer (update.h's Layout, in the model's
 * dtype) and take data as row-major arrays in the model's dtype: x holds
 * each row's inputs (all input tensors flattened, in declaration order), t
 * each row's targets, likewise.
 */
#ifndef NNC_ENGINE_H
#define NNC_ENGINE_H

#include <stdint.h>

#include "ir.h"
#include "update.h"

typedef struct Engine Engine;
struct Engine {
  const Graph *g;
  const Layout *layout;
  void *buf;     /* parameters, gradients, optimizer state (owned here) */
  int max_batch; /* rows per call the engine was built for */
  int64_t rows_per_step; /* rows per optimizer step in train_epoch: max_batch (MPI: ranks x max_batch) */
  /* batch loss of n <= max_batch rows; gradients into buf */
  double (*backward)(Engine *e, const void *x, const void *t, int64_t n);
  /* one optimizer step from the gradients in buf */
  void (*update)(Engine *e);
  /* backward + update fused; returns the batch loss before the step */
  double (*train_step)(Engine *e, const void *x, const void *t, int64_t n);
  /* train_step over rows in batches of max_batch (the last may be smaller);
   * returns the sum over rows of each row's loss before its step */
  double (*train_epoch)(Engine *e, const void *x, const void *t, int64_t rows);
  /* per-row outputs y[n * numel(output)] and, when t is given, per-row
   * losses loss[n], for any number of rows n (in batches of max_batch);
   * y and loss are in the model's dtype */
  void (*forward)(Engine *e, const void *x, const void *t, int64_t n, void *y, void *loss);
  /* compiled code only (else NULL), for threads and MPI: the gradients of n
   * rows (0..max_batch) scaled by 1/total into grad, a buffer of the same
   * layout, with ws (ws_bytes, 64-byte aligned) as workspace; returns the
   * sum of the rows' losses / total. The rows are rows first.. of the
   * whole batch (dropout's masks follow a row's place in it). Reads e->buf,
   * writes only grad and ws, so threads may run it side by side. */
  double (*grad_part)(Engine *e, void *grad, void *ws, const void *x, const void *t, int64_t n,
                      int64_t total, int64_t first);
  int64_t ws_bytes;
  void (*destroy)(Engine *e);
  void *impl;
};

/* Values per row of all inputs / targets. */
int64_t engine_input_cols(const Graph *g);
int64_t engine_target_cols(const Graph *g);

/* A new Engine with the entry points of `ops` (a template holding only
 * function pointers), its own zeroed 64-byte aligned buffer with the
 * optimizer state at its starting values, and `impl`. */
Engine *engine_new(const Engine *ops, const Graph *g, const Layout *layout, int max_batch, void *impl);
/* Free what engine_new allocated (impl is the engine's own business). */
void engine_free(Engine *e);

#endif
