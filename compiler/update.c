/*
 * update.c - optimizer steps as IR nodes, and the buffer layout.
 */
#include "update.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct U {
  Graph *g;
  const OptimSpec *o;
  Loc loc;
  Node *lr;       /* the learning rate: a state the driver sets */
  Node *step_size, *bc2_sqrt; /* adam, adamw: lr / (1 - b1^t), sqrt(1 - b2^t) */
  Node *decay;    /* adamw: 1 - lr * weight_decay */
} U;

static Node *k(U *u, double v) { return node_const(u->g, v, u->loc); }
static Node *bin(U *u, Op op, Node *a, Node *b) { return node_binary(u->g, op, a, b, u->loc); }
static Node *add(U *u, Node *a, Node *b) { return bin(u, OP_ADD, a, b); }
static Node *mul(U *u, Node *a, Node *b) { return bin(u, OP_MUL, a, b); }
static Node *sqrt_of(U *u, Node *a) { return node_unary(u->g, OP_SQRT, a, 0, u->loc); }

static Node *state(U *u, const char *name, Shape shape, double start) {
  Node *s = node_leaf(u->g, OP_STATE, shape, name, u->loc);
  s->attr.value = start;
  s->state_index = u->g->states.len;
  ptrvec_push_arena(u->g->arena, &u->g->states, s);
  return s;
}

/* A state of parameter p's shape, optimizer.P.WHAT, starting at 0. */
static Node *param_state(U *u, const Node *p, const char *what) {
  return state(u, arena_printf(u->g->arena, OPTIMIZER_STATE_PREFIX "%s.%s", p->name, what), p->shape, 0);
}

static void add_update(Graph *g, Node *target, Node *value) { graph_add_update(g, (Update){target, value}); }

/* a * s + b * x: a running average (torch's s.mul_(a).add_(x, alpha=b)) */
static Node *average(U *u, double a, Node *s, double b, Node *x) { return add(u, mul(u, k(u, a), s), mul(u, k(u, b), x)); }

/* The clipping factor of clip_grad_norm_(params, X): min(1, X / (norm +
 * 1e-6)), the norm over every gradient of the step. min(1, c) is written
 * -max(-c, -1), both exact. */
static Node *clip_factor(U *u) {
  Graph *g = u->g;
  Node *total = NULL;
  for (int i = 0; i < g->params.len; i++) {
    Node *d = g->grads[i];
    Node *sq = node_reduce(g, OP_SUM, mul(u, d, d), AXIS_ALL, u->loc);
    total = total ? add(u, total, sq) : sq;
  }
  Node *coef = bin(u, OP_DIV, k(u, u->o->clip_norm), add(u, sqrt_of(u, total), k(u, 1e-6)));
  Node *neg = node_unary(g, OP_NEG, coef, 0, u->loc);
  return node_unary(g, OP_NEG, node_unary(g, OP_MAXC, neg, -1, u->loc), 0, u->loc);
}

/* torch.optim.SGD: g' = g + wd p; v <- mu v + g'; p <- p - lr (g' + mu v)
 * with nesterov, else p - lr v (v is g' itself when mu is 0). */
static void sgd_step(U *u, Node *p, Node *grad) {
  const OptimSpec *o = u->o;
  Node *step = grad;
  if (o->weight_decay > 0) step = add(u, step, mul(u, k(u, o->weight_decay), p));
  if (o->momentum > 0) {
    Node *v = param_state(u, p, "momentum");
    Node *v_new = add(u, mul(u, k(u, o->momentum), v), step);
    add_update(u->g, v, v_new);
    step = o->nesterov ? add(u, step, mul(u, k(u, o->momentum), v_new)) : v_new;
  }
  add_update(u->g, p, bin(u, OP_SUB, p, mul(u, u->lr, step)));
}

/* torch.optim.Adam (weight decay added to the gradient) and AdamW (the
 * parameter decayed by 1 - lr wd first):
 *   m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
 *   p <- p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps) */
static void adam_step(U *u, Node *p, Node *grad) {
  const OptimSpec *o = u->o;
  if (o->kind == OPTIM_ADAM && o->weight_decay > 0) grad = add(u, grad, mul(u, k(u, o->weight_decay), p));
  Node *m = param_state(u, p, "m"), *v = param_state(u, p, "v");
  Node *m_new = average(u, o->beta1, m, 1 - o->beta1, grad);
  Node *v_new = average(u, o->beta2, v, 1 - o->beta2, mul(u, grad, grad));
  Node *denom = add(u, bin(u, OP_DIV, sqrt_of(u, v_new), u->bc2_sqrt), k(u, o->eps));
  Node *from = u->decay ? mul(u, p, u->decay) : p;
  add_update(u->g, m, m_new);
  add_update(u->g, v, v_new);
  add_update(u->g, p, bin(u, OP_SUB, from, mul(u, u->step_size, bin(u, OP_DIV, m_new, denom))));
}

