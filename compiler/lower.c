/*
 * lower.c - checked AST to forward IR graph (see lower.h for the rules).
 */
#include "lower.h"

#include <string.h>

typedef struct Lower {
  Graph *g;
  const Program *p;
  Node **bound; /* bound[Symbol.index]: the node a name stands for */
  int unnamed[LAYER_KINDS]; /* unnamed layers of each kind so far */
  PtrVec inits; /* ParamInit *, parallel to g->params */
  Node *loss_first_arg; /* set when a loss call is lowered */
  Node *logit;          /* what a bce_logits loss reads, or NULL */
  Node *dropout_step;   /* the training step dropout's masks depend on, made on first use */
  int dropouts;         /* dropout calls so far */
} Lower;

/* The node of a name the checker resolved. */
static Node *lookup(Lower *L, const Symbol *sym) {
  if (sym && L->bound[sym->index]) return L->bound[sym->index];
  nnc_die("lowering: '%s' is not bound (the checker should have caught it)", sym ? sym->name : "?");
}

/* Does the model bind `name`? */
static bool binds(const Program *p, const char *name) {
  for (const Stmt *s = p->model->stmts; s; s = s->next)
    if (s->sym && s->kind != S_OUTPUT && strcmp(s->sym->name, name) == 0) return true;
  return false;
}

static Node *new_param(Lower *L, const char *name, Shape shape, Loc loc,
                       ParamInitKind kind, const InitSpec *own) {
  Node *n = node_leaf(L->g, OP_PARAM, shape, name, loc);
  n->param_index = L->g->params.len;
  ptrvec_push_arena(L->g->arena, &L->g->params, n);
  ParamInit *pi = ARENA_NEW(L->g->arena, ParamInit);
  pi->kind = kind;
  if (own) pi->own = *own;
  ptrvec_push(&L->inits, pi);
  return n;
}

static Node *lower_expr(Lower *L, const Expr *e);

/* Where a layer kind's call keeps its `name:` argument. */
static int layer_name_slot(LayerKind kind) {
  switch (kind) {
  case LAYER_LINEAR: return LINEAR_NAME;
  case LAYER_LAYER_NORM: return LAYER_NORM_NAME;
  case LAYER_BATCH_NORM: return BATCH_NORM_NAME;
  case LAYER_EMBEDDING: return EMBEDDING_NAME;
  case LAYER_CONV2D: case LAYER_CONV1D: return CONV_NAME;
  case LAYER_MAX_POOL2D: case LAYER_MAX_POOL1D: case LAYER_AVG_POOL2D: case LAYER_AVG_POOL1D: case LAYER_FLATTEN:
  case LAYER_RESHAPE: case LAYER_KINDS: break;
  }
  nnc_die("lowering: unknown layer");
}

/* The name a layer's parameters start with: its own, or its kind's name
 * and number (linear1, layer_norm2; each kind counts its own). */
static const char *layer_name(Lower *L, const Call *call) {
  LayerKind kind = (LayerKind)call->b->sub;
  bool conv = kind == LAYER_CONV2D || kind == LAYER_CONV1D;
  const char *given = call->str[layer_name_slot(kind)];
  if (given) return given;
  /* conv1d and conv2d count together, as conv1, conv2, ... */
  if (conv) return arena_printf(L->g->arena, "conv%d", ++L->unnamed[LAYER_CONV2D]);
  return arena_printf(L->g->arena, "%s%d", call->b->name, ++L->unnamed[kind]);
}

