/*
 * interp.c - the reference interpreter and its Engine.
 */
#include "interp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- scalar semantics ---- */

static double sigmoid(double x) {
  if (x >= 0) return 1 / (1 + exp(-x));
  double e = exp(x);
  return e / (1 + e);
}

static double softplus(double x) { return (x > 0 ? x : 0) + log1p(exp(-fabs(x))); }

/* x^p with the exponents users write most computed exactly as they would
 * by hand; codegen.c mirrors these cases. */
static double power(double x, double p) {
  if (p == 2) return x * x;
  if (p == 1) return x;
  if (p == 3) return x * x * x;
  if (p == -1) return 1 / x;
  if (p == 0.5) return sqrt(x);
  return pow(x, p);
}

static double clamp_log(double x) {
  double l = log(x);
  return l > -100 ? l : -100;
}

double op_scalar(Op op, double a, double b, double attr) {
  switch (op) {
  case OP_NEG: return -a;
  case OP_RELU: return a < 0 ? 0 : a; /* a NaN passes, as PyTorch's relu (and -0 stays -0, as the JIT's) */
  case OP_SIGMOID: return sigmoid(a);
  case OP_TANH: return tanh(a);
  case OP_EXP: return exp(a);
  case OP_LOG: return log(a);
  case OP_SQRT: return sqrt(a);
  case OP_ABS: return fabs(a);
  case OP_SOFTPLUS: return softplus(a);
  case OP_LEAKY_RELU: return a > 0 ? a : attr * a;
  case OP_POW: return power(a, attr);
  case OP_STEP: return a > attr ? 1 : 0;
  case OP_SIGN: return a > 0 ? 1 : a < 0 ? -1 : 0;
  case OP_LEAKY_STEP: return a > 0 ? 1 : attr;
  case OP_MAXC: return a > attr ? a : attr;
  case OP_ADD: return a + b;
  case OP_SUB: return a - b;
  case OP_MUL: return a * b;
  case OP_DIV: return a / b;
  case OP_BCE: return -(b * clamp_log(a) + (1 - b) * clamp_log(1 - a));
  case OP_MAX: return a > b || a != a ? a : b;
  case OP_MIN: return a < b || a != a ? a : b;
  case OP_MAX_SHARE: return a > b ? 1 : a == b ? 0.5 : 0;
  case OP_KEEP_POS: return a > 0 ? b : 0;
  case OP_KEEP_NONPOS: return a > 0 ? 0 : b;
  case OP_INPUT: case OP_TARGET: case OP_PARAM: case OP_STATE: case OP_CONST:
  case OP_INV_BATCH: case OP_SUM: case OP_MEAN: case OP_LOGSUMEXP: case OP_SOFTMAX:
  case OP_LOG_SOFTMAX: case OP_MATMUL: case OP_OUTER: case OP_TRANSPOSE: case OP_BROADCAST:
  case OP_RESHAPE: case OP_SUM_TO: case OP_CONCAT: case OP_SLICE: case OP_DROPOUT: case OP_IF_TRAINING:
  case OP_GATHER: case OP_SCATTER_ADD: case OP_BATCH_SUM: case OP_BATCH_MEAN: case OP_CONV: case OP_CONV_DX:
  case OP_CONV_DW: case OP_MAX_POOL: case OP_MAX_POOL_DX: case OP_AVG_POOL: case OP_AVG_POOL_DX:
  case OP_CHANNEL_MOMENTS: case OP_COUNT:
    break;
  }
  nnc_die("op_scalar: %s is not elementwise", op_info[op].name);
}

/* ---- the interpreter ---- */

struct Interp {
  const Graph *g;
  int max_rows, rows;
  bool round_f32;
  double **val;   /* val[id]: rows*numel (batched) or numel values */
  bool *have;     /* computed or given */
  bool *given;
  bool *needed;   /* scratch for interp_get */
  bool evaluation; /* forward, predict: dropout is the identity, if_training its second operand */
};

Interp *interp_new(const Graph *g, int max_rows, bool force_f64) {
  Interp *in = nnc_xcalloc(1, sizeof *in);
  in->g = g;
  in->max_rows = in->rows = max_rows;
  in->round_f32 = g->dtype == DT_F32 && !force_f64;
  in->val = nnc_xcalloc((size_t)g->len, sizeof(double *));
  in->have = nnc_xcalloc((size_t)g->len, sizeof(bool));
  in->given = nnc_xcalloc((size_t)g->len, sizeof(bool));
  in->needed = nnc_xcalloc((size_t)g->len, sizeof(bool));
  return in;
}

