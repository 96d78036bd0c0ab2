/*
 * ir.c - the op table, the shape rules, node construction, the text and
 * Graphviz dumps and the verifier.
 */
#include "ir.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const OpInfo op_info[OP_COUNT] = {
#define OP(e, name, nin, cls, attr, call) [OP_##e] = {name, nin, cls, attr},
#include "ops.def"
#undef OP
};

/* Each row against its class: the operands the shape rule reads, and the
 * attribute it needs (reductions an axis, views a shape) or allows. */
#define CLASS_NIN(cls) \
  ((cls) == OPC_LEAF ? 0 \
   : (cls) == OPC_BINARY || (cls) == OPC_MATMUL || (cls) == OPC_OUTER || (cls) == OPC_CONCAT || \
     (cls) == OPC_DROPOUT || (cls) == OPC_MODE || (cls) == OPC_GATHER || (cls) == OPC_SCATTER || \
     (cls) == OPC_WINDOW2 ? 2 : 1)
#define CLASS_ATTR_OK(cls, attr) \
  ((cls) == OPC_REDUCE || (cls) == OPC_LASTREDUCE || (cls) == OPC_CONCAT ? (attr) == A_AXIS \
   : (cls) == OPC_SLICE ? (attr) == A_RANGE \
   : (cls) == OPC_DROPOUT ? (attr) == A_MASK \
   : (cls) == OPC_BROADCAST || (cls) == OPC_RESHAPE || (cls) == OPC_SUM_TO || \
       (cls) == OPC_SCATTER ? (attr) == A_SHAPE \
   : (cls) == OPC_LEAF || (cls) == OPC_UNARY ? (attr) == A_NONE || (attr) == A_VALUE \
   : (cls) == OPC_WINDOW || (cls) == OPC_WINDOW2 ? (attr) == A_WINDOW \
   : (attr) == A_NONE)
#define OP(e, name, nin, cls, attr, call) \
  _Static_assert((nin) <= MAX_OPERANDS, "ops.def: " name " has more operands than Node.in holds"); \
  _Static_assert((nin) == CLASS_NIN(cls), "ops.def: " name " has the wrong operand count for its class"); \
  _Static_assert(CLASS_ATTR_OK(cls, attr), "ops.def: " name " has an attribute its class does not take");
#include "ops.def"
#undef OP

const char *dtype_name(DType dt) { return dt == DT_F64 ? "f64" : "f32"; }

/* ---- shapes ---- */

Shape shape0(void) { return (Shape){0, {0}}; }
Shape shape1(int64_t a) { return (Shape){1, {a}}; }
Shape shape2(int64_t a, int64_t b) { return (Shape){2, {a, b}}; }

int64_t shape_numel(const Shape *s) {
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) n *= s->dim[i];
  return n;
}

bool shape_eq(const Shape *a, const Shape *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i]) return false;
  return true;
}

char *shape_str(const Shape *s, bool batched, char *buf, size_t n) {
  size_t k = (size_t)snprintf(buf, n, "[%s", batched ? "B" : "");
  for (int i = 0; i < s->rank && k < n; i++)
    k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64,
                          (i || batched) ? "," : "", s->dim[i]);
  if (k < n) snprintf(buf + k, n - k, "]");
  return buf;
}

/* numpy broadcasting: align right, each pair equal or one of them 1. */
/* Returns 0, or -1 - i for the first axis i (of the broadcast shape) whose
 * sizes differ with neither of them 1. */
static int broadcast_shapes(const Shape *a, const Shape *b, Shape *out) {
  int rank = a->rank > b->rank ? a->rank : b->rank;
  out->rank = rank;
  for (int i = 0; i < rank; i++) {
    int ia = a->rank - rank + i, ib = b->rank - rank + i;
    int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
    if (da != db && da != 1 && db != 1) return -1 - i;
    out->dim[i] = da == 1 ? db : da;
  }
  return 0;
}

#define FAIL(...) \
  do { \
    snprintf(msg, msglen, __VA_ARGS__); \
    return -1; \
  } while (0)

int64_t window_out(const Window *w, int d) {
  return (w->in[d] + w->pad[d] + w->pad_end[d] - w->k[d]) / w->s[d] + 1;
}

Shape window_shape(const Window *w, int64_t channels, bool output) {
  Shape s = {w->rank + 1, {channels}};
  for (int d = 2 - w->rank, j = 1; d < 2; d++, j++) s.dim[j] = output ? window_out(w, d) : w->in[d];
  return s;
}

/* Does s hold `channels` (any, when < 0) channels of the window's input
 * (or output)? */
static bool window_fits(const Window *w, const Shape *s, int64_t channels, bool output) {
  Shape want = window_shape(w, channels < 0 ? s->dim[0] : channels, output);
  return s->rank >= 1 && shape_eq(s, &want);
}

