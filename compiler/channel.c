/*
 * channel.c - batch_norm's loops over the rows of a batch as calls of
 * three fixed kernels (gemm.c's table: prebuilt per x86-64 level, section
 * 9 of docs/internals.md): its statistics (channel_moments: each channel's
 * mean, then the squared deviations from it), the per-channel sums of its
 * gradient (batch_sum of sum_to: sum dy and sum dy * x), and its
 * per-channel affine maps (the normalization with the relu after it, and
 * the input gradient). The rows, their strides and the sizes are
 * arguments, so every batch_norm of every function calls the same three.
 *
 * The order of a channel's sum: a vector of vl partial sums (vl the
 * target's lanes), lane l adding positions l, l + vl, ... of row 0, then
 * of row 1, and so on (the last partial vector of a row adds -0 in the
 * lanes past its end), then the lanes added in halves (l and l + vl/2,
 * down to one): fixed by the vector width alone, as cg_vec_reduce's.
 */
#include "channel.h"

#include "gemm.h"

static LLVMValueRef gep(CG *cg, LLVMValueRef base, LLVMValueRef off) {
  return LLVMBuildInBoundsGEP2(cg->b, cg->T, base, &off, 1, "");
}

/* ---- the kernels ---- */

/* What a term of the sum is: a, (a - mean)^2 or a * b. */
typedef enum Term { T_A, T_SQUARE, T_DOT } Term;

typedef struct Walk {
  LLVMValueRef a, b, as, bs, rows, P, full, mask, mean;
  Term term;
} Walk;

static LLVMTypeRef vec_ty(CG *cg) { return LLVMVectorType(cg->T, (unsigned)cg->vl); }

/* Add channel c's terms, every row's, into the vector at slot. */
static void add_terms(CG *cg, const Walk *w, LLVMValueRef c, LLVMValueRef slot) {
  int lanes = cg->lanes;
  Loop rl, vl;
  LLVMValueRef r = cg_loop_begin(cg, &rl, w->rows);
  LLVMValueRef at = imul(cg, c, w->P);
  LLVMValueRef pa = gep(cg, w->a, iadd(cg, imul(cg, r, w->as), at));
  LLVMValueRef pb = w->term == T_DOT ? gep(cg, w->b, iadd(cg, imul(cg, r, w->bs), at)) : NULL;
  cg->lanes = cg->vl;
  LLVMValueRef none = cT(cg, -0.0), mean = w->mean ? cg_splat(cg, w->mean) : NULL;
  for (int part = 0; part < 2; part++) { /* the whole vectors, then the rest under its mask */
    LLVMValueRef o;
    if (part == 0) {
      o = imul(cg, cg_loop_begin(cg, &vl, w->full), ci(cg, cg->vl));
    } else {
      o = imul(cg, w->full, ci(cg, cg->vl));
      cg->vmask = w->mask;
    }
    LLVMValueRef v = cg_vec_load(cg, gep(cg, pa, o));
    if (w->term == T_SQUARE) {
      v = b_fsub(cg, v, mean);
      v = b_fmul(cg, v, v);
    } else if (w->term == T_DOT) {
      v = b_fmul(cg, v, cg_vec_load(cg, gep(cg, pb, o)));
    }
    if (part == 1) v = sel(cg, w->mask, v, none);
    cg->vmask = NULL;
    LLVMBuildStore(cg->b, cg_facc(cg, LLVMBuildLoad2(cg->b, vec_ty(cg), slot, ""), v), slot);
    if (part == 0) cg_vec_loop_end(cg, &vl);
  }
  cg->lanes = lanes;
  cg_loop_end(cg, &rl);
}