void interp_set_evaluation(Interp *in, bool on) {
  if (in->evaluation != on) interp_forget(in);
  in->evaluation = on;
}

void interp_free(Interp *in) {
  if (!in) return;
  for (int i = 0; i < in->g->len; i++) free(in->val[i]);
  free(in->val);
  free(in->have);
  free(in->given);
  free(in->needed);
  free(in);
}

static int64_t count(const Interp *in, const Node *n) {
  return shape_numel(&n->shape) * (n->batched ? in->rows : 1);
}

static double *slot(Interp *in, const Node *n) {
  if (!in->val[n->id]) {
    int64_t cap = shape_numel(&n->shape) * (n->batched ? in->max_rows : 1);
    in->val[n->id] = nnc_xcalloc((size_t)cap, sizeof(double));
  }
  return in->val[n->id];
}

void interp_forget(Interp *in) {
  for (int i = 0; i < in->g->len; i++) in->have[i] = in->given[i];
}

void interp_set_rows(Interp *in, int rows) {
  NNC_ASSERT(rows >= 1 && rows <= in->max_rows);
  in->rows = rows;
  interp_forget(in);
}

void interp_give(Interp *in, const Node *n, const double *values) {
  double *v = slot(in, n);
  int64_t len = count(in, n);
  for (int64_t i = 0; i < len; i++) v[i] = in->round_f32 ? (double)(float)values[i] : values[i];
  in->have[n->id] = in->given[n->id] = true;
}

void interp_give_elems(Interp *in, const Node *n, const void *values, int elem_size) {
  double *v = slot(in, n);
  int64_t len = count(in, n);
  if (elem_size == 8) {
    const double *d = values;
    for (int64_t i = 0; i < len; i++) v[i] = in->round_f32 ? (double)(float)d[i] : d[i];
  } else {
    const float *f = values;
    for (int64_t i = 0; i < len; i++) v[i] = f[i];
  }
  in->have[n->id] = in->given[n->id] = true;
}

const double *interp_peek(const Interp *in, const Node *n) {
  return in->have[n->id] ? in->val[n->id] : NULL;
}

/* Row-major strides of `s` as seen from the broadcast shape `out`
 * (right-aligned, 0 where s has a 1 or no axis). */
static void bstrides(const Shape *s, const Shape *out, int64_t st[MAX_RANK]) {
  int64_t stride = 1;
  for (int i = out->rank - 1; i >= 0; i--) {
    int j = s->rank - out->rank + i;
    st[i] = (j >= 0 && s->dim[j] != 1) ? stride : 0;
    if (j >= 0) stride *= s->dim[j];
  }
}

/* The offset into a broadcast operand of the out element `e`. */
static int64_t boffset(const Shape *out, const int64_t st[MAX_RANK], int64_t e) {
  int64_t off = 0;
  for (int i = out->rank - 1; i >= 0; i--) {
    off += (e % out->dim[i]) * st[i];
    e /= out->dim[i];
  }
  return off;
}

/* The row of a table of `rows` rows that index value x selects: x itself
 * when it is an integer in range (the data's checks make it one), else
 * clamped, so memory is never read outside the table. codegen.c mirrors it. */
static int64_t table_row(double x, int64_t rows) {
  if (!(x >= 0)) return 0;
  if (x >= (double)rows) return rows - 1;
  return (int64_t)x;
}

/* scatter_add: every row of a's rows added at its index, over the batch. */
static void eval_scatter(Interp *in, const Node *n, double *out) {
  const Node *A = n->in[0], *B = n->in[1];
  int64_t dim = n->shape.dim[1], len = shape_numel(&B->shape);
  int rows = A->batched || B->batched ? in->rows : 1;
  memset(out, 0, sizeof(double) * (size_t)shape_numel(&n->shape));
  for (int r = 0; r < rows; r++) {
    const double *a = in->val[A->id] + (A->batched ? r * len * dim : 0);
    const double *b = in->val[B->id] + (B->batched ? r * len : 0);
    for (int64_t p = 0; p < len; p++) {
      double *o = out + table_row(b[p], n->shape.dim[0]) * dim;
      for (int64_t d = 0; d < dim; d++) o[d] += a[p * dim + d];
    }
  }
}