/* The shape rules of the window ops: operands against the geometry (the
 * checker has reported what a user can get wrong; these catch nnc's own
 * mistakes, in words a bug report can use). */
static int window_shape_rule(Op op, const Shape *in[], const Window *w, Shape *out, char *msg, size_t msglen) {
  char s0[64], s1[64];
  int64_t taps = w->k[0] * w->k[1];
  if (w->rank < 1 || w->rank > 2 || taps < 1 || w->s[0] < 1 || w->s[1] < 1 || window_out(w, 0) < 1 ||
      window_out(w, 1) < 1)
    FAIL("%s: an empty window", op_info[op].name);
  shape_str(in[0], false, s0, sizeof s0);
  if (in[1]) shape_str(in[1], false, s1, sizeof s1);
  switch ((int)op) {
  case OP_CONV: /* x [C,H,W], w [K, C*taps] */
    if (!window_fits(w, in[0], -1, false) || in[1]->rank != 2 || in[1]->dim[1] != in[0]->dim[0] * taps)
      FAIL("conv of %s with weights %s", s0, s1);
    *out = window_shape(w, in[1]->dim[0], true);
    return 0;
  case OP_CONV_DX: /* dy [K,H',W'], w [K, C*taps] */
    if (in[1]->rank != 2 || in[1]->dim[1] % taps || !window_fits(w, in[0], in[1]->dim[0], true))
      FAIL("conv_dx of %s with weights %s", s0, s1);
    *out = window_shape(w, in[1]->dim[1] / taps, false);
    return 0;
  case OP_CONV_DW: /* x [C,H,W], dy [K,H',W'] */
    if (!window_fits(w, in[0], -1, false) || !window_fits(w, in[1], -1, true))
      FAIL("conv_dw of %s and %s", s0, s1);
    *out = shape2(in[1]->dim[0], in[0]->dim[0] * taps);
    return 0;
  case OP_MAX_POOL: case OP_AVG_POOL:
    if (!window_fits(w, in[0], -1, false)) FAIL("%s of %s", op_info[op].name, s0);
    *out = window_shape(w, in[0]->dim[0], true);
    return 0;
  case OP_MAX_POOL_DX: /* x, dy */
    if (!window_fits(w, in[0], -1, false) || !window_fits(w, in[1], in[0]->dim[0], true))
      FAIL("max_pool_dx of %s and %s", s0, s1);
    *out = *in[0];
    return 0;
  case OP_AVG_POOL_DX:
    if (!window_fits(w, in[0], -1, true)) FAIL("avg_pool_dx of %s", s0);
    *out = window_shape(w, in[0]->dim[0], false);
    return 0;
  default:
    break;
  }
  FAIL("%s is not a window op", op_info[op].name);
}