/* The sum of channel c: the partial sums from -0, then their lanes in halves. */
static LLVMValueRef channel_total(CG *cg, const Walk *w, LLVMValueRef c, LLVMValueRef slot) {
  int lanes = cg->lanes;
  cg->lanes = cg->vl;
  LLVMBuildStore(cg->b, cT(cg, -0.0), slot);
  cg->lanes = lanes;
  add_terms(cg, w, c, slot);
  LLVMValueRef acc = LLVMBuildLoad2(cg->b, vec_ty(cg), slot, "");
  LLVMTypeRef i32 = LLVMInt32TypeInContext(cg->ctx);
  for (int n = cg->vl; n > 1; n /= 2) {
    LLVMValueRef lo[32], hi[32];
    for (int l = 0; l < n / 2; l++) lo[l] = LLVMConstInt(i32, (unsigned)l, 0), hi[l] = LLVMConstInt(i32, (unsigned)(l + n / 2), 0);
    LLVMValueRef a0 = LLVMBuildShuffleVector(cg->b, acc, LLVMGetPoison(LLVMTypeOf(acc)), LLVMConstVector(lo, (unsigned)(n / 2)), "");
    LLVMValueRef a1 = LLVMBuildShuffleVector(cg->b, acc, LLVMGetPoison(LLVMTypeOf(acc)), LLVMConstVector(hi, (unsigned)(n / 2)), "");
    acc = cg_facc(cg, a0, a1);
  }
  return LLVMBuildExtractElement(cg->b, acc, ci(cg, 0), "");
}

/* The lanes of the last partial vector of a row of P: those below P mod vl. */
static LLVMValueRef rest_mask(CG *cg, LLVMValueRef P, LLVMValueRef full) {
  LLVMValueRef rest = cg_splat_i32(cg, LLVMBuildNSWSub(cg->b, P, imul(cg, full, ci(cg, cg->vl)), ""));
  return LLVMBuildICmp(cg->b, LLVMIntULT, cg_lane_ids(cg, ci(cg, 0)), rest, "rest");
}

/* for each channel: out[c] = its sum (T_A, T_DOT), or its mean and the
 * sum of squared deviations from it (moments) */
static void channel_loop(CG *cg, Walk *w, LLVMValueRef C, LLVMValueRef out, bool moments) {
  LLVMValueRef slot = LLVMBuildAlloca(cg->alloc, vec_ty(cg), "partial");
  LLVMValueRef count = moments ? LLVMBuildSIToFP(cg->b, imul(cg, w->rows, w->P), cg->T, "count") : NULL;
  Loop cl;
  LLVMValueRef c = cg_loop_begin(cg, &cl, C);
  LLVMValueRef sum = channel_total(cg, w, c, slot);
  if (moments) {
    Walk sq = *w;
    sq.term = T_SQUARE;
    sq.mean = b_fdiv(cg, sum, count);
    LLVMBuildStore(cg->b, sq.mean, gep(cg, out, c));
    sum = channel_total(cg, &sq, c, slot);
    c = iadd(cg, c, C);
  }
  LLVMBuildStore(cg->b, sum, gep(cg, out, c));
  cg_loop_end(cg, &cl);
}

void channel_kernel_body(CG *cg, int k, LLVMValueRef fn) {
  LLVMValueRef P[CH_KERNEL_PARAMS];
  for (int i = 0; i < CH_KERNEL_PARAMS; i++) P[i] = LLVMGetParam(fn, (unsigned)i);
  Walk w = {.a = P[0], .b = P[1], .as = P[4], .bs = P[5], .rows = P[3], .P = P[7], .term = T_A};
  w.full = LLVMBuildUDiv(cg->b, w.P, ci(cg, cg->vl), "full");
  w.mask = rest_mask(cg, w.P, w.full);
  if (k == GEMM_CH_MOMENTS) {
    channel_loop(cg, &w, P[6], P[2], true);
    return;
  }
  LLVMBasicBlockRef one = LLVMAppendBasicBlockInContext(cg->ctx, fn, "sum");
  LLVMBasicBlockRef two = LLVMAppendBasicBlockInContext(cg->ctx, fn, "dot");
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, fn, "done");
  LLVMBuildCondBr(cg->b, LLVMBuildIsNull(cg->b, w.b, ""), one, two);
  for (int t = 0; t < 2; t++) {
    LLVMPositionBuilderAtEnd(cg->b, t ? two : one);
    w.term = t ? T_DOT : T_A;
    channel_loop(cg, &w, P[6], P[2], false);
    LLVMBuildBr(cg->b, done);
  }
  LLVMPositionBuilderAtEnd(cg->b, done);
}

/* ---- per-channel affine maps ---- */

/* One vector of out: x * a + b, or x * a + ((y - m) * k + b) (dual), then
 * relu, each operation as codegen writes the elementwise nodes it
 * replaces, so the results are the same bits. */
