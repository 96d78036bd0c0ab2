/*
 * passes.h - graph passes.
 *
 * Each pass builds a new graph from the old one (nodes are immutable once
 * built), mapping every old node to its replacement, and the verifier runs
 * after each:
 *   stabilize   on the forward graph, before autodiff: rewrites to stable
 *               forms, with a note naming the .nn line:
 *                 log(sigmoid(z))   -> -softplus(-z)
 *                 log(softmax(z))   -> log_softmax(z)
 *                 bce(sigmoid(z),t) -> softplus(z) - z*t  (the logits form)
 *   fold        constant folding and exact algebraic identities
 *               (x*1, x+0, x-0, x/1, --x, x^1, no-op reshapes and broadcasts;
 *               x*0 only between constants, the one place it is exact); a
 *               step of optimize_graph
 *   cse         common-subexpression elimination
 *   dce         dead-code elimination (keeps leaves: they are the interface)
 */
#ifndef NNC_PASSES_H
#define NNC_PASSES_H

#include "diag.h"
#include "ir.h"

Graph *pass_stabilize(Graph *g, Diag *diag);
Graph *pass_cse(Graph *g);
/* fold, cse, dce until nothing changes (at most a few rounds). */
Graph *optimize_graph(Graph *g);

#endif