int op_infer_shape(Op op, const Shape *in[], const OpAttr *attr, Shape *out,
                   char *msg, size_t msglen) {
  char s0[64], s1[64];
  const OpInfo *info = &op_info[op];
  switch (info->cls) {
  case OPC_LEAF:
    *out = attr->shape;
    return 0;
  case OPC_UNARY:
    *out = *in[0];
    return 0;
  case OPC_BINARY: {
    int bad = broadcast_shapes(in[0], in[1], out);
    if (bad == 0) return 0;
    /* the axis as both shapes count it when their ranks agree, else from the end */
    int axis = -1 - bad, from_end = axis - out->rank;
    int64_t da = in[0]->dim[in[0]->rank + from_end], db = in[1]->dim[in[1]->rank + from_end];
    char where[32];
    if (in[0]->rank == in[1]->rank)
      snprintf(where, sizeof where, "axis %d", axis);
    else
      snprintf(where, sizeof where, "axis %d (from the end)", from_end);
    FAIL("shapes %s and %s do not broadcast: along %s they have %" PRId64 " and %" PRId64
         " (sizes must be equal, or one of them 1)",
         shape_str(in[0], false, s0, sizeof s0), shape_str(in[1], false, s1, sizeof s1), where, da, db);
  }
  case OPC_REDUCE:
    if (attr->axis == AXIS_ALL) {
      *out = shape0();
      return 0;
    }
    if (attr->axis < 0 || attr->axis >= in[0]->rank)
      FAIL("axis %d is out of range for a tensor of shape %s", attr->axis,
           shape_str(in[0], false, s0, sizeof s0));
    out->rank = in[0]->rank - 1;
    for (int i = 0, j = 0; i < in[0]->rank; i++)
      if (i != attr->axis) out->dim[j++] = in[0]->dim[i];
    return 0;
  case OPC_LASTREDUCE:
    if (in[0]->rank < 1)
      FAIL("%s needs a tensor with at least one axis, got a scalar",
           info->name);
    *out = *in[0];
    out->rank--;
    return 0;
  case OPC_LASTAXIS:
    if (in[0]->rank < 1)
      FAIL("%s needs a tensor with at least one axis, got a scalar",
           info->name);
    *out = *in[0];
    return 0;
  case OPC_MATMUL: {
    const Shape *a = in[0], *b = in[1];
    shape_str(a, false, s0, sizeof s0);
    shape_str(b, false, s1, sizeof s1);
    if (a->rank < 1 || a->rank > 2 || b->rank < 1 || b->rank > 2)
      FAIL("@ takes vectors and matrices, got %s @ %s", s0, s1);
    int64_t ka = a->dim[a->rank - 1], kb = b->dim[0];
    if (ka != kb)
      FAIL("inner dimensions differ in %s @ %s (%" PRId64 " vs %" PRId64 ")",
           s0, s1, ka, kb);
    out->rank = 0;
    if (a->rank == 2) out->dim[out->rank++] = a->dim[0];
    if (b->rank == 2) out->dim[out->rank++] = b->dim[1];
    return 0;
  }
  case OPC_OUTER:
    if (in[0]->rank != 1 || in[1]->rank != 1)
      FAIL("outer takes two vectors");
    *out = shape2(in[0]->dim[0], in[1]->dim[0]);
    return 0;
  case OPC_TRANSPOSE:
    if (in[0]->rank != 2)
      FAIL("transpose needs a matrix (rank 2), got %s",
           shape_str(in[0], false, s0, sizeof s0));
    *out = shape2(in[0]->dim[1], in[0]->dim[0]);
    return 0;
  case OPC_BROADCAST: {
    Shape b;
    if (broadcast_shapes(in[0], &attr->shape, &b) != 0 ||
        !shape_eq(&b, &attr->shape))
      FAIL("cannot broadcast %s to %s", shape_str(in[0], false, s0, sizeof s0),
           shape_str(&attr->shape, false, s1, sizeof s1));
    *out = attr->shape;
    return 0;
  }
  case OPC_RESHAPE:
    if (shape_numel(in[0]) != shape_numel(&attr->shape))
      FAIL("cannot reshape %s to %s", shape_str(in[0], false, s0, sizeof s0),
           shape_str(&attr->shape, false, s1, sizeof s1));
    *out = attr->shape;
    return 0;
  case OPC_SUM_TO: {
    Shape b;
    if (broadcast_shapes(&attr->shape, in[0], &b) != 0 || !shape_eq(&b, in[0]))
      FAIL("cannot sum %s down to %s", shape_str(in[0], false, s0, sizeof s0),
           shape_str(&attr->shape, false, s1, sizeof s1));
    *out = attr->shape;
    return 0;
  }
  case OPC_CONCAT: {
    const Shape *a = in[0], *b = in[1];
    int ax = attr->axis;
    if (ax < 0 || ax >= a->rank)
      FAIL("axis %d is out of range for a tensor of shape %s", ax, shape_str(a, false, s0, sizeof s0));
    bool same = a->rank == b->rank;
    for (int d = 0; same && d < a->rank; d++) same = d == ax || a->dim[d] == b->dim[d];
    if (!same)
      FAIL("cannot join %s and %s along axis %d: every other axis must have the same size",
           shape_str(a, false, s0, sizeof s0), shape_str(b, false, s1, sizeof s1), ax);
    *out = *a;
    out->dim[ax] += b->dim[ax];
    return 0;
  }
  case OPC_SLICE: {
    const Shape *a = in[0];
    int ax = attr->axis;
    bool ok = ax >= 0 && ax < a->rank && attr->shape.rank == a->rank;
    for (int d = 0; ok && d < a->rank; d++)
      ok = d == ax ? attr->value >= 0 && attr->value + (double)attr->shape.dim[d] <= (double)a->dim[d]
                   : attr->shape.dim[d] == a->dim[d];
    if (!ok)
      FAIL("cannot take %s from index %g of axis %d of %s", shape_str(&attr->shape, false, s1, sizeof s1),
           attr->value, ax, shape_str(a, false, s0, sizeof s0));
    *out = attr->shape;
    return 0;
  }
  case OPC_DROPOUT:
    if (in[1]->rank != 0) FAIL("dropout's step must be a scalar");
    *out = *in[0];
    return 0;
  case OPC_MODE:
    if (!shape_eq(in[0], in[1]))
      FAIL("if_training needs two values of one shape, got %s and %s", shape_str(in[0], false, s0, sizeof s0),
           shape_str(in[1], false, s1, sizeof s1));
    *out = *in[0];
    return 0;
  case OPC_GATHER:
    if (in[0]->rank != 2)
      FAIL("%s needs a table of rank 2, got %s", info->name, shape_str(in[0], false, s0, sizeof s0));
    if (in[1]->rank + 1 > MAX_RANK)
      FAIL("%s: indices %s leave no room for the row axis (rank %d at most)", info->name,
           shape_str(in[1], false, s1, sizeof s1), MAX_RANK - 1);
    *out = *in[1];
    out->dim[out->rank++] = in[0]->dim[1];
    return 0;
  case OPC_SCATTER: {
    char s2[64];
    if (attr->shape.rank != 2 || in[0]->rank != in[1]->rank + 1 ||
        in[0]->dim[in[0]->rank - 1] != attr->shape.dim[1])
      FAIL("%s cannot add rows of %s at indices %s into %s", info->name,
           shape_str(in[0], false, s0, sizeof s0), shape_str(in[1], false, s1, sizeof s1),
           shape_str(&attr->shape, false, s2, sizeof s2));
    *out = attr->shape;
    return 0;
  }
  case OPC_BATCH:
    *out = *in[0];
    return 0;
  case OPC_MOMENTS:
    if (in[0]->rank < 1) FAIL("%s needs a value with a channel axis, got a scalar", info->name);
    *out = shape2(2, in[0]->dim[0]);
    return 0;
  case OPC_WINDOW: case OPC_WINDOW2:
    return window_shape_rule(op, in, &attr->win, out, msg, msglen);
  }
  FAIL("unknown op");
}

