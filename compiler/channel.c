/*
 * channel.c - per-channel sums over the rows of a batch as calls of two
 * fixed kernels (gemm.c's table: prebuilt per x86-64 level, section 9 of
 * docs/internals.md): batch_norm's statistics (channel_moments: each
 * channel's mean, then the squared deviations from it) and the per-channel
 * sums of its gradient (batch_sum of sum_to: sum dy and sum dy * x). The
 * rows, their strides and the sizes are arguments, so every batch_norm of
 * every function calls the same two.
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
  LLVMTypeRef i32 = LLVMInt32TypeInContext(cg->ctx), vi = LLVMVectorType(i32, (unsigned)cg->vl);
  LLVMValueRef lane[64];
  for (int l = 0; l < cg->vl; l++) lane[l] = LLVMConstInt(i32, (unsigned)l, 0);
  LLVMValueRef rest = LLVMBuildTrunc(cg->b, LLVMBuildNSWSub(cg->b, P, imul(cg, full, ci(cg, cg->vl)), ""), i32, "");
  LLVMValueRef splat = LLVMBuildShuffleVector(cg->b, LLVMBuildInsertElement(cg->b, LLVMGetPoison(vi), rest, ci(cg, 0), ""),
                                              LLVMGetPoison(vi), LLVMConstNull(vi), "");
  return LLVMBuildICmp(cg->b, LLVMIntULT, LLVMConstVector(lane, (unsigned)cg->vl), splat, "rest");
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

bool channel_kernel_node(const Node *n) { return n->op == OP_CHANNEL_MOMENTS || channel_sum_to(n); }

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