static void affine_vector(CG *cg, const LLVMValueRef *q, const LLVMValueRef *v, LLVMValueRef o, bool dual,
                          bool relu) {
  LLVMValueRef t = b_fmul(cg, cg_vec_load(cg, gep(cg, q[AF_X], o)), v[AF_A]);
  LLVMValueRef u = v[AF_B];
  if (dual) u = b_fadd(cg, b_fmul(cg, b_fsub(cg, cg_vec_load(cg, gep(cg, q[AF_Y], o)), v[AF_M]), v[AF_K]), u);
  t = b_fadd(cg, t, u);
  if (relu) {
    LLVMValueRef zero = cT(cg, 0);
    t = sel(cg, fgt(cg, t, zero), t, zero);
  }
  cg_vec_store(cg, t, gep(cg, q[AF_OUT], o));
}

/* Every row and channel of out for one (dual, relu): its whole vectors,
 * then the rest under its mask. */
static void affine_loops(CG *cg, const LLVMValueRef *P, LLVMValueRef full, LLVMValueRef mask, bool dual, bool relu) {
  Loop rl, cl, vl;
  LLVMValueRef r = cg_loop_begin(cg, &rl, P[AF_ROWS]);
  LLVMValueRef c = cg_loop_begin(cg, &cl, P[AF_C]);
  LLVMValueRef at = imul(cg, c, P[AF_P]), q[AF_COUNT] = {0}, v[AF_COUNT] = {0};
  q[AF_X] = gep(cg, P[AF_X], iadd(cg, imul(cg, r, P[AF_XS]), at));
  q[AF_OUT] = gep(cg, P[AF_OUT], iadd(cg, imul(cg, r, P[AF_OS]), at));
  if (dual) q[AF_Y] = gep(cg, P[AF_Y], iadd(cg, imul(cg, r, P[AF_YS]), at));
  int lanes = cg->lanes;
  cg->lanes = cg->vl;
  for (int f = AF_A; f <= (dual ? AF_K : AF_B); f++)
    v[f] = cg_splat(cg, LLVMBuildLoad2(cg->b, cg->T, gep(cg, P[f], c), ""));
  LLVMValueRef o = imul(cg, cg_loop_begin(cg, &vl, full), ci(cg, cg->vl));
  affine_vector(cg, q, v, o, dual, relu);
  cg_vec_loop_end(cg, &vl);
  cg->vmask = mask;
  affine_vector(cg, q, v, imul(cg, full, ci(cg, cg->vl)), dual, relu);
  cg->vmask = NULL;
  cg->lanes = lanes;
  cg_loop_end(cg, &cl);
  cg_loop_end(cg, &rl);
}

/* Run then(arg) when cond holds, else other(arg), joining after. */
static void branch2(CG *cg, LLVMValueRef fn, LLVMValueRef cond, LLVMBasicBlockRef *yes, LLVMBasicBlockRef *no,
                    LLVMBasicBlockRef *done) {
  *yes = LLVMAppendBasicBlockInContext(cg->ctx, fn, "");
  *no = LLVMAppendBasicBlockInContext(cg->ctx, fn, "");
  *done = LLVMAppendBasicBlockInContext(cg->ctx, fn, "");
  LLVMBuildCondBr(cg->b, cond, *yes, *no);
}

void channel_affine_body(CG *cg, LLVMValueRef fn) {
  LLVMValueRef P[AF_COUNT];
  for (int i = 0; i < AF_COUNT; i++) P[i] = LLVMGetParam(fn, (unsigned)i);
  LLVMValueRef full = LLVMBuildUDiv(cg->b, P[AF_P], ci(cg, cg->vl), "full");
  LLVMValueRef mask = rest_mask(cg, P[AF_P], full);
  LLVMValueRef dual = LLVMBuildIsNotNull(cg->b, P[AF_Y], "dual");
  LLVMValueRef relu = LLVMBuildICmp(cg->b, LLVMIntNE, P[AF_RELU], ci(cg, 0), "relu");
  LLVMBasicBlockRef yes, no, done;
  branch2(cg, fn, dual, &yes, &no, &done);
  LLVMPositionBuilderAtEnd(cg->b, yes); /* a gradient: no relu */
  affine_loops(cg, P, full, mask, true, false);
  LLVMBuildBr(cg->b, done);
  LLVMPositionBuilderAtEnd(cg->b, no);
  LLVMBasicBlockRef ryes, rno, rdone;
  branch2(cg, fn, relu, &ryes, &rno, &rdone);
  for (int t = 0; t < 2; t++) {
    LLVMPositionBuilderAtEnd(cg->b, t ? rno : ryes);
    affine_loops(cg, P, full, mask, false, !t);
    LLVMBuildBr(cg->b, rdone);
  }
  LLVMPositionBuilderAtEnd(cg->b, rdone);
  LLVMBuildBr(cg->b, done);
  LLVMPositionBuilderAtEnd(cg->b, done);
}

