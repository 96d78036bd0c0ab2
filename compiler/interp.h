/*
 * interp.h - the reference interpreter: evaluates IR graphs node by node.
 *
 * It is the semantic reference compiled code is checked against, so it is
 * written for clarity: every node's value is a dense array (one tensor per
 * batch row for batched nodes), computed in double and, for f32 models,
 * rounded to float after every node.
 *
 *   Interp *in = interp_new(g, rows, false);
 *   interp_give(in, x_node, data);
 *   const double *loss = interp_get(in, g->batch_loss);
 */
#ifndef NNC_INTERP_H
#define NNC_INTERP_H

#include <stdbool.h>

#include "engine.h"
#include "ir.h"

/* The elementwise semantics of every unary and binary op, shared with
 * constant folding. `attr` is the op's value attribute. */
double op_scalar(Op op, double a, double b, double attr);

typedef struct Interp Interp;

/* force_f64: compute in f64 even for f32 models (finite differences). */
Interp *interp_new(const Graph *g, int max_rows, bool force_f64);
void interp_free(Interp *in);
/* Evaluation mode (forward, predict): dropout is the identity; else
 * (the default) training mode. Forgets computed values on a change. */
void interp_set_evaluation(Interp *in, bool on);
/* Rows in the batch (1..max_rows); forgets computed values. */
void interp_set_rows(Interp *in, int rows);
/* Set a leaf's (or any node's) value; copies rows*numel or numel values. */
void interp_give(Interp *in, const Node *n, const double *values);
/* The same from float (elem_size 4) or double (8) values, such as a
 * parameter in an engine's buffer: no copy in double on the way. */
void interp_give_elems(Interp *in, const Node *n, const void *values, int elem_size);
/* Forget every computed value (given values stay). */
void interp_forget(Interp *in);
/* The value of n, computing what it needs. */
const double *interp_get(Interp *in, const Node *n);
/* The value of n when it has been computed or given, else NULL. */
const double *interp_peek(const Interp *in, const Node *n);

/* Run one training step of g in the interpreter from the parameters and
 * state in buf (layout's form) on n rows of x and t (the model's dtype),
 * and return the first node, in graph order, whose value is not finite
 * (NULL when every value is finite). For an elementwise op of one input,
 * *operand gets that input's value at the first element that is not
 * finite (log's argument, say), for a division its divisor's; otherwise
 * NAN. */
const Node *interp_first_nonfinite(const Graph *g, const Layout *layout, const void *buf, const void *x,
                                   const void *t, int64_t n, double *operand);

/* The bytes the interpreter holds for a step of `rows` rows: the buffer
 * (parameters, gradients, optimizer state) and every node's values, in
 * f64 whatever the model's dtype. */
double interp_bytes(const Graph *g, const Layout *layout, int64_t rows);

/* An Engine that runs the graph in the interpreter. */
Engine *interp_engine_new(const Graph *g, const Layout *layout, int max_batch);

#endif
