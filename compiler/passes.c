/*
 * passes.c - stabilize, fold, cse, dce (see passes.h).
 *
 * All passes share one mechanism, rebuild(): walk the old graph in order,
 * let the pass choose each node's replacement (given the replacements of
 * its operands), and carry the leaves, outputs, gradients and updates over
 * through the map.
 */
#include "passes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "interp.h"

typedef struct Rebuild Rebuild;
/* Return the new node standing for old node n (whose operands are already
 * mapped in r->map), or NULL to copy it as it is. */
typedef Node *(*RewriteFn)(Rebuild *r, Node *n, Node *a, Node *b);

struct Rebuild {
  Graph *old, *g;
  Node **map; /* old id -> new node */
  bool *keep; /* dce: old ids to keep (NULL: all) */
  Diag *diag;
  int changes;
  /* cse: open-addressing table of new nodes */
  Node **table;
  int table_size;
};

/* new node m stands for old node n: the same role and, in the backward
 * graph, the same provenance (--emit grad's "d X via OP") */
static Node *stands_for(Rebuild *r, Node *m, const Node *n) {
  m->role = n->role;
  m->via = n->via;
  m->grad_of = n->grad_of ? r->map[n->grad_of->id] : NULL;
  return m;
}

static Node *copy_node(Rebuild *r, Node *n, Node *a, Node *b) {
  Node *m = stands_for(r, node_make(r->g, n->op, a, b, &n->attr, n->loc), n);
  m->name = n->name;
  m->param_index = n->param_index;
  m->state_index = n->state_index;
  if (n->op == OP_PARAM) ptrvec_push_arena(r->g->arena, &r->g->params, m);
  if (n->op == OP_INPUT) ptrvec_push_arena(r->g->arena, &r->g->inputs, m);
  if (n->op == OP_TARGET) ptrvec_push_arena(r->g->arena, &r->g->targets, m);
  if (n->op == OP_STATE) ptrvec_push_arena(r->g->arena, &r->g->states, m);
  return m;
}

static Graph *pass_dce(Graph *g);

static Graph *rebuild(Graph *old, RewriteFn fn, Rebuild *r) {
  Graph *g = graph_new(old->arena, old->dtype);
  g->model_name = old->model_name;
  g->source_name = old->source_name;
  g->max_batch = old->max_batch;
  g->batch_is_shard = old->batch_is_shard;
  g->part_rows = old->part_rows;
  g->stat_layer = old->stat_layer;
  g->stat_values = old->stat_values;
  g->stat_loc = old->stat_loc;
  g->output_is_logit = old->output_is_logit;
  g->optimizer = old->optimizer;
  r->old = old;
  r->g = g;
  r->map = nnc_xcalloc((size_t)old->len, sizeof(Node *));
  for (int i = 0; i < old->len; i++) {
    Node *n = old->nodes[i];
    if (r->keep && !r->keep[i]) continue;
    Node *a = n->in[0] ? r->map[n->in[0]->id] : NULL;
    Node *b = n->in[1] ? r->map[n->in[1]->id] : NULL;
    Node *m = fn ? fn(r, n, a, b) : NULL;
    if (!m) m = copy_node(r, n, a, b);
    else if (m->id >= 0 && !m->name && n->name && m->op != OP_CONST) m->name = n->name;
    r->map[i] = m;
  }
  /* a rewritten leaf list keeps the old order */
  g->output = old->output ? r->map[old->output->id] : NULL;
  g->loss = old->loss ? r->map[old->loss->id] : NULL;
  g->batch_loss = old->batch_loss ? r->map[old->batch_loss->id] : NULL;
  g->lr = old->lr ? r->map[old->lr->id] : NULL;
  if (old->grads) {
    g->grads = ARENA_ARRAY(g->arena, Node *, old->params.len + 1);
    for (int i = 0; i < old->params.len; i++) g->grads[i] = r->map[old->grads[i]->id];
    g->no_path = ARENA_ARRAY(g->arena, bool, old->params.len + 1);
    memcpy(g->no_path, old->no_path, sizeof(bool) * (size_t)old->params.len);
  }
  if (old->nupdates) {
    g->updates = ARENA_ARRAY(g->arena, Update, old->nupdates);
    g->nupdates = g->cap_updates = old->nupdates;
    for (int i = 0; i < old->nupdates; i++)
      g->updates[i] = (Update){r->map[old->updates[i].target->id], r->map[old->updates[i].value->id],
                               old->updates[i].from_batch};
  }
  free(r->map);
  r->map = NULL;
  return g;
}