/* torch.optim.RMSprop: g' = g + wd p; s <- a s + (1 - a) g'^2; with
 * centered, c <- a c + (1 - a) g' and the average is sqrt(s - c^2) + eps,
 * else sqrt(s) + eps; with momentum, b <- mu b + g' / avg and p <- p - lr b,
 * else p <- p - lr g' / avg. */
static void rmsprop_step(U *u, Node *p, Node *grad) {
  const OptimSpec *o = u->o;
  if (o->weight_decay > 0) grad = add(u, grad, mul(u, k(u, o->weight_decay), p));
  Node *s = param_state(u, p, "square_avg");
  Node *s_new = average(u, o->alpha, s, 1 - o->alpha, mul(u, grad, grad));
  add_update(u->g, s, s_new);
  Node *var = s_new;
  if (o->centered) {
    Node *c = param_state(u, p, "grad_avg");
    Node *c_new = average(u, o->alpha, c, 1 - o->alpha, grad);
    add_update(u->g, c, c_new);
    var = bin(u, OP_SUB, s_new, mul(u, c_new, c_new));
  }
  Node *step = bin(u, OP_DIV, grad, add(u, sqrt_of(u, var), k(u, o->eps)));
  if (o->momentum > 0) {
    Node *b = param_state(u, p, "momentum");
    step = add(u, mul(u, k(u, o->momentum), b), step);
    add_update(u->g, b, step);
  }
  add_update(u->g, p, bin(u, OP_SUB, p, mul(u, u->lr, step)));
}

void build_updates(Graph *g, const OptimSpec *o) {
  U u = {.g = g, .o = o, .loc = g->batch_loss ? g->batch_loss->loc : (Loc){0, 0}};
  if (!g->params.len) return;
  static const char *const names[] = {[OPTIM_SGD] = "sgd", [OPTIM_ADAM] = "adam", [OPTIM_ADAMW] = "adamw",
                                      [OPTIM_RMSPROP] = "rmsprop"};
  g->optimizer = names[o->kind];
  int first = g->len;
  u.lr = g->lr = state(&u, OPTIMIZER_STATE_PREFIX "lr", shape0(), o->lr);
  if (o->kind == OPTIM_ADAM || o->kind == OPTIM_ADAMW) {
    /* PyTorch's bias corrections 1 - b^t, kept as themselves (q <- b q +
       (1 - b), from 0), not as 1 minus the power b^t: near 1, f32 holds
       b^t to 6e-8, which is 0.6% of 1 - 0.99999 (and float(0.99999)
       is 0.14% off already); the moments' averages use the same two
       constants, so m / q1 and v / q2 stay averages whatever their
       rounding */
    Node *q1 = state(&u, OPTIMIZER_STATE_PREFIX "bias_correction1", shape0(), 0);
    Node *q2 = state(&u, OPTIMIZER_STATE_PREFIX "bias_correction2", shape0(), 0);
    Node *q1_new = add(&u, mul(&u, k(&u, o->beta1), q1), k(&u, 1 - o->beta1));
    Node *q2_new = add(&u, mul(&u, k(&u, o->beta2), q2), k(&u, 1 - o->beta2));
    add_update(g, q1, q1_new);
    add_update(g, q2, q2_new);
    u.step_size = bin(&u, OP_DIV, u.lr, q1_new);
    u.bc2_sqrt = sqrt_of(&u, q2_new);
    if (o->kind == OPTIM_ADAMW && o->weight_decay > 0)
      u.decay = bin(&u, OP_SUB, k(&u, 1), mul(&u, u.lr, k(&u, o->weight_decay)));
  }
  Node *clip = o->clip_norm > 0 ? clip_factor(&u) : NULL;
  for (int i = 0; i < g->params.len; i++) {
    Node *p = g->params.items[i], *grad = g->grads[i];
    if (g->no_path[i]) continue; /* torch.optim skips a parameter without a gradient: no decay, no state */
    u.loc = p->loc;
    if (clip) grad = mul(&u, grad, clip);
    switch (o->kind) {
    case OPTIM_SGD: sgd_step(&u, p, grad); break;
    case OPTIM_ADAM: case OPTIM_ADAMW: adam_step(&u, p, grad); break;
    case OPTIM_RMSPROP: rmsprop_step(&u, p, grad); break;
    }
  }
  for (int j = first; j < g->len; j++) g->nodes[j]->role = ROLE_UPDATE;
  /* state leaves are inputs of the step, not part of it */
  for (int j = 0; j < g->states.len; j++) ((Node *)g->states.items[j])->role = ROLE_UPDATE;
}