/* ---- sliding windows ----
 *
 * Written as the definitions read: for each output position (oy, ox) the
 * input position of tap (i, j) is (oy*s - pad + i, ox*s - pad + j), and
 * taps outside the input read padding. A convolution's weight is
 * [K, C*kh*kw], tap (c, i, j) at column (c*kh + i)*kw + j. */

typedef struct Taps {
  const Window *w;
  int64_t oh, ow, kk; /* output size, taps per channel */
} Taps;

static Taps taps_of(const Window *w) { return (Taps){w, window_out(w, 0), window_out(w, 1), w->k[0] * w->k[1]}; }

/* The input offset (within one channel) of tap t at output position o,
 * or -1 in the padding. */
static int64_t tap_at(const Taps *T, int64_t o, int64_t t) {
  const Window *w = T->w;
  int64_t y = (o / T->ow) * w->s[0] - w->pad[0] + t / w->k[1];
  int64_t x = (o % T->ow) * w->s[1] - w->pad[1] + t % w->k[1];
  if (y < 0 || y >= w->in[0] || x < 0 || x >= w->in[1]) return -1;
  return y * w->in[1] + x;
}

static void eval_window(const Node *n, double *out, const double *a, const double *b) {
  Taps T = taps_of(&n->attr.win);
  int64_t hw = n->attr.win.in[0] * n->attr.win.in[1], o_n = T.oh * T.ow;
  switch ((int)n->op) {
  case OP_CONV: { /* a = x [C,H,W], b = w [K, C*kk] */
    int64_t C = n->in[0]->shape.dim[0], K = n->shape.dim[0];
    for (int64_t k = 0; k < K; k++)
      for (int64_t o = 0; o < o_n; o++) {
        double acc = 0;
        for (int64_t c = 0; c < C; c++)
          for (int64_t t = 0; t < T.kk; t++) {
            int64_t at = tap_at(&T, o, t);
            if (at >= 0) acc += b[k * C * T.kk + c * T.kk + t] * a[c * hw + at];
          }
        out[k * o_n + o] = acc;
      }
    return;
  }
  case OP_CONV_DX: { /* a = dy [K,H',W'], b = w */
    int64_t C = n->shape.dim[0], K = n->in[0]->shape.dim[0];
    memset(out, 0, sizeof(double) * (size_t)(C * hw));
    for (int64_t k = 0; k < K; k++)
      for (int64_t o = 0; o < o_n; o++)
        for (int64_t c = 0; c < C; c++)
          for (int64_t t = 0; t < T.kk; t++) {
            int64_t at = tap_at(&T, o, t);
            if (at >= 0) out[c * hw + at] += b[k * C * T.kk + c * T.kk + t] * a[k * o_n + o];
          }
    return;
  }
  case OP_CONV_DW: { /* a = x, b = dy */
    int64_t C = n->in[0]->shape.dim[0], K = n->in[1]->shape.dim[0];
    for (int64_t k = 0; k < K; k++)
      for (int64_t c = 0; c < C; c++)
        for (int64_t t = 0; t < T.kk; t++) {
          double acc = 0;
          for (int64_t o = 0; o < o_n; o++) {
            int64_t at = tap_at(&T, o, t);
            if (at >= 0) acc += a[c * hw + at] * b[k * o_n + o];
          }
          out[k * C * T.kk + c * T.kk + t] = acc;
        }
    return;
  }
  case OP_MAX_POOL: case OP_AVG_POOL: case OP_MAX_POOL_DX: case OP_AVG_POOL_DX: {
    bool fwd = n->op == OP_MAX_POOL || n->op == OP_AVG_POOL;
    int64_t C = n->shape.dim[0];
    /* the gradients: b (max) or a (avg) is dy */
    const double *dy = n->op == OP_MAX_POOL_DX ? b : a;
    if (!fwd) memset(out, 0, sizeof(double) * (size_t)(C * hw));
    for (int64_t c = 0; c < C; c++)
      for (int64_t o = 0; o < o_n; o++) {
        const double *x = n->op == OP_AVG_POOL_DX ? NULL : a + c * hw;
        if (n->op == OP_AVG_POOL || n->op == OP_AVG_POOL_DX) {
          double acc = 0;
          for (int64_t t = 0; t < T.kk; t++) {
            int64_t at = tap_at(&T, o, t);
            if (at < 0) continue;
            if (fwd)
              acc += x[at];
            else
              out[c * hw + at] += dy[c * o_n + o] / (double)T.kk;
          }
          if (fwd) out[c * o_n + o] = acc / (double)T.kk;
          continue;
        }
        /* the first maximal element, in row-major order */
        int64_t best = -1;
        for (int64_t t = 0; t < T.kk; t++) {
          int64_t at = tap_at(&T, o, t);
          if (at >= 0 && (best < 0 || x[at] > x[best])) best = at;
        }
        if (fwd)
          out[c * o_n + o] = x[best];
        else
          out[c * hw + best] += dy[c * o_n + o];
      }
    return;
  }
  default:
    break;
  }
  nnc_die("interpreter: %s is not a window op", op_info[n->op].name);
}