/* ---- stabilize ---- */

static void stable_note(Rebuild *r, Node *n, const char *what) {
  r->changes++;
  if (r->diag) diag_note(r->diag, n->loc, "%s, for numerical stability", what);
}

static Node *mk(Rebuild *r, Op op, Node *a, Node *b, Node *like) {
  return stands_for(r, node_make(r->g, op, a, b, NULL, like->loc), like);
}

static Node *stabilize_fn(Rebuild *r, Node *n, Node *a, Node *b) {
  if (n->op == OP_LOG && a->op == OP_SIGMOID) {
    stable_note(r, n, "log(sigmoid(z)) is computed as -softplus(-z)");
    Node *z = a->in[0];
    return mk(r, OP_NEG, mk(r, OP_SOFTPLUS, mk(r, OP_NEG, z, NULL, n), NULL, n), NULL, n);
  }
  if (n->op == OP_LOG && a->op == OP_SOFTMAX) {
    stable_note(r, n, "log(softmax(z)) is computed as log_softmax(z)");
    return mk(r, OP_LOG_SOFTMAX, a->in[0], NULL, n);
  }
  if (n->op == OP_BCE && a->op == OP_SIGMOID) {
    stable_note(r, n, "bce(sigmoid(z), t) is computed from the logits z as bce_logits(z, t)");
    Node *z = a->in[0];
    return mk(r, OP_SUB, mk(r, OP_SOFTPLUS, z, NULL, n), mk(r, OP_MUL, z, b, n), n);
  }
  return NULL;
}

Graph *pass_stabilize(Graph *g, Diag *diag) {
  Rebuild r = {.diag = diag};
  Graph *out = rebuild(g, stabilize_fn, &r);
  graph_verify(out, "stabilize");
  return r.changes ? pass_dce(out) : out;
}

/* ---- fold ---- */

static bool is_const(const Node *n, double v) {
  return n && n->op == OP_CONST && (n->attr.value == v || (isnan(v) && isnan(n->attr.value)));
}

/* A constant, or a constant broadcast to a shape (a seed gradient). */
static bool is_const_like(const Node *n, double v) {
  return is_const(n, v) || (n && n->op == OP_BROADCAST && is_const(n->in[0], v));
}

/* Can `keep` stand for n? Same shape and batchedness. */
static Node *same(Rebuild *r, Node *n, Node *keep) {
  if (!shape_eq(&n->shape, &keep->shape) || n->batched != keep->batched) return NULL;
  r->changes++;
  return keep;
}

/* Is slice n exactly piece k of concat j (along its axis)? */
static bool is_piece(const Node *n, const Node *j, int k) {
  int ax = n->attr.axis;
  return j->op == OP_CONCAT && j->attr.axis == ax && shape_eq(&n->shape, &j->in[k]->shape) &&
         (int64_t)n->attr.value == (k ? j->in[0]->shape.dim[ax] : 0);
}

/* slice n of a: a concat's piece itself; of the sum of two concats of the
 * same pieces, the sum of the pieces (the gradient of a value read in
 * slices, batch_norm's channel_moments, is such a sum, which its rule
 * slices again). */
