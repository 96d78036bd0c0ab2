/*
 * update.c - optimizer steps as IR nodes, and the buffer layout.
 */
#include "update.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef struct U {
  Graph *g;
  Loc loc;
} U;

static Node *k(U *u, double v) {
  Node *n = node_const(u->g, v, u->loc);
  return n;
}
static Node *bin(U *u, Op op, Node *a, Node *b) { return node_binary(u->g, op, a, b, u->loc); }

static Node *state(U *u, const char *name, Shape shape, double start) {
  Node *s = node_leaf(u->g, OP_STATE, shape, name, u->loc);
  s->attr.value = start;
  s->state_index = u->g->states.len;
  ptrvec_push_arena(u->g->arena, &u->g->states, s);
  return s;
}

static void add_update(Graph *g, Node *target, Node *value) {
  Update *ups = ARENA_ARRAY(g->arena, Update, g->nupdates + 1);
  if (g->nupdates) memcpy(ups, g->updates, sizeof(Update) * (size_t)g->nupdates);
  ups[g->nupdates++] = (Update){target, value};
  g->updates = ups;
}

static void sgd_step(U *u, const OptimSpec *o, Node *p, Node *grad) {
  Graph *g = u->g;
  Node *step = grad;
  if (o->weight_decay > 0) step = bin(u, OP_ADD, step, bin(u, OP_MUL, k(u, o->weight_decay), p));
  if (o->momentum > 0) {
    Node *v = state(u, arena_printf(g->arena, "%s.momentum", p->name), p->shape, 0);
    step = bin(u, OP_ADD, bin(u, OP_MUL, k(u, o->momentum), v), step);
    add_update(g, v, step);
  }
  add_update(g, p, bin(u, OP_SUB, p, bin(u, OP_MUL, k(u, o->lr), step)));
}

void build_updates(Graph *g, const OptimSpec *o) {
  U u = {.g = g, .loc = g->batch_loss ? g->batch_loss->loc : (Loc){0, 0}};
  int first = g->len;
  Node *b1t = NULL, *b2t = NULL, *step_size = NULL, *bc2_sqrt = NULL;
  if (o->kind == OPTIM_ADAM && g->params.len) {
    b1t = state(&u, "adam.beta1_t", shape0(), 1);
    b2t = state(&u, "adam.beta2_t", shape0(), 1);
    Node *b1t_new = bin(&u, OP_MUL, b1t, k(&u, o->beta1));
    Node *b2t_new = bin(&u, OP_MUL, b2t, k(&u, o->beta2));
    add_update(g, b1t, b1t_new);
    add_update(g, b2t, b2t_new);
    step_size = bin(&u, OP_DIV, k(&u, o->lr), bin(&u, OP_SUB, k(&u, 1), b1t_new));
    bc2_sqrt = node_unary(g, OP_SQRT, bin(&u, OP_SUB, k(&u, 1), b2t_new), 0, u.loc);
  }
  for (int i = 0; i < g->params.len; i++) {
    Node *p = g->params.items[i], *grad = g->grads[i];
    u.loc = p->loc;
    if (o->kind == OPTIM_SGD) {
      sgd_step(&u, o, p, grad);
      continue;
    }
    Node *m = state(&u, arena_printf(g->arena, "%s.adam_m", p->name), p->shape, 0);
    Node *v = state(&u, arena_printf(g->arena, "%s.adam_v", p->name), p->shape, 0);
    Node *m_new = bin(&u, OP_ADD, bin(&u, OP_MUL, k(&u, o->beta1), m),
                      bin(&u, OP_MUL, k(&u, 1 - o->beta1), grad));
    Node *v_new = bin(&u, OP_ADD, bin(&u, OP_MUL, k(&u, o->beta2), v),
                      bin(&u, OP_MUL, k(&u, 1 - o->beta2), bin(&u, OP_MUL, grad, grad)));
    Node *denom = bin(&u, OP_ADD, bin(&u, OP_DIV, node_unary(g, OP_SQRT, v_new, 0, u.loc), bc2_sqrt),
                      k(&u, o->eps));
    Node *p_new = bin(&u, OP_SUB, p, bin(&u, OP_MUL, step_size, bin(&u, OP_DIV, m_new, denom)));
    add_update(g, m, m_new);
    add_update(g, v, v_new);
    add_update(g, p, p_new);
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
  for (int i = 0; i < L->nparams; i++) {
    L->grad_off[i] = off = align_up(off, align);
    off += shape_numel(&((Node *)g->params.items[i])->shape);
  }
  for (int j = 0; j < L->nstates; j++) {
    L->state_off[j] = off = align_up(off, align);
    off += shape_numel(&((Node *)g->states.items[j])->shape);
  }
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

void layout_init_states(const Graph *g, const Layout *L, void *buf) {
  for (int j = 0; j < L->nstates; j++) {
    const Node *s = g->states.items[j];
    int64_t n = shape_numel(&s->shape);
    for (int64_t e = 0; e < n; e++) {
      if (L->elem_size == 8)
        ((double *)buf)[L->state_off[j] + e] = s->attr.value;
      else
        ((float *)buf)[L->state_off[j] + e] = (float)s->attr.value;
    }
  }
}