/* ---- dropout's masks ---- */

uint64_t dropout_hash(uint32_t key, uint64_t step, uint64_t elem) {
  uint64_t h = ((uint64_t)key << 32) ^ step;
  for (int round = 0; round < 2; round++) { /* splitmix64's finalizer, twice */
    h ^= round ? elem : 0;
    h += 0x9E3779B97F4A7C15ull;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    h ^= h >> 31;
  }
  return h;
}

bool dropout_keeps(uint32_t key, uint64_t step, uint64_t elem, double rate) {
  return (double)(dropout_hash(key, step, elem) >> 11) * 0x1p-53 >= rate;
}

/* ---- construction ---- */

Graph *graph_new(Arena *arena, DType dtype) {
  Graph *g = ARENA_NEW(arena, Graph);
  g->arena = arena;
  g->dtype = dtype;
  g->max_batch = 1;
  return g;
}

static bool op_batched(Op op, Node *a, Node *b) {
  switch (op_info[op].cls) {
  case OPC_LEAF:
    return op == OP_INPUT || op == OP_TARGET;
  case OPC_BATCH: case OPC_SCATTER: case OPC_MOMENTS:
    return false;
  case OPC_GATHER:
  case OPC_UNARY: case OPC_BINARY: case OPC_REDUCE: case OPC_LASTREDUCE:
  case OPC_LASTAXIS: case OPC_MATMUL: case OPC_OUTER: case OPC_TRANSPOSE: case OPC_BROADCAST:
  case OPC_RESHAPE: case OPC_SUM_TO: case OPC_CONCAT: case OPC_SLICE: case OPC_DROPOUT: case OPC_MODE: case OPC_WINDOW:
  case OPC_WINDOW2:
    break;
  }
  return (a && a->batched) || (b && b->batched);
}

static Node *append(Graph *g, Node *n) {
  if (g->len == g->cap) {
    int cap = g->cap ? g->cap * 2 : 64;
    Node **nodes = ARENA_ARRAY(g->arena, Node *, cap);
    if (g->len) memcpy(nodes, g->nodes, sizeof(Node *) * (size_t)g->len);
    g->nodes = nodes;
    g->cap = cap;
  }
  n->id = g->len;
  g->nodes[g->len++] = n;
  return n;
}

Node *node_make(Graph *g, Op op, Node *a, Node *b, const OpAttr *attr,
                Loc loc) {
  NNC_ASSERT(op_info[op].nin == (a != NULL) + (b != NULL));
  Node *n = ARENA_NEW(g->arena, Node);
  n->op = op;
  n->in[0] = a;
  n->in[1] = b;
  if (attr) n->attr = *attr;
  if (op_info[op].cls == OPC_LASTREDUCE) n->attr.axis = a->shape.rank - 1;
  n->loc = loc;
  n->param_index = -1;
  n->state_index = -1;
  const Shape *shapes[MAX_OPERANDS] = {a ? &a->shape : NULL, b ? &b->shape : NULL};
  char msg[256];
  if (op_infer_shape(op, shapes, &n->attr, &n->shape, msg, sizeof msg) != 0)
    nnc_die("building %s: %s", op_info[op].name, msg);
  n->batched = op_batched(op, a, b);
  return append(g, n);
}

void graph_add_update(Graph *g, Update u) {
  if (g->nupdates == g->cap_updates) {
    g->cap_updates = g->cap_updates ? 2 * g->cap_updates : 16;
    Update *ups = ARENA_ARRAY(g->arena, Update, g->cap_updates);
    if (g->nupdates) memcpy(ups, g->updates, sizeof(Update) * (size_t)g->nupdates);
    g->updates = ups;
  }
  g->updates[g->nupdates++] = u;
}