static Node *slice_of_join(Rebuild *r, Node *n, Node *a) {
  for (int k = 0; k < 2; k++)
    if (is_piece(n, a, k)) return same(r, n, a->in[k]);
  if (a->op != OP_ADD) return NULL;
  for (int k = 0; k < 2; k++) {
    if (!is_piece(n, a->in[0], k) || !is_piece(n, a->in[1], k)) continue;
    r->changes++;
    Node *x = stands_for(r, node_binary(r->g, OP_ADD, a->in[0]->in[k], a->in[1]->in[k], n->loc), n);
    return same(r, n, x) ? x : NULL;
  }
  return NULL;
}

static Node *fold_fn(Rebuild *r, Node *n, Node *a, Node *b) {
  const OpClass cls = op_info[n->op].cls;
  /* constants */
  if ((cls == OPC_UNARY && a->op == OP_CONST) ||
      (cls == OPC_BINARY && a->op == OP_CONST && b->op == OP_CONST)) {
    r->changes++;
    double v = op_scalar(n->op, a->attr.value, b ? b->attr.value : 0, n->attr.value);
    if (r->g->dtype == DT_F32) v = (double)(float)v;
    return node_const(r->g, v, n->loc);
  }
  if (n->op == OP_INV_BATCH && r->old->max_batch == 1 && !r->old->batch_is_shard) {
    r->changes++;
    return node_const(r->g, 1, n->loc);
  }
  Node *m;
  /* identities: only some ops have them, hence (int) and a default */
  switch ((int)n->op) {
  case OP_MUL:
    if (is_const_like(b, 1) && (m = same(r, n, a))) return m;
    if (is_const_like(a, 1) && (m = same(r, n, b))) return m;
    break;
  case OP_ADD:
    if (is_const_like(b, 0) && (m = same(r, n, a))) return m;
    if (is_const_like(a, 0) && (m = same(r, n, b))) return m;
    break;
  case OP_SUB:
    if (is_const(b, 0) && (m = same(r, n, a))) return m;
    if (is_const(a, 0)) {
      r->changes++;
      Node *neg = stands_for(r, node_unary(r->g, OP_NEG, b, 0, n->loc), n);
      return same(r, n, neg) ? neg : NULL;
    }
    break;
  case OP_DIV:
    if (is_const(b, 1) && (m = same(r, n, a))) return m;
    break;
  case OP_NEG:
    if (a->op == OP_NEG && (m = same(r, n, a->in[0]))) return m;
    break;
  case OP_POW:
    if (n->attr.value == 1 && (m = same(r, n, a))) return m;
    break;
  case OP_RESHAPE: case OP_BROADCAST: case OP_SUM_TO:
    if ((m = same(r, n, a))) return m;
    if (n->op == OP_RESHAPE && a->op == OP_RESHAPE) {
      r->changes++;
      return stands_for(r, node_shaped(r->g, OP_RESHAPE, a->in[0], n->shape, n->loc), n);
    }
    break;
  case OP_TRANSPOSE:
    if (a->op == OP_TRANSPOSE && (m = same(r, n, a->in[0]))) return m;
    break;
  case OP_SLICE: /* all of it, a piece a concat joined, or a piece of a sum of such joins */
    if ((m = same(r, n, a))) return m;
    if ((m = slice_of_join(r, n, a))) return m;
    break;
  default:
    break;
  }
  return NULL;
}

/* ---- cse ---- */

static uint64_t node_hash(const Node *n) {
  uint64_t h = (uint64_t)n->op * 0x9E3779B97F4A7C15ull;
  for (int k = 0; k < 2; k++) h = (h ^ (uint64_t)(n->in[k] ? n->in[k]->id + 1 : 0)) * 0x100000001B3ull;
  uint64_t bits;
  memcpy(&bits, &n->attr.value, sizeof bits);
  h = (h ^ bits) * 0x100000001B3ull;
  h = (h ^ (uint64_t)(n->attr.axis + 7)) * 0x100000001B3ull;
  for (int i = 0; i < n->attr.shape.rank; i++) h = (h ^ (uint64_t)n->attr.shape.dim[i]) * 0x100000001B3ull;
  return h ^ (h >> 29);
}