/* One node for one batch row: out and ins point at that row's values.
 * By class: an elementwise op needs only its case in op_scalar. */
static void eval_row(Interp *in, const Node *n, double *out, const double *a, const double *b) {
  const Shape *s = &n->shape;
  int64_t numel = shape_numel(s);
  const Node *A = n->in[0], *B = n->in[1];
  switch (op_info[n->op].cls) {
  case OPC_LEAF:
    if (n->op == OP_CONST) {
      out[0] = n->attr.value;
      return;
    }
    if (n->op == OP_INV_BATCH) {
      out[0] = 1.0 / in->rows;
      return;
    }
    nnc_die("interpreter: %s '%s' has no value", op_info[n->op].name, n->name ? n->name : "?");
  case OPC_UNARY:
    for (int64_t e = 0; e < numel; e++) out[e] = op_scalar(n->op, a[e], 0, n->attr.value);
    return;
  case OPC_BINARY: {
    int64_t sa[MAX_RANK], sb[MAX_RANK];
    bstrides(&A->shape, s, sa);
    bstrides(&B->shape, s, sb);
    for (int64_t e = 0; e < numel; e++)
      out[e] = op_scalar(n->op, a[boffset(s, sa, e)], b[boffset(s, sb, e)], 0);
    return;
  }
  case OPC_REDUCE: {
    /* split the input into outer x axis x inner */
    int64_t total = shape_numel(&A->shape), len = total, inner = 1;
    if (n->attr.axis != AXIS_ALL) {
      len = A->shape.dim[n->attr.axis];
      for (int i = n->attr.axis + 1; i < A->shape.rank; i++) inner *= A->shape.dim[i];
    }
    int64_t outer = total / (len * inner);
    for (int64_t o = 0; o < outer; o++)
      for (int64_t i = 0; i < inner; i++) {
        const double *p = a + o * len * inner + i;
        double acc = 0;
        for (int64_t k = 0; k < len; k++) acc += p[k * inner];
        if (n->op == OP_MEAN) acc /= (double)len;
        out[o * inner + i] = acc;
      }
    return;
  }
  case OPC_LASTREDUCE: case OPC_LASTAXIS: {
    /* each run of the last axis: its max m and sum of exp(x - m) */
    int64_t len = A->shape.dim[A->shape.rank - 1], total = shape_numel(&A->shape);
    for (int64_t r = 0; r < total; r += len) {
      double mx = -INFINITY, sum = 0;
      for (int64_t k = 0; k < len; k++) mx = a[r + k] > mx ? a[r + k] : mx;
      for (int64_t k = 0; k < len; k++) sum += exp(a[r + k] - mx);
      if (n->op == OP_LOGSUMEXP)
        out[r / len] = isfinite(mx) ? mx + log(sum) : mx;
      else
        for (int64_t k = 0; k < len; k++)
          out[r + k] = n->op == OP_SOFTMAX ? exp(a[r + k] - mx) / sum : a[r + k] - mx - log(sum);
    }
    return;
  }
  case OPC_MATMUL: {
    int64_t m = A->shape.rank == 2 ? A->shape.dim[0] : 1;
    int64_t k = A->shape.dim[A->shape.rank - 1];
    int64_t nn = B->shape.rank == 2 ? B->shape.dim[1] : 1;
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < nn; j++) {
        double acc = 0;
        for (int64_t q = 0; q < k; q++) acc += a[i * k + q] * b[q * nn + j];
        out[i * nn + j] = acc;
      }
    return;
  }
  case OPC_OUTER: {
    int64_t m = A->shape.dim[0], nn = B->shape.dim[0];
    for (int64_t i = 0; i < m; i++)
      for (int64_t j = 0; j < nn; j++) out[i * nn + j] = a[i] * b[j];
    return;
  }
  case OPC_TRANSPOSE: {
    int64_t r = A->shape.dim[0], c = A->shape.dim[1];
    for (int64_t i = 0; i < r; i++)
      for (int64_t j = 0; j < c; j++) out[j * r + i] = a[i * c + j];
    return;
  }
  case OPC_BROADCAST: {
    int64_t sa[MAX_RANK];
    bstrides(&A->shape, s, sa);
    for (int64_t e = 0; e < numel; e++) out[e] = a[boffset(s, sa, e)];
    return;
  }
  case OPC_RESHAPE:
    memcpy(out, a, sizeof(double) * (size_t)numel);
    return;
  case OPC_SUM_TO: {
    int64_t sa[MAX_RANK], total = shape_numel(&A->shape);
    bstrides(s, &A->shape, sa);
    memset(out, 0, sizeof(double) * (size_t)numel);
    for (int64_t e = 0; e < total; e++) out[boffset(&A->shape, sa, e)] += a[e];
    return;
  }
  case OPC_CONCAT: case OPC_SLICE: {
    /* runs along the axis: outer x (run of the axis) x inner */
    int ax = n->attr.axis;
    int64_t inner = 1, outer = 1;
    for (int i = ax + 1; i < s->rank; i++) inner *= s->dim[i];
    for (int i = 0; i < ax; i++) outer *= s->dim[i];
    int64_t len = s->dim[ax] * inner, la = A->shape.dim[ax] * inner;
    for (int64_t o = 0; o < outer; o++) {
      if (n->op == OP_SLICE) {
        memcpy(out + o * len, a + o * la + (int64_t)n->attr.value * inner, sizeof(double) * (size_t)len);
      } else {
        memcpy(out + o * len, a + o * la, sizeof(double) * (size_t)la);
        memcpy(out + o * len + la, b + o * (len - la), sizeof(double) * (size_t)(len - la));
      }
    }
    return;
  }
  case OPC_MODE:
    memcpy(out, in->evaluation ? b : a, sizeof(double) * (size_t)numel);
    return;
  case OPC_DROPOUT:
    break; /* eval_node: its masks need the row */
  case OPC_GATHER: {
    int64_t dim = A->shape.dim[1], len = shape_numel(&B->shape);
    for (int64_t p = 0; p < len; p++)
      memcpy(out + p * dim, a + table_row(b[p], A->shape.dim[0]) * dim, sizeof(double) * (size_t)dim);
    return;
  }
  case OPC_WINDOW: case OPC_WINDOW2:
    eval_window(n, out, a, b);
    return;
  case OPC_BATCH: case OPC_SCATTER: case OPC_MOMENTS:
    break; /* eval_node: across rows */
  }
  nnc_die("interpreter: eval_row of %s", op_info[n->op].name);
}