/* linear(units) on the last axis of x. */
static Node *lower_linear(Lower *L, const Expr *e, Node *x) {
  Graph *g = L->g;
  const Call *call = e->call;
  int64_t units = (int64_t)call->num[LINEAR_UNITS];
  bool has_bias = call->num[LINEAR_BIAS] != 0;
  const char *layer = layer_name(L, call);
  int64_t in = x->shape.dim[x->shape.rank - 1];
  Node *W = new_param(L, arena_printf(g->arena, "%s.W", layer), shape2(units, in), e->loc,
                      PINIT_TRAIN, NULL);
  Node *b = has_bias ? new_param(L, arena_printf(g->arena, "%s.b", layer), shape1(units),
                                 e->loc, PINIT_ZERO, NULL)
                     : NULL;
  Node *y;
  if (x->shape.rank == 1) {
    y = node_binary(g, OP_MATMUL, W, x, e->loc);
  } else {
    /* rows of x times W^T; ranks above 2 are flattened to rows and back */
    Shape rows = shape2(shape_numel(&x->shape) / in, in);
    Node *x2 = x->shape.rank == 2 ? x : node_shaped(g, OP_RESHAPE, x, rows, e->loc);
    Node *Wt = node_unary(g, OP_TRANSPOSE, W, 0, e->loc);
    y = node_binary(g, OP_MATMUL, x2, Wt, e->loc);
    if (x->shape.rank > 2) {
      Shape out = x->shape;
      out.dim[out.rank - 1] = units;
      y = node_shaped(g, OP_RESHAPE, y, out, e->loc);
    }
  }
  return b ? node_binary(g, OP_ADD, y, b, e->loc) : y;
}

/* x with its last axis reduced by `op` put back as a 1 (a scalar for a
 * vector), so it broadcasts against x. */
static Node *last_axis(Lower *L, Op op, Node *x, Loc loc) {
  int last = x->shape.rank - 1;
  Node *r = node_reduce(L->g, op, x, last, loc);
  if (last == 0) return r;
  Shape keep = x->shape;
  keep.dim[last] = 1;
  return node_shaped(L->g, OP_RESHAPE, r, keep, loc);
}

/* layer_norm over the last axis, as nn.LayerNorm: (x - mean) /
 * sqrt(var + eps) * g + b with the biased variance. */
static Node *lower_layer_norm(Lower *L, const Expr *e, Node *x) {
  Graph *g = L->g;
  Loc loc = e->loc;
  const char *layer = layer_name(L, e->call);
  Shape features = shape1(x->shape.dim[x->shape.rank - 1]);
  InitSpec ones = {.kind = NNC_INIT_CONSTANT, .arg = 1};
  Node *gain = new_param(L, arena_printf(g->arena, "%s.g", layer), features, loc, PINIT_OWN, &ones);
  Node *bias = new_param(L, arena_printf(g->arena, "%s.b", layer), features, loc, PINIT_ZERO, NULL);
  Node *d = node_binary(g, OP_SUB, x, last_axis(L, OP_MEAN, x, loc), loc);
  Node *var = last_axis(L, OP_MEAN, node_unary(g, OP_POW, d, 2, loc), loc);
  Node *eps = node_const(g, e->call->num[LAYER_NORM_EPS], loc);
  Node *std = node_unary(g, OP_SQRT, node_binary(g, OP_ADD, var, eps, loc), 0, loc);
  Node *y = node_binary(g, OP_MUL, node_binary(g, OP_DIV, d, std, loc), gain, loc);
  return node_binary(g, OP_ADD, y, bias, loc);
}

/* A state of the model (not the optimizer's), starting at `start`, which
 * `value` replaces after each training step. */
static Node *new_state(Lower *L, const char *name, Shape shape, double start, Loc loc) {
  Graph *g = L->g;
  Node *s = node_leaf(g, OP_STATE, shape, name, loc);
  s->attr.value = start;
  s->state_index = g->states.len;
  ptrvec_push_arena(g->arena, &g->states, s);
  return s;
}

static void add_update(Graph *g, Node *target, Node *value, bool from_batch) {
  value->role = ROLE_UPDATE;
  graph_add_update(g, (Update){target, value, from_batch});
}

/* Row r of channel_moments' [2, C] as [C]. */
static Node *moments_row(Graph *g, Node *m, int r, Loc loc) {
  int64_t C = m->shape.dim[1];
  OpAttr attr = {.axis = 0, .value = r, .shape = shape2(1, C)};
  return node_shaped(g, OP_RESHAPE, node_make(g, OP_SLICE, m, NULL, &attr, loc), shape1(C), loc);
}

/* a [C] value of a channel as [C, 1, ...], to broadcast against x */
static Node *per_channel(Graph *g, Node *v, const Node *x, Loc loc) {
  if (x->shape.rank == 1) return v;
  Shape keep = x->shape;
  for (int d = 1; d < keep.rank; d++) keep.dim[d] = 1;
  return node_shaped(g, OP_RESHAPE, v, keep, loc);
}