Node *node_leaf(Graph *g, Op op, Shape shape, const char *name, Loc loc) {
  OpAttr attr = {.shape = shape};
  Node *n = node_make(g, op, NULL, NULL, &attr, loc);
  n->name = name;
  return n;
}

Node *node_const(Graph *g, double value, Loc loc) {
  OpAttr attr = {.value = value, .shape = shape0()};
  return node_make(g, OP_CONST, NULL, NULL, &attr, loc);
}

Node *node_unary(Graph *g, Op op, Node *a, double value, Loc loc) {
  OpAttr attr = {.value = value};
  return node_make(g, op, a, NULL, &attr, loc);
}

Node *node_binary(Graph *g, Op op, Node *a, Node *b, Loc loc) {
  return node_make(g, op, a, b, NULL, loc);
}

Node *node_reduce(Graph *g, Op op, Node *a, int axis, Loc loc) {
  OpAttr attr = {.axis = axis};
  return node_make(g, op, a, NULL, &attr, loc);
}

Node *node_shaped(Graph *g, Op op, Node *a, Shape shape, Loc loc) {
  OpAttr attr = {.shape = shape};
  return node_make(g, op, a, NULL, &attr, loc);
}

/* ---- text dump ---- */

typedef struct Labels {
  char **text; /* per node id */
} Labels;

static Labels make_labels(const Graph *g, Arena *a);

/* The attribute as dumps show it ("0.01", "axis=1", "[4,1]"); false when
 * there is nothing to show (no attribute, or every axis). */
static bool attr_text(const Node *n, char *buf, size_t len) {
  switch (op_info[n->op].attr) {
  case A_NONE:
    return false;
  case A_VALUE:
    fmt_number(buf, len, n->attr.value);
    return true;
  case A_AXIS:
    if (n->attr.axis == AXIS_ALL) return false;
    snprintf(buf, len, "axis=%d", n->attr.axis);
    return true;
  case A_SHAPE:
    shape_str(&n->attr.shape, false, buf, len);
    return true;
  case A_MASK:
    snprintf(buf, len, "rate=%g, key=%d", n->attr.value, n->attr.axis);
    return true;
  case A_RANGE:
    snprintf(buf, len, "axis=%d, %g:%" PRId64, n->attr.axis, n->attr.value,
             (int64_t)n->attr.value + n->attr.shape.dim[n->attr.axis]);
    return true;
  case A_WINDOW: {
    /* "k=3x3 s=1x1 pad=1x1" (the end's padding too when it differs) */
    const Window *w = &n->attr.win;
    int d0 = 2 - w->rank;
    size_t k = 0;
    const char *key[3] = {"k", "s", "pad"};
    const int64_t *val[3] = {w->k, w->s, w->pad};
    for (int f = 0; f < 3 && k < len; f++) {
      k += (size_t)snprintf(buf + k, len - k, "%s%s=", f ? " " : "", key[f]);
      for (int d = d0; d < 2 && k < len; d++)
        k += (size_t)snprintf(buf + k, len - k, "%s%" PRId64, d > d0 ? "x" : "", val[f][d]);
    }
    if (w->pad_end[0] != w->pad[0] || w->pad_end[1] != w->pad[1])
      for (int d = d0; d < 2 && k < len; d++)
        k += (size_t)snprintf(buf + k, len - k, "%s%" PRId64, d > d0 ? "x" : " pad_end=", w->pad_end[d]);
    return true;
  }
  }
  return false;
}

/* Constants print inline as numbers; named nodes as %name; the others get
 * numbers in graph order, so dumps are stable. */
char **graph_labels(const Graph *g, Arena *a) { return make_labels(g, a).text; }

static Labels make_labels(const Graph *g, Arena *a) {
  Labels L = {ARENA_ARRAY(a, char *, g->len + 1)};
  int next = 0;
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (n->op == OP_CONST) {
      char num[40];
      fmt_number(num, sizeof num, n->attr.value);
      L.text[i] = arena_strdup(a, num);
    } else if (n->name) {
      L.text[i] = arena_printf(a, "%%%s", n->name);
    } else {
      L.text[i] = arena_printf(a, "%%%d", next++);
    }
  }
  return L;
}

static void node_rhs(const Graph *g, const Node *n, const Labels *L,
                     StrBuf *sb) {
  sb_puts(sb, op_info[n->op].name);
  for (int i = 0; i < op_info[n->op].nin; i++)
    sb_printf(sb, "%s%s", i ? ", " : " ", L->text[n->in[i]->id]);
  char text[64];
  if (attr_text(n, text, sizeof text)) sb_printf(sb, ", %s", text);
}

