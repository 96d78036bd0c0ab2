/*
 * update.h - the optimizer step as IR, and the parameter buffer's layout.
 *
 * build_updates() appends ROLE_UPDATE nodes computing each parameter's new
 * value from its gradient (g->grads[i]) and the optimizer state (STATE
 * leaves), and records them in g->updates, Theano's function(updates=):
 *
 *   sgd:   g' = g + weight_decay * p;  v <- momentum * v + g';  p <- p - lr * v
 *          (v is g' itself when momentum is 0: no state)
 *   adam:  as torch.optim.Adam: m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
 *          p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps),
 *          with b1^t and b2^t kept as two scalar states.
 *
 * The layout puts every parameter, its gradient and all optimizer state in
 * one contiguous buffer of the model's dtype, each tensor 64-byte aligned,
 * parameters first in creation order. Compiled code and the interpreter use
 * the same layout; checkpoints read and write through it.
 */
#ifndef NNC_UPDATE_H
#define NNC_UPDATE_H

#include "check.h"
#include "ir.h"

void build_updates(Graph *g, const OptimSpec *optim);

typedef struct Layout {
  int nparams, nstates;
  int64_t *param_off; /* element offsets of params[i] */
  int64_t *grad_off;  /* element offsets of grads[i] */
  int64_t *state_off; /* element offsets of states[j] */
  int64_t total;      /* elements in the buffer */
  int elem_size;      /* 4 or 8 */
} Layout;

Layout *layout_make(const Graph *g, Arena *arena);
/* --emit layout: one line per tensor, offsets in elements and bytes. */
void layout_dump(const Graph *g, const Layout *L, StrBuf *out);
/* Fill the optimizer state with its starting values. */
void layout_init_states(const Graph *g, const Layout *L, void *buf);

#endif