/* batch_norm on axis 0 (the channels; a vector's features), as
 * nn.BatchNorm1d/2d. Training functions normalize with the statistics of
 * the batch over its rows and every other axis (the biased variance) and
 * move the running statistics towards them by `momentum` (the unbiased
 * variance); evaluation functions normalize with the running statistics.
 * Both as y = x * scale + shift with scale = g / sqrt(var + eps) and
 * shift = b - mean * scale per channel: one multiply-add an element, as
 * PyTorch's CPU kernel computes it. The gradient goes through the batch
 * statistics (if_training gives its training operand dy). The row count
 * is batch_sum(1), the rows of this call, so a shard of a batch
 * (grad_part) normalizes with its own rows. */
static Node *lower_batch_norm(Lower *L, const Expr *e, Node *x) {
  Graph *g = L->g;
  Loc loc = e->loc;
  const Call *call = e->call;
  const char *layer = layer_name(L, call);
  double momentum = call->num[BATCH_NORM_MOMENTUM];
  int64_t C = x->shape.dim[0], positions = shape_numel(&x->shape) / C;
  Shape channels = shape1(C);
  if (!g->stat_values || positions < g->stat_values) g->stat_layer = layer, g->stat_values = positions, g->stat_loc = loc;
  InitSpec ones = {.kind = NNC_INIT_CONSTANT, .arg = 1};
  Node *gain = new_param(L, arena_printf(g->arena, "%s.g", layer), channels, loc, PINIT_OWN, &ones);
  Node *bias = new_param(L, arena_printf(g->arena, "%s.b", layer), channels, loc, PINIT_ZERO, NULL);
  Node *run_mean = new_state(L, arena_printf(g->arena, "%s.running_mean", layer), channels, 0, loc);
  Node *run_var = new_state(L, arena_printf(g->arena, "%s.running_var", layer), channels, 1, loc);
  /* the batch statistics: each channel's mean over the rows and every
     other axis, then the sum of squared deviations from it (two passes
     over x: channel_moments) */
  Node *rows = node_reduce(g, OP_BATCH_SUM, node_const(g, 1, loc), AXIS_ALL, loc);
  Node *count = positions == 1 ? rows : node_binary(g, OP_MUL, rows, node_const(g, (double)positions, loc), loc);
  Node *moments = node_make(g, OP_CHANNEL_MOMENTS, x, NULL, NULL, loc);
  Node *mean_b = moments_row(g, moments, 0, loc);
  Node *squares = moments_row(g, moments, 1, loc);
  Node *var_b = node_binary(g, OP_DIV, squares, count, loc);
  /* normalize with the batch's or the running statistics */
  Node *mean = node_make(g, OP_IF_TRAINING, mean_b, run_mean, NULL, loc);
  Node *var = node_make(g, OP_IF_TRAINING, var_b, run_var, NULL, loc);
  Node *eps = node_const(g, call->num[BATCH_NORM_EPS], loc);
  Node *scale = node_binary(g, OP_DIV, gain, node_unary(g, OP_SQRT, node_binary(g, OP_ADD, var, eps, loc), 0, loc), loc);
  Node *shift = node_binary(g, OP_SUB, bias, node_binary(g, OP_MUL, mean, scale, loc), loc);
  Node *y = node_binary(g, OP_ADD, node_binary(g, OP_MUL, x, per_channel(g, scale, x, loc), loc),
                        per_channel(g, shift, x, loc), loc);
  /* the running statistics after a training step, as PyTorch:
     (1 - momentum) * running + momentum * batch, the variance unbiased */
  int first = g->len;
  Node *keep = node_const(g, 1 - momentum, loc), *take = node_const(g, momentum, loc);
  Node *var_u = node_binary(g, OP_DIV, squares, node_binary(g, OP_SUB, count, node_const(g, 1, loc), loc), loc);
  add_update(g, run_mean, node_binary(g, OP_ADD, node_binary(g, OP_MUL, take, mean_b, loc),
                                      node_binary(g, OP_MUL, keep, run_mean, loc), loc), true);
  add_update(g, run_var, node_binary(g, OP_ADD, node_binary(g, OP_MUL, take, var_u, loc),
                                     node_binary(g, OP_MUL, keep, run_var, loc), loc), true);
  for (int i = first; i < g->len; i++) g->nodes[i]->role = ROLE_UPDATE;
  return y;
}

