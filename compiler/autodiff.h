/*
 * autodiff.h - the backward graph, derived symbolically.
 *
 * autodiff() walks the forward graph from the batch loss back to the
 * parameters in reverse topological order and applies one chain-rule rule
 * per op (the table in autodiff.c). The result is more nodes in the same
 * graph (role ROLE_BACKWARD), an ordinary IR graph that can be printed,
 * optimized, interpreted and compiled. Only what parameters need is built:
 * no gradients for inputs or targets, nothing for branches that reach no
 * parameter.
 *
 * Two helpers do all the bookkeeping, so rules stay one line each:
 *   - accumulate(): sums contributions when a value has several consumers,
 *     reduces a broadcast gradient back to the operand's shape (SUM_TO), and
 *     sums a per-row gradient over the batch (BATCH_SUM) when the operand is
 *     the same for every row (a parameter);
 *   - the seed: d batch_loss = 1, and batch_mean's rule multiplies by
 *     1/rows, so gradients are those of the mean per-sample loss.
 */
#ifndef NNC_AUTODIFF_H
#define NNC_AUTODIFF_H

#include "ir.h"

/* Append the backward graph of g->batch_loss; sets g->grads. */
void autodiff(Graph *g);

#endif