/* ---- the calls ---- */

/* Node n's memory (through reshapes), or NULL. */
static const Node *memory_of(const CG *cg, const Node *n) {
  n = cg_stored(cg, n);
  return cg->st[n->id].kind == ST_MEM && !cg->fused_into[n->id] ? n : NULL;
}

/* Row 0 of n in memory, and the distance between its rows (0: one row,
 * every row reads it). */
static LLVMValueRef base_of(CG *cg, const Node *n, LLVMValueRef *stride) {
  n = cg_stored(cg, n);
  const Store *s = &cg->st[n->id];
  cg_flush(cg, n);
  *stride = ci(cg, n->batched ? s->row_stride : 0);
  return gep(cg, s->base, ci(cg, s->off));
}

static void call_kernel(CG *cg, int k, LLVMValueRef *args) {
  LLVMTypeRef ty;
  LLVMValueRef fn = gemm_fixed_kernel(cg, k, &ty);
  LLVMBuildCall2(cg->b, ty, fn, args, CH_KERNEL_PARAMS, "");
}

/* channel_moments of x not in memory (a view): scalar loops, in the
 * kernel's order of rows and positions. */
static void moments_loops(CG *cg, const Node *n) {
  const Node *x = n->in[0];
  int64_t C = x->shape.dim[0];
  Shape tail = x->shape;
  tail.rank--;
  for (int d = 0; d < tail.rank; d++) tail.dim[d] = x->shape.dim[d + 1];
  LLVMValueRef count = LLVMBuildSIToFP(cg->b, imul(cg, cg->n, ci(cg, shape_numel(&tail))), cg->T, "");
  LLVMValueRef acc = LLVMBuildAlloca(cg->alloc, cg->T, "sum");
  Loop cl;
  LLVMValueRef c = cg_loop_begin(cg, &cl, ci(cg, C)), mean = NULL;
  for (int pass = 0; pass < 2; pass++) {
    LLVMBuildStore(cg->b, cT(cg, 0), acc);
    Iter rows, pos;
    cg_iter_range(cg, &rows, cg->n);
    FOR_EACH(cg, rows) {
      cg_iter_loop(cg, &pos, &tail);
      FOR_EACH(cg, pos) {
        LLVMValueRef idx[MAX_RANK] = {c};
        for (int d = 0; d < tail.rank; d++) idx[d + 1] = pos.idx[d];
        LLVMValueRef v = cg_load_elem(cg, x, x->batched ? rows.idx[0] : ci(cg, 0), idx);
        if (pass) {
          v = b_fsub(cg, v, mean);
          v = b_fmul(cg, v, v);
        }
        LLVMBuildStore(cg->b, cg_facc(cg, LLVMBuildLoad2(cg->b, cg->T, acc, ""), v), acc);
      }
    }
    LLVMValueRef sum = LLVMBuildLoad2(cg->b, cg->T, acc, "");
    if (!pass) mean = b_fdiv(cg, sum, count);
    LLVMValueRef at[2] = {ci(cg, pass), c};
    cg_store_elem(cg, n, ci(cg, 0), at, pass ? sum : mean);
  }
  cg_loop_end(cg, &cl);
}

void channel_moments_emit(CG *cg, const Node *n) {
  const Node *x = n->in[0];
  cg_forget_node(cg, n);
  if (!memory_of(cg, x) || !memory_of(cg, n)) {
    moments_loops(cg, n);
    return;
  }
  LLVMValueRef xs, none;
  LLVMValueRef xp = base_of(cg, x, &xs), out = base_of(cg, n, &none);
  int64_t C = x->shape.dim[0], P = shape_numel(&x->shape) / C;
  LLVMValueRef args[CH_KERNEL_PARAMS] = {xp, LLVMConstPointerNull(cg->ptr), out, cg->n, xs, ci(cg, 0), ci(cg, C), ci(cg, P)};
  call_kernel(cg, GEMM_CH_MOMENTS, args);
}