static bool same_node(const Node *x, const Node *y) {
  if (x->op != y->op || x->in[0] != y->in[0] || x->in[1] != y->in[1]) return false;
  if (memcmp(&x->attr.value, &y->attr.value, sizeof(double)) != 0) return false;
  if (x->attr.axis != y->attr.axis) return false;
  if (op_info[x->op].attr == A_WINDOW) {
    const Window *a = &x->attr.win, *b = &y->attr.win;
    if (a->rank != b->rank) return false;
    for (int d = 0; d < 2; d++)
      if (a->in[d] != b->in[d] || a->k[d] != b->k[d] || a->s[d] != b->s[d] || a->pad[d] != b->pad[d] ||
          a->pad_end[d] != b->pad_end[d])
        return false;
  }
  return (op_info[x->op].attr != A_SHAPE && op_info[x->op].attr != A_RANGE) ||
         shape_eq(&x->attr.shape, &y->attr.shape);
}

static Node *cse_fn(Rebuild *r, Node *n, Node *a, Node *b) {
  /* leaves other than constants are distinct by identity */
  if (op_info[n->op].cls == OPC_LEAF && n->op != OP_CONST && n->op != OP_INV_BATCH) return NULL;
  Node probe = *n;
  probe.in[0] = a;
  probe.in[1] = b;
  uint64_t h = node_hash(&probe);
  int mask = r->table_size - 1;
  for (int i = (int)(h & (uint64_t)mask);; i = (i + 1) & mask) {
    Node *m = r->table[i];
    if (!m) break;
    if (same_node(m, &probe)) {
      r->changes++;
      return m;
    }
  }
  Node *m = copy_node(r, n, a, b);
  for (int i = (int)(h & (uint64_t)mask);; i = (i + 1) & mask)
    if (!r->table[i]) {
      r->table[i] = m;
      break;
    }
  return m;
}

Graph *pass_cse(Graph *g) {
  Rebuild r = {0};
  r.table_size = 64;
  while (r.table_size < g->len * 2) r.table_size *= 2;
  r.table = nnc_xcalloc((size_t)r.table_size, sizeof(Node *));
  Graph *out = rebuild(g, cse_fn, &r);
  free(r.table);
  graph_verify(out, "cse");
  return out;
}

/* ---- dce ---- */

static Graph *pass_dce(Graph *g) {
  bool *live = nnc_xcalloc((size_t)g->len, sizeof(bool));
  for (int i = 0; i < g->len; i++) {
    Op op = g->nodes[i]->op;
    live[i] = op == OP_PARAM || op == OP_INPUT || op == OP_TARGET || op == OP_STATE;
  }
  if (g->output) live[g->output->id] = true;
  if (g->loss) live[g->loss->id] = true;
  if (g->batch_loss) live[g->batch_loss->id] = true;
  if (g->grads)
    for (int i = 0; i < g->params.len; i++) live[g->grads[i]->id] = true;
  for (int i = 0; i < g->nupdates; i++) live[g->updates[i].value->id] = true;
  for (int i = g->len - 1; i >= 0; i--) {
    if (!live[i]) continue;
    Node *n = g->nodes[i];
    for (int k = 0; k < op_info[n->op].nin; k++) live[n->in[k]->id] = true;
  }
  /* provenance may point at dead forward nodes: keep those pointers only
     when the node survives (copy_node maps through r->map, which is NULL
     for removed nodes) */
  Rebuild r = {.keep = live};
  Graph *out = rebuild(g, NULL, &r);
  free(live);
  graph_verify(out, "dce");
  return out;
}

Graph *optimize_graph(Graph *g) {
  for (int round = 0; round < 4; round++) {
    Rebuild probe = {0};
    Graph *f = rebuild(g, fold_fn, &probe);
    graph_verify(f, "fold");
    int before = f->len;
    Graph *c = pass_cse(f);
    Graph *d = pass_dce(c);
    bool changed = probe.changes > 0 || c->len != before || d->len != c->len;
    g = d;
    if (!changed) break;
  }
  return g;
}