/* dropout(rate): its masks come from the train seed, the step and the
 * dropout's place among the model's dropouts (its key). The step is a
 * state every optimizer step advances, so --grad and --check-grad, which
 * take no step, keep one mask. */
static Node *lower_dropout(Lower *L, const Expr *e, Node *x) {
  Graph *g = L->g;
  double rate = e->call->attr.value;
  int ordinal = L->dropouts++;
  if (rate == 0) return x;
  if (!L->dropout_step) {
    Node *s = node_leaf(g, OP_STATE, shape0(), DROPOUT_STEP_NAME, e->loc);
    s->state_index = g->states.len;
    ptrvec_push_arena(g->arena, &g->states, s);
    Node *next = node_binary(g, OP_ADD, s, node_const(g, 1, e->loc), e->loc);
    add_update(g, s, next, false);
    L->dropout_step = s;
  }
  OpAttr attr = {.value = rate,
                 .axis = (int)(dropout_hash((uint32_t)ordinal, L->p->train.seed, 0) >> 33)};
  return node_make(g, OP_DROPOUT, x, L->dropout_step, &attr, e->loc);
}

/* embedding(vocab, dim) on indices x: rows of the table W [vocab, dim],
 * initialized normal(std: 1) as PyTorch's nn.Embedding. */
static Node *lower_embedding(Lower *L, const Expr *e, Node *x) {
  Graph *g = L->g;
  const Call *call = e->call;
  const char *layer = layer_name(L, call);
  InitSpec normal = {.kind = NNC_INIT_NORMAL, .arg = 1};
  Shape table = shape2((int64_t)call->num[EMBEDDING_VOCAB], (int64_t)call->num[EMBEDDING_DIM]);
  Node *W = new_param(L, arena_printf(g->arena, "%s.W", layer), table, e->loc, PINIT_OWN, &normal);
  return node_binary(g, OP_GATHER, W, x, e->loc);
}

/* where(c, a, b) = keep_pos(c, a) + keep_nonpos(c, b): exact, since one
 * side is zero (and a NaN or infinity on the side not taken stays there). */
static Node *lower_where(Lower *L, const Expr *e, Node *cond, Node *a, Node *b) {
  Graph *g = L->g;
  Node *taken = node_binary(g, OP_KEEP_POS, cond, a, e->loc);
  Node *other = node_binary(g, OP_KEEP_NONPOS, cond, b, e->loc);
  return node_binary(g, OP_ADD, taken, other, e->loc);
}

/* conv2d/conv1d: W [K, C, kh, kw] (or [K, C, k]) as a [K, C*kh*kw] view
 * (the matrix of the im2col product), then the bias over every position. */
static Node *lower_conv(Lower *L, const Expr *e, Node *x) {
  Graph *g = L->g;
  const Call *call = e->call;
  const Window *w = &call->attr.win;
  int64_t K = (int64_t)call->num[CONV_CHANNELS], C = x->shape.dim[0];
  const char *layer = layer_name(L, call);
  Shape ws = {w->rank + 2, {K, C}};
  for (int d = 2 - w->rank, j = 2; d < 2; d++, j++) ws.dim[j] = w->k[d];
  Node *W = new_param(L, arena_printf(g->arena, "%s.W", layer), ws, e->loc, PINIT_TRAIN, NULL);
  Node *b = call->num[CONV_BIAS] != 0
                ? new_param(L, arena_printf(g->arena, "%s.b", layer), shape1(K), e->loc, PINIT_ZERO, NULL)
                : NULL;
  Node *W2 = node_shaped(g, OP_RESHAPE, W, shape2(K, C * w->k[0] * w->k[1]), e->loc);
  Node *y = node_make(g, OP_CONV, x, W2, &call->attr, e->loc);
  if (!b) return y;
  Shape per_channel = {y->shape.rank, {K, 1, 1}};
  return node_binary(g, OP_ADD, y, node_shaped(g, OP_RESHAPE, b, per_channel, e->loc), e->loc);
}

