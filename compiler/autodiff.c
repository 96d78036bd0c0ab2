/*
 * autodiff.c - reverse-mode differentiation of IR graphs, one rule per op.
 *
 * Notation in the rules: y is the forward node, a and b its operands, dy
 * the gradient of the loss with respect to y. A rule calls give(k, value)
 * for each operand k with the gradient contribution it receives; values of
 * a different shape are reduced by accumulate(). Rules reuse forward values
 * where they can (relu's mask from its output, sigmoid's and softmax's
 * outputs) instead of recomputing them.
 */
#include "autodiff.h"

#include <stdlib.h>
#include <string.h>

typedef struct AD {
  Graph *g;
  Node **grad;     /* grad[id]: accumulated gradient of node id, or NULL */
  bool *needs;     /* needs[id]: a parameter flows into node id */
  Node *inv_batch; /* 1 / rows, created on first use */
  Node *y;         /* the node whose rule is running */
  Loc loc;
} AD;

/* ---- node builders for rules (role and provenance are set afterwards) ---- */

static Node *c(AD *ad, double v) { return node_const(ad->g, v, ad->loc); }
static Node *un(AD *ad, Op op, Node *a) { return node_unary(ad->g, op, a, 0, ad->loc); }
static Node *unv(AD *ad, Op op, Node *a, double v) { return node_unary(ad->g, op, a, v, ad->loc); }
static Node *bin(AD *ad, Op op, Node *a, Node *b) { return node_binary(ad->g, op, a, b, ad->loc); }
static Node *mul(AD *ad, Node *a, Node *b) { return bin(ad, OP_MUL, a, b); }
static Node *sub(AD *ad, Node *a, Node *b) { return bin(ad, OP_SUB, a, b); }

static Node *window(AD *ad, Op op, Node *a, Node *b, const OpAttr *attr) {
  return node_make(ad->g, op, a, b, attr, ad->loc);
}

static Node *shaped(AD *ad, Op op, Node *a, Shape s) {
  if (shape_eq(&a->shape, &s)) return a;
  return node_shaped(ad->g, op, a, s, ad->loc);
}

/* x with a reduced `axis` put back as a 1, then broadcast to `full`:
 * the inverse direction of a reduction. */
static Node *unreduce(AD *ad, Node *x, int axis, const Shape *full) {
  if (axis != AXIS_ALL) {
    Shape keep = *full;
    keep.dim[axis] = 1;
    x = shaped(ad, OP_RESHAPE, x, keep);
  }
  return shaped(ad, OP_BROADCAST, x, *full);
}

/* x[start : start + shape.dim[axis]] along axis */
static Node *slice_of(AD *ad, Node *x, int axis, int64_t start, Shape shape) {
  if (shape_eq(&x->shape, &shape)) return x;
  OpAttr attr = {.axis = axis, .value = (double)start, .shape = shape};
  return node_make(ad->g, OP_SLICE, x, NULL, &attr, ad->loc);
}

/* x, with `before` and `after` zeros around it along axis: the inverse
 * direction of a slice */
static Node *pad(AD *ad, Node *x, int axis, int64_t before, int64_t after) {
  OpAttr attr = {.axis = axis};
  for (int side = 0; side < 2; side++) {
    int64_t len = side == 0 ? before : after;
    if (len == 0) continue;
    Shape zs = x->shape;
    zs.dim[axis] = len;
    Node *zeros = shaped(ad, OP_BROADCAST, c(ad, 0), zs);
    x = node_make(ad->g, OP_CONCAT, side == 0 ? zeros : x, side == 0 ? x : zeros, &attr, ad->loc);
  }
  return x;
}

static Node *inv_batch(AD *ad) {
  if (!ad->inv_batch) ad->inv_batch = node_leaf(ad->g, OP_INV_BATCH, shape0(), "inv_batch", ad->loc);
  return ad->inv_batch;
}

/* Row `r` of a [2, C] value as [C]. */
static Node *moments_row(AD *ad, Node *v, int r) {
  int64_t C = v->shape.dim[1];
  return shaped(ad, OP_RESHAPE, slice_of(ad, v, 0, r, shape2(1, C)), shape1(C));
}

