/*
 * lower.h - from the checked AST to the forward IR graph.
 *
 * Layers and losses are sugar and expand here into primitive ops:
 *   linear(u) on x[k]       W[u,k] @ x + b
 *   linear(u) on x[n,k]     x @ transpose(W) + b   (the last axis, as PyTorch)
 *   layer_norm on x[..,n]   (x - mean) / sqrt(var + eps) * g + b over the last axis
 *   concat(a, b, c)         concat(concat(a, b), c)
 *   squared(y, t)           sum((t - y)^2)
 *   mse(y, t)               mean((y - t)^2)
 *   bce(p, t)               mean(bce(p, t))        (elementwise op, logs clamped at -100)
 *   bce_logits(z, t)        mean(softplus(z) - z * t)
 *   cross_entropy(z, t)     -sum(t * log_softmax(z))
 * Parameters are created in evaluation order (arguments before the call,
 * chains left to right) and named linear1.W, linear1.b, layer_norm1.g, ...
 * (each kind numbers its own) or NAME.W.
 */
#ifndef NNC_LOWER_H
#define NNC_LOWER_H

#include "check.h"
#include "ir.h"

/* How a parameter gets its initial values. */
typedef enum ParamInitKind {
  PINIT_TRAIN, /* a layer weight: the train block's `init` */
  PINIT_ZERO,  /* a layer bias */
  PINIT_OWN    /* an explicit `param` with its own initializer */
} ParamInitKind;

typedef struct ParamInit {
  ParamInitKind kind;
  InitSpec own; /* PINIT_OWN */
} ParamInit;

/* Build the forward graph of p's model: inputs, targets and parameters as
 * leaves, the per-sample loss (g->loss), its batch mean (g->batch_loss) and
 * the output. inits[i] describes g->params[i] (arena-allocated). */
Graph *lower_program(const Program *p, Arena *arena, ParamInit **inits);

#endif