static void node_comment(const Graph *g, const Node *n, const Labels *L,
                         StrBuf *sb) {
  const char *file = g->source_name ? g->source_name : "?";
  if (n->role == ROLE_BACKWARD && n->via.set) {
    if (n->grad_of)
      sb_printf(sb, "; d %s via %s, %s:%d",
                n->grad_of->name ? n->grad_of->name : L->text[n->grad_of->id],
                op_info[n->via.op].name, file, n->via.loc.line);
    else
      sb_printf(sb, "; via %s, %s:%d", op_info[n->via.op].name, file,
                n->via.loc.line);
  } else if (n->loc.line > 0) {
    sb_printf(sb, "; %s:%d", file, n->loc.line);
  }
}

static bool dump_includes(const Node *n, DumpKind kind) {
  if (n->op == OP_CONST) return false;
  if (kind == DUMP_FORWARD) return n->role == ROLE_FORWARD;
  if (kind == DUMP_GRAD) return n->role != ROLE_UPDATE;
  return true;
}

void graph_dump(const Graph *g, DumpKind kind, StrBuf *out) {
  Arena labels;
  arena_init(&labels);
  Labels L = make_labels(g, &labels);
  /* first pass: the widths of the name and op columns */
  int wl = 0, wr = 0;
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (!dump_includes(n, kind)) continue;
    StrBuf rhs = {0};
    node_rhs(g, n, &L, &rhs);
    int l = (int)strlen(L.text[i]), r = (int)rhs.len;
    if (l > wl) wl = l;
    if (r > wr && r <= 48) wr = r;
    sb_free(&rhs);
  }
  sb_printf(out, "; model %s, %s, %s\n", g->model_name ? g->model_name : "?",
            dtype_name(g->dtype),
            kind == DUMP_FORWARD ? "forward graph"
            : kind == DUMP_GRAD  ? "forward and backward graph"
                                 : "optimized graph");
  Role role = ROLE_FORWARD;
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (!dump_includes(n, kind)) continue;
    if (n->role != role) {
      role = n->role;
      sb_printf(out, "\n; %s\n", role == ROLE_BACKWARD ? "backward" : "update");
    }
    size_t start = out->len;
    sb_puts(out, L.text[i]);
    sb_pad_to(out, start, (size_t)wl);
    sb_puts(out, " = ");
    size_t rstart = out->len;
    node_rhs(g, n, &L, out);
    sb_pad_to(out, rstart, (size_t)wr);
    char s[64];
    sb_printf(out, "  %s%s", dtype_name(g->dtype),
              shape_str(&n->shape, n->batched, s, sizeof s));
    sb_pad_to(out, start, (size_t)(wl + 3 + wr + 2 + 14));
    sb_puts(out, "  ");
    node_comment(g, n, &L, out);
    /* no trailing spaces when there is no comment */
    while (out->len > start && out->data[out->len - 1] == ' ')
      out->data[--out->len] = 0;
    sb_putc(out, '\n');
  }
  sb_putc(out, '\n');
  if (g->output) sb_printf(out, "; output %s\n", L.text[g->output->id]);
  if (g->loss) sb_printf(out, "; loss %s\n", L.text[g->loss->id]);
  if (g->batch_loss)
    sb_printf(out, "; batch loss %s\n", L.text[g->batch_loss->id]);
  if (kind != DUMP_FORWARD && g->grads)
    for (int i = 0; i < g->params.len; i++) {
      const Node *p = g->params.items[i];
      sb_printf(out, "; gradient of %s: %s\n", p->name,
                L.text[g->grads[i]->id]);
    }
  if (kind == DUMP_ALL)
    for (int i = 0; i < g->nupdates; i++)
      sb_printf(out, "; update %s <- %s\n", L.text[g->updates[i].target->id],
                L.text[g->updates[i].value->id]);
  arena_free(&labels);
}

/* ---- Graphviz ---- */

/* s with " and \ escaped, for a quoted dot string. */
static void dot_puts(StrBuf *out, const char *s) {
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') sb_putc(out, '\\');
    sb_putc(out, *s);
  }
}

/* The op and what the picture does not show as an edge: constant operands,
 * the value, axis and shape attributes ("pow 2", "broadcast [1]"). */
static void dot_op(const Node *n, StrBuf *out) {
  char num[40], s[64];
  sb_puts(out, op_info[n->op].name);
  const char *sep = " ";
  for (int i = 0; i < op_info[n->op].nin; i++)
    if (n->in[i]->op == OP_CONST) {
      fmt_number(num, sizeof num, n->in[i]->attr.value);
      sb_printf(out, "%s%s", sep, num);
      sep = ", ";
    }
  if (attr_text(n, s, sizeof s)) sb_printf(out, "%s%s", sep, s);
}