/* channel_moments: each channel's mean over the rows and positions, then
 * the sum of squared deviations from it (the mean as the model's dtype
 * holds it), each summed in order: rows, then positions. */
static void eval_moments(Interp *in, const Node *n, double *out) {
  const Node *A = n->in[0];
  const double *a = in->val[A->id];
  int64_t numel = shape_numel(&A->shape), C = A->shape.dim[0], P = numel / C;
  int64_t stride = A->batched ? numel : 0; /* a value without a batch: the same in every row */
  int rows = in->rows;
  for (int64_t c = 0; c < C; c++) {
    double sum = 0, ssd = 0;
    for (int r = 0; r < rows; r++)
      for (int64_t p = 0; p < P; p++) sum += a[r * stride + c * P + p];
    double mean = sum / ((double)rows * (double)P);
    if (in->round_f32) mean = (double)(float)mean;
    for (int r = 0; r < rows; r++)
      for (int64_t p = 0; p < P; p++) {
        double d = a[r * stride + c * P + p] - mean;
        ssd += d * d;
      }
    out[c] = mean;
    out[C + c] = ssd;
  }
}

static void eval_node(Interp *in, const Node *n) {
  double *out = slot(in, n);
  int64_t numel = shape_numel(&n->shape);
  const Node *A = n->in[0], *B = n->in[1];
  if (op_info[n->op].cls == OPC_BATCH) {
    const double *a = in->val[A->id];
    int rows = A->batched ? in->rows : 1;
    for (int64_t e = 0; e < numel; e++) {
      double acc = 0;
      for (int r = 0; r < rows; r++) acc += a[(int64_t)r * numel + e];
      if (!A->batched && n->op == OP_BATCH_SUM) acc *= in->rows;
      if (A->batched && n->op == OP_BATCH_MEAN) acc /= in->rows;
      out[e] = acc;
    }
  } else if (op_info[n->op].cls == OPC_DROPOUT) {
    const double *a = in->val[A->id];
    int64_t len = count(in, n);
    uint64_t step = (uint64_t)in->val[B->id][0];
    double scale = 1 / (1 - n->attr.value);
    for (int64_t e = 0; e < len; e++)
      out[e] = in->evaluation ? a[e]
             : dropout_keeps((uint32_t)n->attr.axis, step, (uint64_t)e, n->attr.value) ? a[e] * scale : 0;
  } else if (op_info[n->op].cls == OPC_SCATTER) {
    eval_scatter(in, n, out);
  } else if (op_info[n->op].cls == OPC_MOMENTS) {
    eval_moments(in, n, out);
  } else {
    int rows = n->batched ? in->rows : 1;
    int64_t na = A ? shape_numel(&A->shape) : 0, nb = B ? shape_numel(&B->shape) : 0;
    for (int r = 0; r < rows; r++) {
      const double *a = A && in->val[A->id] ? in->val[A->id] + (A->batched ? r * na : 0) : NULL;
      const double *b = B && in->val[B->id] ? in->val[B->id] + (B->batched ? r * nb : 0) : NULL;
      eval_row(in, n, out + r * numel, a, b);
    }
  }
  if (in->round_f32) {
    int64_t len = count(in, n);
    for (int64_t e = 0; e < len; e++) out[e] = (double)(float)out[e];
  }
  in->have[n->id] = true;
}