/* A [C] value as [C, 1, ...] against x [C, ...]. */
static Node *against(AD *ad, Node *v, const Node *x) {
  Shape keep = x->shape;
  for (int d = 1; d < keep.rank; d++) keep.dim[d] = 1;
  return shaped(ad, OP_RESHAPE, v, keep);
}

/* The gradient of channel_moments y = [mean; sum (x - mean)^2] of x
 * [C, ...] over the n rows and P positions a channel has: each element
 * gets dmean / (n P) + 2 dssd (x - mean). (The squared deviations' sum
 * also depends on x through the mean, by -2 dssd sum (x - mean) / (n P),
 * which is 0: the deviations from the mean sum to 0.) The count is the
 * rows of the call, batch_sum(1), as the op's own. The per-channel
 * factors are [C] values, which code generation computes in one loop
 * with the other per-channel values of the gradient. */
static Node *moments_dx(AD *ad, Node *y, Node *dy) {
  Node *x = y->in[0];
  int64_t positions = shape_numel(&x->shape) / x->shape.dim[0];
  Node *rows = node_reduce(ad->g, OP_BATCH_SUM, c(ad, 1), AXIS_ALL, ad->loc);
  Node *count = positions == 1 ? rows : mul(ad, rows, c(ad, (double)positions));
  Node *shift = bin(ad, OP_DIV, moments_row(ad, dy, 0), count);
  Node *twice = mul(ad, c(ad, 2), moments_row(ad, dy, 1));
  Node *centred = bin(ad, OP_SUB, x, against(ad, moments_row(ad, y, 0), x));
  Node *dx = bin(ad, OP_ADD, mul(ad, centred, against(ad, twice, x)), against(ad, shift, x));
  /* x without a batch counts once per row */
  return x->batched ? dx : mul(ad, dx, rows);
}

/* Add contribution `d` to the gradient of `target`, consumed by ad->y. */
static void accumulate(AD *ad, Node *target, Node *d) {
  if (!shape_eq(&d->shape, &target->shape)) d = shaped(ad, OP_SUM_TO, d, target->shape);
  /* a per-row consumer of a per-batch value (or a per-row contribution
     to one, as scatter_add's): its gradient is the sum of the rows' */
  if ((ad->y->batched || d->batched) && !target->batched) d = node_reduce(ad->g, OP_BATCH_SUM, d, AXIS_ALL, ad->loc);
  Node *old = ad->grad[target->id];
  ad->grad[target->id] = old ? bin(ad, OP_ADD, old, d) : d;
}

/* Add d, already summed over the batch rows, to the gradient of target. */
static void accumulate_summed(AD *ad, Node *target, Node *d) {
  Node *old = ad->grad[target->id];
  ad->grad[target->id] = old ? bin(ad, OP_ADD, old, d) : d;
}

/* ---- the rules ---- */

/* give[k] = e, built only when operand k needs a gradient */
#define GIVE(k, e) \
  do { \
    if (want[k]) give[k] = (e); \
  } while (0)