/* ---- layout ---- */

static int64_t align_up(int64_t off, int64_t elems) { return (off + elems - 1) / elems * elems; }

Layout *layout_make(const Graph *g, Arena *arena) {
  Layout *L = ARENA_NEW(arena, Layout);
  L->elem_size = g->dtype == DT_F64 ? 8 : 4;
  int64_t align = 64 / L->elem_size, off = 0;
  L->nparams = g->params.len;
  L->nstates = g->states.len;
  L->param_off = ARENA_ARRAY(arena, int64_t, L->nparams + 1);
  L->grad_off = ARENA_ARRAY(arena, int64_t, L->nparams + 1);
  L->state_off = ARENA_ARRAY(arena, int64_t, L->nstates + 1);
  for (int i = 0; i < L->nparams; i++) {
    L->param_off[i] = off = align_up(off, align);
    off += shape_numel(&((Node *)g->params.items[i])->shape);
  }
  L->grad_lo = off = align_up(off, align);
  for (int i = 0; i < L->nparams; i++) {
    L->grad_off[i] = off = align_up(off, align);
    off += shape_numel(&((Node *)g->params.items[i])->shape);
  }
  L->grad_hi = off;
  for (int j = 0; j < L->nstates; j++) {
    L->state_off[j] = off = align_up(off, align);
    off += shape_numel(&((Node *)g->states.items[j])->shape);
  }
  L->lr_off = g->lr ? L->state_off[g->lr->state_index] : -1;
  L->total = align_up(off, align);
  if (L->total == 0) L->total = align;
  return L;
}

static void dump_row(StrBuf *out, const char *kind, const char *name, const Shape *s, int64_t off,
                     int elem) {
  char sh[64];
  size_t start = out->len;
  sb_printf(out, "%-6s %s", kind, name);
  sb_pad_to(out, start, 36);
  sb_printf(out, " %-12s offset %8" PRId64 "  bytes %9" PRId64 "\n", shape_str(s, false, sh, sizeof sh),
            off, off * elem);
}

void layout_dump(const Graph *g, const Layout *L, StrBuf *out) {
  sb_printf(out, "; buffer layout of model %s: %" PRId64 " %s elements (%" PRId64 " bytes), 64-byte aligned\n",
            g->model_name ? g->model_name : "?", L->total, dtype_name(g->dtype),
            L->total * L->elem_size);
  for (int i = 0; i < L->nparams; i++) {
    const Node *p = g->params.items[i];
    dump_row(out, "param", p->name, &p->shape, L->param_off[i], L->elem_size);
  }
  for (int i = 0; i < L->nparams; i++) {
    const Node *p = g->params.items[i];
    char name[256];
    snprintf(name, sizeof name, "d.%s", p->name);
    dump_row(out, "grad", name, &p->shape, L->grad_off[i], L->elem_size);
  }
  for (int j = 0; j < L->nstates; j++) {
    const Node *s = g->states.items[j];
    dump_row(out, "state", s->name, &s->shape, L->state_off[j], L->elem_size);
  }
}

static void init_state(const Graph *g, const Layout *L, int j, void *buf) {
  const Node *s = g->states.items[j];
  int64_t n = shape_numel(&s->shape);
  for (int64_t e = 0; e < n; e++) {
    if (L->elem_size == 8)
      ((double *)buf)[L->state_off[j] + e] = s->attr.value;
    else
      ((float *)buf)[L->state_off[j] + e] = (float)s->attr.value;
  }
}

void layout_init_states(const Graph *g, const Layout *L, void *buf) {
  for (int j = 0; j < L->nstates; j++) init_state(g, L, j, buf);
}

void layout_reset_run_state(const Graph *g, const Layout *L, void *buf) {
  for (int j = 0; j < L->nstates; j++)
    if (is_run_state(g->states.items[j]) && g->states.items[j] != g->lr) init_state(g, L, j, buf);
}