const double *interp_get(Interp *in, const Node *target) {
  if (in->have[target->id]) return in->val[target->id];
  const Graph *g = in->g;
  memset(in->needed, 0, (size_t)g->len);
  in->needed[target->id] = true;
  for (int i = target->id; i >= 0; i--) {
    if (!in->needed[i] || in->have[i]) continue;
    const Node *n = g->nodes[i];
    for (int k = 0; k < op_info[n->op].nin; k++)
      if (node_reads(n, k, in->evaluation)) in->needed[n->in[k]->id] = true;
  }
  for (int i = 0; i <= target->id; i++)
    if (in->needed[i] && !in->have[i]) eval_node(in, g->nodes[i]);
  return in->val[target->id];
}

/* ---- the interpreter Engine ---- */

typedef struct IEngine {
  Interp *in;
  double *scratch; /* max_batch * max(cols) values */
} IEngine;

static double buf_get(const Engine *e, int64_t off) {
  return e->layout->elem_size == 8 ? ((double *)e->buf)[off] : ((float *)e->buf)[off];
}

static void buf_set(Engine *e, int64_t off, double v) {
  if (e->layout->elem_size == 8)
    ((double *)e->buf)[off] = v;
  else
    ((float *)e->buf)[off] = (float)v;
}

static double data_get(const Engine *e, const void *p, int64_t i) {
  return e->layout->elem_size == 8 ? ((const double *)p)[i] : ((const float *)p)[i];
}

/* Give the interpreter the parameters and state from the buffer. */
static void give_buffer(Engine *e) {
  IEngine *ie = e->impl;
  const Graph *g = e->g;
  const Layout *L = e->layout;
  size_t es = (size_t)L->elem_size;
  for (int i = 0; i < g->params.len; i++)
    interp_give_elems(ie->in, g->params.items[i], (char *)e->buf + (size_t)L->param_off[i] * es, L->elem_size);
  for (int j = 0; j < g->states.len; j++)
    interp_give_elems(ie->in, g->states.items[j], (char *)e->buf + (size_t)L->state_off[j] * es, L->elem_size);
}