static void rule(AD *ad, Node *y, Node *dy, const bool want[2], Node *give[2]) {
  Node *a = y->in[0], *b = y->in[1];
  Graph *g = ad->g;
  switch (y->op) {
  case OP_INPUT: case OP_TARGET: case OP_PARAM: case OP_STATE: case OP_CONST:
  case OP_INV_BATCH:
    return; /* leaves */
  case OP_STEP: case OP_SIGN: case OP_LEAKY_STEP:
    return; /* piecewise constant: zero almost everywhere */
  case OP_NEG: GIVE(0, un(ad, OP_NEG, dy)); return;
  /* dy where y > 0, else 0, as PyTorch's threshold_backward: an infinite
     or NaN dy (sqrt's derivative at 0, say) stops at an inactive unit */
  case OP_RELU: GIVE(0, bin(ad, OP_KEEP_POS, y, dy)); return;
  case OP_SIGMOID: GIVE(0, mul(ad, dy, mul(ad, y, sub(ad, c(ad, 1), y)))); return;
  case OP_TANH: GIVE(0, mul(ad, dy, sub(ad, c(ad, 1), mul(ad, y, y)))); return;
  case OP_EXP: GIVE(0, mul(ad, dy, y)); return;
  case OP_LOG: GIVE(0, bin(ad, OP_DIV, dy, a)); return;
  case OP_SQRT: GIVE(0, bin(ad, OP_DIV, dy, mul(ad, c(ad, 2), y))); return;
  case OP_ABS: GIVE(0, mul(ad, dy, un(ad, OP_SIGN, a))); return;
  case OP_SOFTPLUS: GIVE(0, mul(ad, dy, un(ad, OP_SIGMOID, a))); return;
  case OP_LEAKY_RELU: GIVE(0, mul(ad, dy, unv(ad, OP_LEAKY_STEP, a, y->attr.value))); return;
  case OP_POW: {
    double p = y->attr.value;
    if (p == 0) return; /* x^0 is constant */
    if (p == 1) {
      GIVE(0, dy);
      return;
    }
    Node *deriv = p == 2 ? mul(ad, c(ad, 2), a) : mul(ad, c(ad, p), unv(ad, OP_POW, a, p - 1));
    GIVE(0, mul(ad, dy, deriv));
    return;
  }
  case OP_MAXC: GIVE(0, mul(ad, dy, unv(ad, OP_STEP, a, y->attr.value))); return;
  case OP_ADD: GIVE(0, dy); GIVE(1, dy); return;
  case OP_SUB: GIVE(0, dy); GIVE(1, un(ad, OP_NEG, dy)); return;
  case OP_MUL: GIVE(0, mul(ad, dy, b)); GIVE(1, mul(ad, dy, a)); return;
  case OP_DIV:
    GIVE(0, bin(ad, OP_DIV, dy, b));
    GIVE(1, un(ad, OP_NEG, mul(ad, dy, bin(ad, OP_DIV, y, b))));
    return;
  case OP_BCE:
    /* as PyTorch: dp = (p - t) / max(p (1 - p), 1e-12) */
    GIVE(0, mul(ad, dy, bin(ad, OP_DIV, sub(ad, a, b),
                            unv(ad, OP_MAXC, mul(ad, a, sub(ad, c(ad, 1), a)), 1e-12))));
    GIVE(1, mul(ad, dy, sub(ad, unv(ad, OP_MAXC, un(ad, OP_LOG, sub(ad, c(ad, 1), a)), -100),
                            unv(ad, OP_MAXC, un(ad, OP_LOG, a), -100))));
    return;
  case OP_MAX: /* ties: half to each side, as torch.maximum */
    GIVE(0, mul(ad, dy, bin(ad, OP_MAX_SHARE, a, b)));
    GIVE(1, mul(ad, dy, bin(ad, OP_MAX_SHARE, b, a)));
    return;
  case OP_MIN: /* a's part of min(a, b) is b's part of max(a, b) */
    GIVE(0, mul(ad, dy, bin(ad, OP_MAX_SHARE, b, a)));
    GIVE(1, mul(ad, dy, bin(ad, OP_MAX_SHARE, a, b)));
    return;
  case OP_MAX_SHARE:
    return; /* piecewise constant */
  case OP_KEEP_POS: GIVE(1, bin(ad, OP_KEEP_POS, a, dy)); return; /* none to the condition */
  case OP_KEEP_NONPOS: GIVE(1, bin(ad, OP_KEEP_NONPOS, a, dy)); return;
  case OP_GATHER:
    /* each index's row of dy goes back to its row of the table, summed over
       the batch by scatter_add itself (none to the indices) */
    if (want[0]) accumulate_summed(ad, a, node_make(g, OP_SCATTER_ADD, dy, b, &(OpAttr){.shape = a->shape}, ad->loc));
    return;
  case OP_SCATTER_ADD: GIVE(0, bin(ad, OP_GATHER, dy, b)); return; /* per row: the table's rows again */
  case OP_SUM: GIVE(0, unreduce(ad, dy, y->attr.axis, &a->shape)); return;
  case OP_MEAN: {
    double n = (double)shape_numel(&a->shape) / (double)shape_numel(&y->shape);
    GIVE(0, unreduce(ad, mul(ad, dy, c(ad, 1 / n)), y->attr.axis, &a->shape));
    return;
  }
  case OP_LOGSUMEXP: {
    /* dy * softmax(a), with softmax(a) = exp(a - logsumexp(a)) reusing y */
    Node *ybig = unreduce(ad, y, y->attr.axis, &a->shape);
    GIVE(0, mul(ad, unreduce(ad, dy, y->attr.axis, &a->shape), un(ad, OP_EXP, sub(ad, a, ybig))));
    return;
  }
  case OP_SOFTMAX: {
    int last = a->shape.rank - 1;
    Node *dot = node_reduce(g, OP_SUM, mul(ad, dy, y), last, ad->loc);
    GIVE(0, mul(ad, y, sub(ad, dy, unreduce(ad, dot, last, &a->shape))));
    return;
  }
  case OP_LOG_SOFTMAX: {
    int last = a->shape.rank - 1;
    Node *total = node_reduce(g, OP_SUM, dy, last, ad->loc);
    GIVE(0, sub(ad, dy, mul(ad, un(ad, OP_EXP, y), unreduce(ad, total, last, &a->shape))));
    return;
  }
  case OP_MATMUL: {
    int ra = a->shape.rank, rb = b->shape.rank;
    if (ra == 2 && rb == 2) {        /* [m,k]@[k,n]: dA = dY B^T, dB = A^T dY */
      GIVE(0, bin(ad, OP_MATMUL, dy, un(ad, OP_TRANSPOSE, b)));
      GIVE(1, bin(ad, OP_MATMUL, un(ad, OP_TRANSPOSE, a), dy));
    } else if (ra == 2) {            /* [m,k]@[k]: dA = outer(dy, b), db = A^T dy */
      GIVE(0, bin(ad, OP_OUTER, dy, b));
      GIVE(1, bin(ad, OP_MATMUL, un(ad, OP_TRANSPOSE, a), dy));
    } else if (rb == 2) {            /* [k]@[k,n]: da = B dy, dB = outer(a, dy) */
      GIVE(0, bin(ad, OP_MATMUL, b, dy));
      GIVE(1, bin(ad, OP_OUTER, a, dy));
    } else {                         /* [k]@[k]: a dot product */
      GIVE(0, mul(ad, dy, b));
      GIVE(1, mul(ad, dy, a));
    }
    return;
  }
  case OP_OUTER:
    GIVE(0, bin(ad, OP_MATMUL, dy, b));
    GIVE(1, bin(ad, OP_MATMUL, a, dy));
    return;
  case OP_TRANSPOSE: GIVE(0, un(ad, OP_TRANSPOSE, dy)); return;
  case OP_BROADCAST: GIVE(0, dy); return; /* accumulate() sums it down */
  case OP_RESHAPE: GIVE(0, shaped(ad, OP_RESHAPE, dy, a->shape)); return;
  case OP_SUM_TO: GIVE(0, shaped(ad, OP_BROADCAST, dy, a->shape)); return;
  case OP_CONCAT: {
    int ax = y->attr.axis;
    GIVE(0, slice_of(ad, dy, ax, 0, a->shape));
    GIVE(1, slice_of(ad, dy, ax, a->shape.dim[ax], b->shape));
    return;
  }
  case OP_SLICE: {
    int ax = y->attr.axis;
    int64_t start = (int64_t)y->attr.value;
    GIVE(0, pad(ad, dy, ax, start, a->shape.dim[ax] - start - y->shape.dim[ax]));
    return;
  }
  case OP_DROPOUT: /* linear: the same mask (key, step, element) on dy */
    GIVE(0, node_make(g, OP_DROPOUT, dy, b, &y->attr, ad->loc));
    return;
  case OP_IF_TRAINING: GIVE(0, dy); return; /* gradients are of training functions */
  case OP_BATCH_SUM: GIVE(0, dy); return;
  case OP_BATCH_MEAN:
    /* an operand that is the same for every row (a loss of the parameters
       alone) is its own mean, so its gradient is dy: written as the sum
       over the rows of dy / rows, which a shard of a batch (grad_part,
       whose rows are its share of them) turns into its share of dy */
    GIVE(0, a->batched ? mul(ad, dy, inv_batch(ad))
                       : node_reduce(g, OP_BATCH_SUM, mul(ad, dy, inv_batch(ad)), AXIS_ALL, ad->loc));
    return;
  case OP_CHANNEL_MOMENTS: GIVE(0, moments_dx(ad, y, dy)); return;
  case OP_CONV: /* y = conv(x, w): the transposed convolution, and the correlation of x with dy */
    GIVE(0, window(ad, OP_CONV_DX, dy, b, &y->attr));
    GIVE(1, window(ad, OP_CONV_DW, a, dy, &y->attr));
    return;
  case OP_MAX_POOL: GIVE(0, window(ad, OP_MAX_POOL_DX, a, dy, &y->attr)); return;
  case OP_AVG_POOL: GIVE(0, window(ad, OP_AVG_POOL_DX, dy, NULL, &y->attr)); return;
  case OP_CONV_DX: case OP_CONV_DW: case OP_MAX_POOL_DX: case OP_AVG_POOL_DX:
    /* made by the rules above; nnc differentiates once */
    break;
  case OP_COUNT: break;
  }
  nnc_die("autodiff: no rule for op %d", (int)y->op);
}