/* Is sum_to node s a sum over every axis of a batched value but the first? */
static bool channel_sum_to(const Node *s) {
  const Node *a = s->in[0];
  if (s->op != OP_SUM_TO || !a->batched || a->shape.rank < 2 || s->shape.rank != a->shape.rank) return false;
  if (s->shape.dim[0] != a->shape.dim[0]) return false;
  for (int d = 1; d < s->shape.rank; d++)
    if (s->shape.dim[d] != 1) return false;
  return true;
}



/* a in memory of its full batched shape, or NULL */
static const Node *whole(const CG *cg, const Node *a, const Shape *s) {
  return a->batched && shape_eq(&a->shape, s) ? memory_of(cg, a) : NULL;
}

/* The factors of sum_to s's operand: itself in memory (b NULL), or the
 * two operands in memory of an inlined product. */
static bool factors(const CG *cg, const Node *s, const Node **a, const Node **b) {
  const Node *v = s->in[0];
  *a = *b = NULL;
  if (cg->st[v->id].kind == ST_INLINE && v->op == OP_MUL) {
    *a = v->in[0], *b = v->in[1];
    return whole(cg, *a, &v->shape) && whole(cg, *b, &v->shape);
  }
  *a = v;
  return whole(cg, v, &v->shape) != NULL;
}

bool channel_sum_inline_ok(const CG *cg, const Node *s, const Node *c) {
  const Node *a, *b;
  return c->op == OP_BATCH_SUM && channel_sum_to(s) && factors(cg, s, &a, &b);
}

bool channel_sum_ok(const CG *cg, const Node *c) {
  const Node *s = c->in[0];
  return c->op == OP_BATCH_SUM && cg->st[s->id].kind == ST_INLINE && channel_sum_to(s);
}

void channel_sum(CG *cg, const Node *c) {
  const Node *s = c->in[0], *a, *b;
  factors(cg, s, &a, &b);
  cg_forget_node(cg, c);
  int64_t C = s->shape.dim[0], P = shape_numel(&a->shape) / C;
  LLVMValueRef as, bs = ci(cg, 0), none;
  LLVMValueRef ap = base_of(cg, a, &as), bp = b ? base_of(cg, b, &bs) : LLVMConstPointerNull(cg->ptr);
  LLVMValueRef args[CH_KERNEL_PARAMS] = {ap, bp, base_of(cg, c, &none), cg->n, as, bs, ci(cg, C), ci(cg, P)};
  call_kernel(cg, GEMM_CH_SUM, args);
}

/* ---- per-channel affine maps: the calls ---- */

/* What an affine map reads: out = relu?(x * a + b) or x * a + ((y - m) * k + b). */
typedef struct Affine {
  const Node *x, *y, *a, *b, *m, *k;
  bool relu;
} Affine;

/* Node v (of the output's rank) is a value per channel: [C, 1, ...]. */
static bool per_channel_shape(const Node *v, const Node *out) {
  if (v->batched || v->shape.rank != out->shape.rank || v->shape.dim[0] != out->shape.dim[0]) return false;
  for (int d = 1; d < v->shape.rank; d++)
    if (v->shape.dim[d] != 1) return false;
  return true;
}

static bool is_inline(const CG *cg, const Node *n, Op op) { return n->op == op && cg->st[n->id].kind == ST_INLINE; }

/* The form alone (ops and shapes), which channel_kernel_node asks without
 * a plan; with cg, also where each operand is. */