/* Give rows of x (or t) to the input (or target) leaves, column by column. */
static void give_rows(Engine *e, const PtrVec *leaves, const void *data, int64_t cols, int64_t n) {
  IEngine *ie = e->impl;
  int64_t col = 0;
  for (int i = 0; i < leaves->len; i++) {
    const Node *leaf = leaves->items[i];
    int64_t w = shape_numel(&leaf->shape);
    for (int64_t r = 0; r < n; r++)
      for (int64_t k = 0; k < w; k++) ie->scratch[r * w + k] = data_get(e, data, r * cols + col + k);
    interp_give(ie->in, leaf, ie->scratch);
    col += w;
  }
}

static void start_batch(Engine *e, const void *x, const void *t, int64_t n) {
  IEngine *ie = e->impl;
  interp_set_rows(ie->in, (int)n);
  interp_set_evaluation(ie->in, false);
  give_buffer(e);
  give_rows(e, &e->g->inputs, x, engine_input_cols(e->g), n);
  if (t) give_rows(e, &e->g->targets, t, engine_target_cols(e->g), n);
}

static double ie_backward(Engine *e, const void *x, const void *t, int64_t n) {
  IEngine *ie = e->impl;
  start_batch(e, x, t, n);
  for (int i = 0; i < e->g->params.len; i++) {
    const Node *d = e->g->grads[i];
    const double *v = interp_get(ie->in, d);
    int64_t len = shape_numel(&d->shape);
    for (int64_t k = 0; k < len; k++) buf_set(e, e->layout->grad_off[i] + k, v[k]);
  }
  return interp_get(ie->in, e->g->batch_loss)[0];
}

/* Apply g->updates from the values the interpreter holds (all computed
 * before any is stored: an update reads the old values); without the
 * batch (with_batch false), those that need it are left out. */
static void apply_updates(Engine *e, bool with_batch) {
  IEngine *ie = e->impl;
  const Graph *g = e->g;
  for (int u = 0; u < g->nupdates; u++)
    if (with_batch || !g->updates[u].from_batch) interp_get(ie->in, g->updates[u].value);
  for (int u = 0; u < g->nupdates; u++) {
    if (!with_batch && g->updates[u].from_batch) continue;
    const Node *target = g->updates[u].target, *v = g->updates[u].value;
    const double *val = interp_peek(ie->in, v);
    int64_t off = target->op == OP_PARAM ? e->layout->param_off[target->param_index]
                                         : e->layout->state_off[target->state_index];
    int64_t len = shape_numel(&target->shape);
    for (int64_t k = 0; k < len; k++) buf_set(e, off + k, val[k]);
  }
}

static void ie_update(Engine *e) {
  IEngine *ie = e->impl;
  interp_set_rows(ie->in, 1);
  give_buffer(e);
  for (int i = 0; i < e->g->params.len; i++) {
    const Node *d = e->g->grads[i];
    int64_t len = shape_numel(&d->shape);
    for (int64_t k = 0; k < len; k++) ie->scratch[k] = buf_get(e, e->layout->grad_off[i] + k);
    interp_give(ie->in, d, ie->scratch);
  }
  apply_updates(e, false);
  /* the gradient nodes were given for this step only */
  interp_free(ie->in);
  ie->in = interp_new(e->g, e->max_batch, false);
}

static double ie_train_step(Engine *e, const void *x, const void *t, int64_t n) {
  IEngine *ie = e->impl;
  start_batch(e, x, t, n);
  double loss = interp_get(ie->in, e->g->batch_loss)[0];
  apply_updates(e, true);
  return loss;
}

static double ie_train_epoch(Engine *e, const void *x, const void *t, int64_t rows) {
  int64_t xc = engine_input_cols(e->g), tc = engine_target_cols(e->g);
  size_t es = (size_t)e->layout->elem_size;
  double total = 0;
  for (int64_t r = 0; r < rows; r += e->max_batch) {
    int64_t n = rows - r < e->max_batch ? rows - r : e->max_batch;
    total += n * e->train_step(e, (const char *)x + (size_t)(r * xc) * es,
                               (const char *)t + (size_t)(r * tc) * es, n);
  }
  return total;
}