/* ---- the walk ---- */

void autodiff(Graph *g) {
  int nfwd = g->len;
  AD ad = {.g = g};
  /* grad and needs grow with the graph; size them for the worst case */
  int cap = nfwd * 64 + 1024;
  ad.grad = nnc_xcalloc((size_t)cap, sizeof(Node *));
  ad.needs = nnc_xcalloc((size_t)nfwd, sizeof(bool));
  for (int i = 0; i < nfwd; i++) {
    Node *n = g->nodes[i];
    ad.needs[i] = n->op == OP_PARAM;
    for (int k = 0; k < op_info[n->op].nin; k++) ad.needs[i] |= ad.needs[n->in[k]->id];
  }
  Node *root = g->batch_loss;
  ad.y = root;
  ad.loc = root->loc;
  int first = g->len;
  ad.grad[root->id] = c(&ad, 1);
  for (int i = root->id; i >= 0; i--) {
    Node *y = g->nodes[i];
    Node *dy = ad.grad[i];
    if (!dy || !ad.needs[i]) continue;
    Node *give[2] = {NULL, NULL};
    bool want[2] = {false, false};
    for (int k = 0; k < op_info[y->op].nin; k++) want[k] = ad.needs[y->in[k]->id];
    ad.y = y;
    ad.loc = y->loc;
    int start = g->len;
    rule(&ad, y, dy, want, give);
    for (int k = 0; k < op_info[y->op].nin; k++)
      if (give[k]) accumulate(&ad, y->in[k], give[k]);
    for (int j = start; j < g->len; j++) {
      Node *n = g->nodes[j];
      if (!n->via.set) n->via = (Via){true, y->op, y->loc};
    }
    for (int k = 0; k < op_info[y->op].nin; k++) {
      Node *d = ad.grad[y->in[k]->id];
      if (d && d->id >= start && !d->grad_of) d->grad_of = y->in[k];
    }
    if (g->len + 64 > cap) nnc_die("autodiff: graph grew past its bound");
  }
  for (int j = first; j < g->len; j++) {
    Node *n = g->nodes[j];
    n->role = ROLE_BACKWARD;
    if (!n->via.set) n->via = (Via){true, root->op, root->loc};
  }
  /* the gradients, named after what they are the gradient of */
  g->grads = ARENA_ARRAY(g->arena, Node *, g->params.len + 1);
  g->no_path = ARENA_ARRAY(g->arena, bool, g->params.len + 1);
  for (int i = 0; i < nfwd; i++) {
    Node *x = g->nodes[i], *d = ad.grad[i];
    if (d && d->id >= first && x->name && !d->name && d->op != OP_CONST && d->op != OP_INV_BATCH) {
      d->name = arena_printf(g->arena, "d.%s", x->name);
      d->grad_of = x;
    }
  }
  for (int i = 0; i < g->params.len; i++) {
    Node *p = g->params.items[i];
    Node *d = ad.grad[p->id];
    if (!d) {
      /* a parameter the loss does not depend on has a zero gradient */
      ad.loc = p->loc;
      ad.y = p;
      d = shaped(&ad, OP_BROADCAST, c(&ad, 0), p->shape);
      d->role = ROLE_BACKWARD;
      d->via = (Via){true, p->op, p->loc};
      d->grad_of = p;
      d->name = arena_printf(g->arena, "d.%s", p->name);
      g->no_path[i] = true;
    }
    g->grads[i] = d;
  }
  free(ad.grad);
  free(ad.needs);
}