static Node *lower_layer(Lower *L, const Expr *e, Node *x) {
  Graph *g = L->g;
  const Call *call = e->call;
  switch ((LayerKind)call->b->sub) {
  case LAYER_LINEAR: return lower_linear(L, e, x);
  case LAYER_LAYER_NORM: return lower_layer_norm(L, e, x);
  case LAYER_BATCH_NORM: return lower_batch_norm(L, e, x);
  case LAYER_EMBEDDING: return lower_embedding(L, e, x);
  case LAYER_CONV2D: case LAYER_CONV1D: return lower_conv(L, e, x);
  case LAYER_MAX_POOL2D: case LAYER_MAX_POOL1D: return node_make(g, OP_MAX_POOL, x, NULL, &call->attr, e->loc);
  case LAYER_AVG_POOL2D: case LAYER_AVG_POOL1D: return node_make(g, OP_AVG_POOL, x, NULL, &call->attr, e->loc);
  case LAYER_FLATTEN: case LAYER_RESHAPE:
    return shape_eq(&x->shape, &call->attr.shape) ? x : node_shaped(g, OP_RESHAPE, x, call->attr.shape, e->loc);
  case LAYER_KINDS: break;
  }
  nnc_die("lowering: unknown layer");
}

static Node *lower_loss(Lower *L, const Expr *e, Node *y, Node *t) {
  Graph *g = L->g;
  Loc loc = e->loc;
  switch ((LossKind)e->call->b->sub) {
  case LOSS_SQUARED: {
    Node *d = node_binary(g, OP_SUB, t, y, loc);
    return node_reduce(g, OP_SUM, node_unary(g, OP_POW, d, 2, loc), AXIS_ALL, loc);
  }
  case LOSS_MSE: {
    Node *d = node_binary(g, OP_SUB, y, t, loc);
    return node_reduce(g, OP_MEAN, node_unary(g, OP_POW, d, 2, loc), AXIS_ALL, loc);
  }
  case LOSS_BCE:
    return node_reduce(g, OP_MEAN, node_binary(g, OP_BCE, y, t, loc), AXIS_ALL, loc);
  case LOSS_BCE_LOGITS: {
    L->logit = y;
    Node *sp = node_unary(g, OP_SOFTPLUS, y, 0, loc);
    Node *zt = node_binary(g, OP_MUL, y, t, loc);
    return node_reduce(g, OP_MEAN, node_binary(g, OP_SUB, sp, zt, loc), AXIS_ALL, loc);
  }
  case LOSS_CROSS_ENTROPY: {
    Node *ls = node_unary(g, OP_LOG_SOFTMAX, y, 0, loc);
    Node *s = node_reduce(g, OP_SUM, node_binary(g, OP_MUL, t, ls, loc), AXIS_ALL, loc);
    return node_unary(g, OP_NEG, s, 0, loc);
  }
  }
  nnc_die("unknown loss");
}

static Node *lower_call(Lower *L, const Expr *e) {
  const Call *call = e->call;
  Node *a = lower_expr(L, call->tensor[0]);
  Node *b = call->b->ntensors > 1 ? lower_expr(L, call->tensor[1]) : NULL;
  switch (call->b->kind) {
  case B_OP:
    if (call->b->sub == OP_DROPOUT) return lower_dropout(L, e, a);
    if (call->b->sub == OP_CONCAT) { /* a chain of two-operand concats, in order */
      Node *joined = node_make(L->g, OP_CONCAT, a, b, &call->attr, e->loc);
      for (int i = 2; i < call->ntensors; i++)
        joined = node_make(L->g, OP_CONCAT, joined, lower_expr(L, call->tensor[i]), &call->attr, e->loc);
      return joined;
    }
    return node_make(L->g, (Op)call->b->sub, a, b, &call->attr, e->loc);
  case B_WHERE:
    return lower_where(L, e, a, b, lower_expr(L, call->tensor[2]));
  case B_LAYER:
    return lower_layer(L, e, a);
  case B_LOSS:
    if (!L->loss_first_arg) L->loss_first_arg = a; /* the outermost loss call */
    return lower_loss(L, e, a, b);
  case B_INIT: case B_DATA: case B_OPTIM: case B_SCHEDULE:
    break;
  }
  nnc_die("lowering: %s cannot appear in an expression", call->b->name);
}