static void ie_forward_batch(Engine *e, const void *x, const void *t, int64_t n, void *y, void *loss) {
  IEngine *ie = e->impl;
  start_batch(e, x, t, n);
  interp_set_evaluation(ie->in, true);
  const Node *out = e->g->output;
  const double *v = interp_get(ie->in, out);
  int64_t w = shape_numel(&out->shape);
  for (int64_t r = 0; r < n; r++)
    for (int64_t k = 0; k < w; k++) {
      double val = v[(out->batched ? r * w : 0) + k];
      if (e->layout->elem_size == 8)
        ((double *)y)[r * w + k] = val;
      else
        ((float *)y)[r * w + k] = (float)val;
    }
  if (t && loss) {
    const double *l = interp_get(ie->in, e->g->loss);
    for (int64_t r = 0; r < n; r++) {
      double val = l[e->g->loss->batched ? r : 0];
      if (e->layout->elem_size == 8)
        ((double *)loss)[r] = val;
      else
        ((float *)loss)[r] = (float)val;
    }
  }
}

/* any number of rows, in batches of max_batch */
static void ie_forward(Engine *e, const void *x, const void *t, int64_t n, void *y, void *loss) {
  int64_t xc = engine_input_cols(e->g), tc = engine_target_cols(e->g), yc = shape_numel(&e->g->output->shape);
  size_t es = (size_t)e->layout->elem_size;
  for (int64_t r = 0; r < n; r += e->max_batch) {
    int64_t k = n - r < e->max_batch ? n - r : e->max_batch;
    ie_forward_batch(e, (const char *)x + (size_t)(r * xc) * es, t ? (const char *)t + (size_t)(r * tc) * es : NULL, k,
                     (char *)y + (size_t)(r * yc) * es, loss ? (char *)loss + (size_t)r * es : NULL);
  }
}

static void ie_destroy(Engine *e) {
  IEngine *ie = e->impl;
  interp_free(ie->in);
  free(ie->scratch);
  free(ie);
  engine_free(e);
}

static const Engine interp_ops = {.backward = ie_backward, .update = ie_update, .train_step = ie_train_step,
                                   .train_epoch = ie_train_epoch, .forward = ie_forward, .destroy = ie_destroy};

Engine *interp_engine_new(const Graph *g, const Layout *layout, int max_batch) {
  IEngine *ie = nnc_xcalloc(1, sizeof *ie);
  Engine *e = engine_new(&interp_ops, g, layout, max_batch, ie);
  ie->in = interp_new(g, max_batch, false);
  /* scratch holds the largest leaf or gradient for a full batch */
  int64_t most = engine_input_cols(g) > engine_target_cols(g) ? engine_input_cols(g) : engine_target_cols(g);
  most *= max_batch;
  for (int i = 0; i < g->params.len; i++) {
    int64_t n = shape_numel(&((Node *)g->params.items[i])->shape);
    if (n > most) most = n;
  }
  for (int j = 0; j < g->states.len; j++) {
    int64_t n = shape_numel(&((Node *)g->states.items[j])->shape);
    if (n > most) most = n;
  }
  ie->scratch = nnc_xcalloc((size_t)most + 1, sizeof(double));
  return e;
}

const Node *interp_first_nonfinite(const Graph *g, const Layout *layout, const void *buf, const void *x,
                                   const void *t, int64_t n, double *operand) {
  Engine *e = interp_engine_new(g, layout, (int)n);
  memcpy(e->buf, buf, (size_t)layout->total * (size_t)layout->elem_size);
  IEngine *ie = e->impl;
  start_batch(e, x, t, n);
  interp_get(ie->in, g->batch_loss);
  for (int u = 0; u < g->nupdates; u++) interp_get(ie->in, g->updates[u].value);
  const Node *bad = NULL;
  *operand = NAN;
  for (int i = 0; i < g->len && !bad; i++) {
    const Node *node = g->nodes[i];
    const double *v = interp_peek(ie->in, node);
    if (!v) continue;
    int64_t len = count(ie->in, node);
    for (int64_t k = 0; k < len && !bad; k++) {
      if (isfinite(v[k])) continue;
      bad = node;
      /* the operand whose domain the op may have left: a unary op's
         input, a division's divisor */
      const Node *arg = op_info[node->op].cls == OPC_UNARY ? node->in[0] : node->op == OP_DIV ? node->in[1] : NULL;
      const double *in = arg ? interp_peek(ie->in, arg) : NULL;
      if (in && count(ie->in, arg) == len) *operand = in[k];
    }
  }
  e->destroy(e);
  return bad;
}

double interp_bytes(const Graph *g, const Layout *layout, int64_t rows) {
  double values = 0;
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    values += (double)shape_numel(&n->shape) * (double)(n->batched ? rows : 1);
  }
  return (double)layout->total * layout->elem_size + values * (double)sizeof(double);
}