/* One node statement: name, op, and for backward nodes the rule that made
 * it ("d linear1.W via matmul"). */
static void dot_node(const Graph *g, const Node *n, const Labels *L, bool is_grad, const char *indent,
                     StrBuf *out) {
  const char *style;
  if (n->op == OP_INPUT || n->op == OP_TARGET)
    style = "shape=invhouse style=filled fillcolor=\"#fde9a9\" color=\"#b08c1a\"";
  else if (n->op == OP_PARAM)
    style = "shape=box style=\"rounded,filled\" fillcolor=\"#cfe2f3\" color=\"#3d6fa5\"";
  else if (n->op == OP_STATE)
    style = "shape=box style=\"rounded,filled\" fillcolor=\"#e3e3e3\" color=\"#777777\"";
  else if (n->role == ROLE_BACKWARD)
    style = "shape=box style=filled fillcolor=\"#f6d5d1\" color=\"#b03a2e\"";
  else if (n->role == ROLE_UPDATE)
    style = "shape=box style=filled fillcolor=\"#d9ead3\" color=\"#38761d\"";
  else
    style = "shape=ellipse style=filled fillcolor=\"#ffffff\" color=\"#444444\"";
  sb_printf(out, "%sn%d [label=\"", indent, n->id);
  dot_puts(out, L->text[n->id]);
  sb_puts(out, "\\n");
  StrBuf op = {0};
  dot_op(n, &op);
  dot_puts(out, op.data);
  sb_free(&op);
  if (op_info[n->op].cls == OPC_LEAF) {
    char s[64];
    sb_printf(out, " %s", shape_str(&n->shape, n->batched, s, sizeof s));
  }
  if (n->role == ROLE_BACKWARD && n->via.set) {
    sb_puts(out, "\\n");
    if (n->grad_of) {
      sb_puts(out, "d ");
      dot_puts(out, n->grad_of->name ? n->grad_of->name : L->text[n->grad_of->id]);
      sb_puts(out, " ");
    }
    sb_printf(out, "via %s", op_info[n->via.op].name);
  }
  const char *role = n == g->batch_loss ? "batch loss"
                     : n == g->loss     ? "loss"
                     : n == g->output   ? "output"
                     : is_grad          ? "gradient"
                                        : NULL;
  if (role) sb_printf(out, "\\n(%s)", role);
  sb_printf(out, "\" %s%s];\n", style, role ? " penwidth=2 peripheries=2" : "");
}

/* Graphviz of the graph: leaves (inputs and targets yellow, parameters
 * blue), the forward ops as white ellipses in one cluster, the backward ops
 * as red boxes in another, each edge labelled with the shape its producer
 * hands over ([B,4] per row of a batch, [4,4] per batch). Edges from
 * forward values into the backward graph are dashed. Constants are not
 * nodes: they appear in their users' labels. */
void graph_dot(const Graph *g, StrBuf *out) {
  Arena labels;
  arena_init(&labels);
  Labels L = make_labels(g, &labels);
  bool *is_grad = nnc_xcalloc((size_t)g->len + 1, 1);
  if (g->grads)
    for (int i = 0; i < g->params.len; i++) is_grad[g->grads[i]->id] = true;
  sb_puts(out, "digraph \"");
  dot_puts(out, g->model_name ? g->model_name : "nnc");
  sb_puts(out, "\" {\n");
  sb_puts(out, "  graph [rankdir=TB nodesep=0.3 ranksep=0.35 fontname=\"Helvetica\" fontsize=12 labelloc=t label=\"model ");
  dot_puts(out, g->model_name ? g->model_name : "?");
  if (g->source_name) {
    sb_puts(out, " (");
    dot_puts(out, g->source_name);
    sb_puts(out, ")");
  }
  sb_printf(out, ", %s: forward (white ellipses) and backward (red boxes, each with its rule); "
                 "edges carry the producer's shape, B = rows of the batch\"];\n",
            dtype_name(g->dtype));
  sb_puts(out, "  node [fontname=\"Helvetica\" fontsize=10 margin=\"0.08,0.03\"];\n");
  sb_puts(out, "  edge [fontname=\"Helvetica\" fontsize=9 color=\"#555555\" fontcolor=\"#333333\" arrowsize=0.6];\n");
  /* leaves first, then one cluster per role */
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (n->op != OP_CONST && op_info[n->op].cls == OPC_LEAF && n->op != OP_INV_BATCH)
      dot_node(g, n, &L, is_grad[i], "  ", out);
  }
  static const char *const cluster[] = {"forward", "backward", "update"};
  static const char *const cluster_style[] = {
      "color=\"#999999\" style=dashed", "color=\"#b03a2e\" style=\"dashed,filled\" fillcolor=\"#fdf5f4\"",
      "color=\"#38761d\" style=dashed"};
  for (int role = ROLE_FORWARD; role <= ROLE_UPDATE; role++) {
    bool any = false;
    for (int i = 0; i < g->len; i++) {
      const Node *n = g->nodes[i];
      if (n->op == OP_CONST || (int)n->role != role ||
          (op_info[n->op].cls == OPC_LEAF && n->op != OP_INV_BATCH))
        continue;
      if (!any) sb_printf(out, "  subgraph cluster_%s {\n    label=\"%s\" %s;\n", cluster[role], cluster[role],
                          cluster_style[role]);
      any = true;
      dot_node(g, n, &L, is_grad[i], "    ", out);
    }
    if (any) sb_puts(out, "  }\n");
  }
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (n->op == OP_CONST) continue;
    for (int k = 0; k < op_info[n->op].nin; k++) {
      const Node *a = n->in[k];
      if (a->op == OP_CONST) continue;
      char s[64];
      shape_str(&a->shape, a->batched, s, sizeof s);
      const char *style = "";
      if (n->role == ROLE_BACKWARD && a->role == ROLE_FORWARD && op_info[a->op].cls != OPC_LEAF)
        style = " style=dashed color=\"#b03a2e\"";
      else if (n->role == ROLE_BACKWARD)
        style = " color=\"#b03a2e\"";
      else if (n->role == ROLE_UPDATE)
        style = " color=\"#38761d\"";
      sb_printf(out, "  n%d -> n%d [label=\"%s\"%s];\n", a->id, i, s, style);
    }
  }
  sb_puts(out, "}\n");
  free(is_grad);
  arena_free(&labels);
}