static Node *lower_expr(Lower *L, const Expr *e) {
  Graph *g = L->g;
  if (e->type && e->type->is_const) return node_const(g, e->type->value, e->loc);
  switch (e->kind) {
  case E_NUM:
    return node_const(g, e->num, e->loc);
  case E_NAME:
    return lookup(L, e->sym);
  case E_NEG:
    return node_unary(g, OP_NEG, lower_expr(L, e->lhs), 0, e->loc);
  case E_BINOP: {
    Node *a = lower_expr(L, e->lhs);
    if (e->op == '^') return node_unary(g, OP_POW, a, e->rhs->type->value, e->loc);
    Node *b = lower_expr(L, e->rhs);
    Op op = e->op == '+' ? OP_ADD : e->op == '-' ? OP_SUB : e->op == '*' ? OP_MUL
          : e->op == '/' ? OP_DIV : OP_MATMUL;
    return node_binary(g, op, a, b, e->loc);
  }
  case E_CALL:
    return lower_call(L, e);
  case E_STR: case E_LIST:
    break;
  }
  nnc_die("lowering: unexpected expression");
}

static Shape stmt_shape(const Stmt *s) {
  Shape sh = shape0();
  if (s->rank > 0) {
    sh.rank = s->ndims;
    for (int i = 0; i < s->ndims; i++) sh.dim[i] = (int64_t)s->dims[i]->num;
  }
  return sh;
}

Graph *lower_program(const Program *p, Arena *arena, ParamInit **inits) {
  Graph *g = graph_new(arena, p->dtype);
  g->model_name = p->model_name;
  g->source_name = p->src->name;
  Lower L = {.g = g, .p = p, .bound = ARENA_ARRAY(arena, Node *, p->nsymbols + 1)};
  Node *default_output = NULL;
  for (const Stmt *s = p->model->stmts; s; s = s->next) {
    switch (s->kind) {
    case S_INPUT: case S_TARGET: {
      Node *n = node_leaf(g, s->kind == S_INPUT ? OP_INPUT : OP_TARGET, stmt_shape(s),
                          s->name, s->name_loc);
      ptrvec_push_arena(g->arena, s->kind == S_INPUT ? &g->inputs : &g->targets, n);
      L.bound[s->sym->index] = n;
      break;
    }
    case S_PARAM: {
      InitSpec spec = s->value ? init_spec(s->value->call) : (InitSpec){0};
      Node *n = new_param(&L, s->name, stmt_shape(s), s->name_loc,
                          s->value ? PINIT_OWN : PINIT_TRAIN, &spec);
      L.bound[s->sym->index] = n;
      break;
    }
    case S_LET: {
      Node *n = lower_expr(&L, s->value);
      if (!n->name && n->op != OP_CONST) n->name = s->name;
      L.bound[s->sym->index] = n;
      break;
    }
    case S_LOSS: {
      L.loss_first_arg = NULL;
      Node *loss = lower_expr(&L, s->value);
      /* the default output: the first argument of the (first) loss call */
      default_output = L.loss_first_arg;
      if (loss->shape.rank > 0) loss = node_shaped(g, OP_RESHAPE, loss, shape0(), s->loc);
      if (!loss->name) loss->name = "loss";
      g->loss = loss;
      break;
    }
    case S_DTYPE: case S_OUTPUT: case S_SETTING:
      break;
    }
  }
  g->output = p->output ? lookup(&L, p->output) : default_output ? default_output : g->loss;
  g->output_is_logit = g->output == L.logit;
  g->batch_loss = node_reduce(g, OP_BATCH_MEAN, g->loss, AXIS_ALL, p->loss->loc);
  /* (a binding may already be called batch_loss: labels must stay unique) */
  g->batch_loss->name = binds(p, "batch_loss") ? NULL : "batch_loss";
  *inits = (ParamInit *)ARENA_ARRAY(arena, ParamInit, L.inits.len + 1);
  for (int i = 0; i < L.inits.len; i++) (*inits)[i] = *(ParamInit *)L.inits.items[i];
  ptrvec_free(&L.inits);
  return g;
}