static bool affine_form(const CG *cg, const Node *n, Affine *f) {
  memset(f, 0, sizeof *f);
  if (!n->batched || n->shape.rank < 2) return false;
  const Node *u = n;
  if (n->op == OP_RELU) {
    f->relu = true;
    u = n->in[0];
    if (cg && cg->st[u->id].kind != ST_INLINE) return false;
  }
  if (u->op != OP_ADD || !shape_eq(&u->shape, &n->shape)) return false;
  const Node *p = u->in[0], *q = u->in[1];
  if (p->op != OP_MUL || (cg && !is_inline(cg, p, OP_MUL))) return false;
  f->x = p->in[0], f->a = p->in[1];
  if (!shape_eq(&f->x->shape, &n->shape) || !f->x->batched || !per_channel_shape(f->a, n)) return false;
  if (per_channel_shape(q, n)) {
    f->b = q;
    return true;
  }
  if (f->relu || q->op != OP_ADD || (cg && !is_inline(cg, q, OP_ADD))) return false;
  const Node *w = q->in[0];
  f->b = q->in[1];
  if (w->op != OP_MUL || (cg && !is_inline(cg, w, OP_MUL)) || !per_channel_shape(f->b, n)) return false;
  const Node *d = w->in[0];
  f->k = w->in[1];
  if (d->op != OP_SUB || (cg && !is_inline(cg, d, OP_SUB)) || !per_channel_shape(f->k, n)) return false;
  f->y = d->in[0], f->m = d->in[1];
  return shape_eq(&f->y->shape, &n->shape) && f->y->batched && per_channel_shape(f->m, n);
}

/* Where per-channel value v's C values are: its memory through reshapes,
 * or a row of a [R, C] value in memory (a slice along its first axis), or
 * NULL. */
static LLVMValueRef channel_values(CG *cg, const Node *v, bool build) {
  const Node *s = cg_stored(cg, v);
  int64_t first = 0;
  if (s->op == OP_SLICE && cg->st[s->id].kind == ST_VIEW && s->attr.axis == 0 && s->in[0]->shape.rank == 2 &&
      !s->in[0]->batched) {
    first = (int64_t)s->attr.value * s->in[0]->shape.dim[1];
    s = cg_stored(cg, s->in[0]);
  }
  if (s->batched || !memory_of(cg, s)) return NULL;
  if (!build) return cg->buf; /* any non-NULL */
  LLVMValueRef none;
  return gep(cg, base_of(cg, s, &none), ci(cg, first));
}

static bool affine_ok(const CG *cg, const Node *n, Affine *f) {
  if (!affine_form(cg, n, f) || !memory_of(cg, n) || !whole(cg, f->x, &n->shape)) return false;
  if (f->y && !whole(cg, f->y, &n->shape)) return false;
  const Node *pc[4] = {f->a, f->b, f->m, f->k};
  for (int i = 0; i < 4; i++)
    if (pc[i] && !channel_values((CG *)cg, pc[i], false)) return false;
  return true;
}

bool channel_kernel_node(const Node *n) {
  Affine f;
  return n->op == OP_CHANNEL_MOMENTS || channel_sum_to(n) || affine_form(NULL, n, &f);
}

bool channel_affine_ok(const CG *cg, const Node *n) {
  Affine f;
  return affine_ok(cg, n, &f);
}

void channel_affine(CG *cg, const Node *n) {
  Affine f;
  affine_ok(cg, n, &f);
  int64_t C = n->shape.dim[0], P = shape_numel(&n->shape) / C;
  LLVMValueRef xs, ys = ci(cg, 0), os, null = LLVMConstPointerNull(cg->ptr);
  LLVMValueRef xp = base_of(cg, f.x, &xs), yp = f.y ? base_of(cg, f.y, &ys) : null;
  LLVMValueRef a = channel_values(cg, f.a, true), b = channel_values(cg, f.b, true);
  LLVMValueRef m = f.m ? channel_values(cg, f.m, true) : null, k = f.k ? channel_values(cg, f.k, true) : null;
  cg_forget_node(cg, n);
  LLVMValueRef op = base_of(cg, n, &os);
  LLVMValueRef args[AF_COUNT] = {[AF_X] = xp, [AF_Y] = yp, [AF_OUT] = op, [AF_ROWS] = cg->n, [AF_XS] = xs,
                                 [AF_YS] = ys, [AF_OS] = os, [AF_C] = ci(cg, C), [AF_P] = ci(cg, P),
                                 [AF_A] = a, [AF_B] = b, [AF_M] = m, [AF_K] = k,
                                 [AF_RELU] = ci(cg, f.relu)};
  LLVMTypeRef ty;
  LLVMValueRef fn = gemm_fixed_kernel(cg, GEMM_CH_AFFINE, &ty);
  LLVMBuildCall2(cg->b, ty, fn, args, AF_COUNT, "");
}
