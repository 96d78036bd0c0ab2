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
   * rows (0..part_rows) scaled by 1/total into grad, a buffer of the same
   * layout, with ws (ws_bytes, 64-byte aligned) as workspace; returns the
   * sum of the rows' losses / total. The rows are rows first.. of the
   * whole batch (dropout's masks follow a row's place in it). Reads e->buf,
   * writes only grad and ws, so threads may run it side by side. */
  double (*grad_part)(Engine *e, void *grad, void *ws, const void *x, const void *t, int64_t n,
                      int64_t total, int64_t first);
  int64_t ws_bytes;
  int part_rows; /* the most rows grad_part takes (its ws holds them; Graph.part_rows) */
  /* compiled code only, and only for a step that is elementwise in every
   * tensor it writes (SGD with or without momentum, Nesterov, weight
   * decay, Adam, AdamW: each element of a parameter and its state from
   * the same element of its gradient and scalars; not clip_norm), else
   * NULL: the optimizer step (update) on slice `part` of `parts` of every
   * tensor (engine_slice), the same bits, so threads may run the parts
   * side by side. The parts write no scalar (Adam's b1^t, a parameter of
   * one element): the tail call, part == parts, made once every part
   * has returned, writes those, and with the parts makes the whole step.
   * The step's gradients are the buffer's plus grad2's (a buffer of the
   * same layout; only its gradient range is read), added element by
   * element where the step reads them: a thread's sum of the last shard's
   * gradients (parallel.c) without storing it. nt: store the parameters'
   * whole vectors non-temporally (to memory, out of every core's cache),
   * the same values. */
  void (*update_part)(Engine *e, int64_t part, int64_t parts, const void *grad2, bool nt);
  void (*destroy)(Engine *e);
  void *impl;
};

/* Slice `part` of `parts` of a tensor of n elements, [*lo, *hi): whole
 * 64-byte lines (16 f32, 8 f64) split as evenly as they go, the last part
 * also taking the elements after the last whole line, and all of a tensor
 * of at most ENGINE_SLICE_MIN elements (code computes those one by one,
 * not in vectors). update_part and the threads' sum of the gradients
 * (parallel.c) cut tensors alike, so a thread updates the elements it has
 * summed. */
enum { ENGINE_SLICE_MIN = 16 };
static inline void engine_slice(int64_t n, int elem_size, int64_t part, int64_t parts, int64_t *lo, int64_t *hi) {
  int64_t line = 64 / elem_size, lines = n <= ENGINE_SLICE_MIN ? 0 : n / line;
  *lo = lines * part / parts * line;
  *hi = part == parts - 1 ? n : lines * (part + 1) / parts * line;
}

/* Values per row of all inputs / targets. */
int64_t engine_input_cols(const Graph *g);
int64_t engine_target_cols(const Graph *g);
/* An input an embedding reads rows of its table by: values [column,
 * column + count) of a row of inputs (the inputs in order, flattened) must
 * each be an integer in [0, rows). */
typedef struct IndexInput {
  const Node *input, *table;
  int64_t column, count, rows;
} IndexInput;
/* g's, one per embedding (malloc'd, *n of them). */
IndexInput *engine_index_inputs(const Graph *g, int *n);

/* A new Engine with the entry points of `ops` (a template holding only
 * function pointers), its own zeroed 64-byte aligned buffer with the
 * optimizer state at its starting values, and `impl`. */
Engine *engine_new(const Engine *ops, const Graph *g, const Layout *layout, int max_batch, void *impl);
/* Free what engine_new allocated (impl is the engine's own business). */
void engine_free(Engine *e);

#endif
