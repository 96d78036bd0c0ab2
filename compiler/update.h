/*
 * update.h - the optimizer step as IR, and the parameter buffer's layout.
 *
 * build_updates() appends ROLE_UPDATE nodes computing each parameter's new
 * value from its gradient (g->grads[i]) and the optimizer state (STATE
 * leaves named optimizer.*), and records them in g->updates, Theano's
 * function(updates=). Each optimizer is torch.optim's update, operation for
 * operation (update.c has the formulas): sgd (momentum, nesterov, weight
 * decay), adam (weight decay on the gradient), adamw (decoupled decay),
 * rmsprop (momentum, centered, weight decay). Adam's b1^t and b2^t are two
 * scalar states. With clip_norm, every gradient is first scaled as
 * torch.nn.utils.clip_grad_norm_ does (one factor from the norm over all of
 * them), before weight decay and momentum.
 *
 * The learning rate is not a constant of the step: it is the scalar state
 * optimizer.lr (g->lr), which starts at the train block's lr and which
 * nothing in the step changes. Whoever runs the step sets it (the training
 * loop, from the schedule, before each epoch), so a schedule never
 * recompiles anything; it is at layout->lr_off in the buffer.
 *
 * The layout puts every parameter, its gradient and all optimizer state in
 * one contiguous buffer of the model's dtype, each tensor 64-byte aligned,
 * parameters first in creation order. Compiled code and the interpreter use
 * the same layout; checkpoints read and write through it.
 */
#ifndef NNC_UPDATE_H
#define NNC_UPDATE_H

#include <string.h>

#include "check.h"
#include "ir.h"

void build_updates(Graph *g, const OptimSpec *optim);

/* The names of the optimizer's states begin with this (checkpoints keep
 * them apart from a layer's states; --load skips them). */
#define OPTIMIZER_STATE_PREFIX "optimizer."
static inline bool is_optimizer_state(const Node *s) {
  return strncmp(s->name, OPTIMIZER_STATE_PREFIX, sizeof OPTIMIZER_STATE_PREFIX - 1) == 0;
}

/* The states of a run rather than of the model: the optimizer's and the
 * step dropout draws its masks from (as PyTorch's random generator, never
 * in a state_dict). A checkpoint keeps them for --resume; --load skips
 * them and a new run starts them afresh (layout_reset_run_state). */
static inline bool is_run_state(const Node *s) {
  return is_optimizer_state(s) || strcmp(s->name, DROPOUT_STEP_NAME) == 0;
}

typedef struct Layout {
  int nparams, nstates;
  int64_t *param_off; /* element offsets of params[i] */
  int64_t *grad_off;  /* element offsets of grads[i] */
  int64_t *state_off; /* element offsets of states[j] */
  int64_t lr_off;     /* the learning rate (g->lr), or -1 when there is no step */
  int64_t grad_lo, grad_hi; /* the gradients' element range: params before it, state after */
  int64_t total;      /* elements in the buffer */
  int elem_size;      /* 4 or 8 */
} Layout;

Layout *layout_make(const Graph *g, Arena *arena);
/* --emit layout: one line per tensor, offsets in elements and bytes. */
void layout_dump(const Graph *g, const Layout *L, StrBuf *out);
/* Fill the optimizer state with its starting values. */
void layout_init_states(const Graph *g, const Layout *L, void *buf);
/* The run's states (is_run_state) but the learning rate back at their
 * starting values (a fresh start from loaded parameters, as --load makes). */
void layout_reset_run_state(const Graph *g, const Layout *L, void *buf);

#endif