/* ---- verifier ---- */

void graph_verify(const Graph *g, const char *after_pass) {
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    const char *name = op_info[n->op].name;
    if (n->id != i) nnc_die("after %s: node %d has id %d", after_pass, i, n->id);
    int nin = op_info[n->op].nin;
    for (int k = 0; k < MAX_OPERANDS; k++) {
      if ((k < nin) != (n->in[k] != NULL))
        nnc_die("after %s: node %d (%s) has the wrong operand count",
                after_pass, i, name);
      if (k < nin && (n->in[k]->id >= i || g->nodes[n->in[k]->id] != n->in[k]))
        nnc_die("after %s: node %d (%s) uses a node that is not before it",
                after_pass, i, name);
    }
    const Shape *in[MAX_OPERANDS] = {nin > 0 ? &n->in[0]->shape : NULL,
                          nin > 1 ? &n->in[1]->shape : NULL};
    Shape s;
    char msg[256];
    OpAttr attr = n->attr;
    if (nin == 0) attr.shape = n->shape;
    if (op_infer_shape(n->op, in, &attr, &s, msg, sizeof msg) != 0 ||
        !shape_eq(&s, &n->shape))
      nnc_die("after %s: node %d (%s) has the wrong shape", after_pass, i,
              name);
    if (op_batched(n->op, n->in[0], n->in[1]) != n->batched)
      nnc_die("after %s: node %d (%s) has the wrong batched flag", after_pass,
              i, name);
  }
  if (g->grads)
    for (int i = 0; i < g->params.len; i++) {
      const Node *p = g->params.items[i], *d = g->grads[i];
      if (!d || d->batched || !shape_eq(&d->shape, &p->shape) ||
          d->id >= g->len || g->nodes[d->id] != d)
        nnc_die("after %s: parameter %s has no valid gradient", after_pass,
                p->name);
    }
  for (int i = 0; i < g->nupdates; i++) {
    const Update *u = &g->updates[i];
    if (!shape_eq(&u->target->shape, &u->value->shape) || u->value->batched)
      nnc_die("after %s: update of %s has the wrong shape", after_pass,
              u->target->name);
  }
}

int64_t graph_row_values(const Graph *g) {
  int64_t values = 0;
  for (int i = 0; i < g->len; i++)
    if (g->nodes[i]->batched) values += shape_numel(&g->nodes[i]->shape);
  return values;
}

bool graph_output_needs_targets(const Graph *g) {
  if (!g->output) return false;
  bool *need = nnc_xcalloc((size_t)g->len, 1), found = false;
  need[g->output->id] = true;
  for (int i = g->output->id; i >= 0 && !found; i--) {
    if (!need[i]) continue;
    const Node *n = g->nodes[i];
    if (n->op == OP_TARGET) found = true;
    for (int k = 0; k < op_info[n->op].nin; k++) need[n->in[k]->id] = true;
  }
  free(need);
  return found;
}

bool graph_has_windows(const Graph *g) {
  for (int i = 0; i < g->len; i++) {
    Op op = g->nodes[i]->op;
    if (op == OP_CONV || op == OP_CONV_DX || op == OP_CONV_DW || op == OP_MAX_POOL || op == OP_MAX_POOL_DX) return true;
  }
  return false;
}
