/*
 * codegen.c - IR graph to LLVM IR (see codegen.h and jit.h).
 *
 * Each module function is a subset of the one graph: the nodes its results
 * need, in graph order, each written as loop nests over its (static) shape,
 * with a loop over the batch rows for batched nodes, or a GEMM (gemm.c);
 * tiny batch-1 steps are written in vector registers instead (regstep.c).
 * Operands are read through cg_load_elem() (cgbase.c), which maps an
 * element index through views (transpose, broadcast, reshape) so those
 * never touch memory; every other node is stored once in a stack slot or
 * the workspace global, whose ranges are planned per function by liveness
 * (plan_workspace). forward and predict run chunks of max_batch rows
 * (build_chunked), so any number of rows needs one batch of workspace.
 *
 * Floating point: `contract` everywhere (FMA), and `reassoc` on the adds of
 * reductions (sum, matmul) so LLVM can vectorize them. No nnan/ninf: the
 * training driver must see NaN and infinity as they happen. Results stay
 * within 1e-12 (f64) / 1e-5 (f32) relative of the interpreter.
 */
#include "cgbase.h"
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "gemm.h"
#include "optstep.h"
#include "regstep.h"
#include "window.h"

enum { SMALL_NODE_BYTES = 4096, STACK_BUDGET = 96 * 1024 };

/* ---- kernels: one per op class (matrix products: gemm.c) ---- */

/* The loop most kernels are: every element of every row of n, its value
 * from value(cg, n, row, idx, ctx), stored. */
typedef LLVMValueRef ElemValue(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx, void *ctx);

/* In a row loop, at most this many calls of libm are unrolled, more are a
 * loop (reviews' 2 classes: a loop of two calls was more code than the
 * two). */
enum { LIBM_UNROLL = 2 };

/* Does computing n's elements call libm, in n or in the elementwise nodes
 * inlined into it? tanh and log1p are calls, and exp and log become calls
 * on x86, one per lane of a vector too. */
static bool calls_libm(const CG *cg, const Node *n) {
  if (n->op == OP_TANH || n->op == OP_SOFTPLUS || n->op == OP_EXP || n->op == OP_LOG || n->op == OP_SIGMOID ||
      n->op == OP_BCE)
    return true;
  if (!is_elementwise(n)) return false;
  for (int k = 0; k < op_info[n->op].nin; k++)
    if (cg->st[n->in[k]->id].kind == ST_INLINE && calls_libm(cg, n->in[k])) return true;
  return false;
}

typedef struct EachElem {
  const Node *n;
  LLVMValueRef row;
  ElemValue *value;
  void *ctx;
} EachElem;

static void store_elem_value(CG *cg, LLVMValueRef *idx, void *p) {
  const EachElem *e = p;
  LLVMValueRef v = e->value(cg, e->n, e->row, idx, e->ctx);
  cg_name_value(cg, v, e->n);
  cg_store_elem(cg, e->n, e->row, idx, v);
}

/* update_part's code for the last part only, in straight-line code as
 * update has it (so the same bits): a branch around it. Values known
 * before it stay known in it; after it, only memory is. Returns the block
 * after the branch, for slice_last_end. */
static LLVMBasicBlockRef slice_last_begin(CG *cg) {
  for (int i = 0; i < cg->g->len; i++) cg_flush(cg, cg->g->nodes[i]);
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "last_part");
  LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "parts");
  LLVMBuildCondBr(cg->b, cg_slice_last(cg), then, after);
  LLVMPositionBuilderAtEnd(cg->b, then);
  return after;
}

static void slice_last_end(CG *cg, LLVMBasicBlockRef after) {
  for (int i = 0; i < cg->g->len; i++) cg_flush(cg, cg->g->nodes[i]);
  LLVMBuildBr(cg->b, after);
  LLVMPositionBuilderAtEnd(cg->b, after);
  cg_forget_cache(cg);
}

/* Every element of every row of n, in vectors where ok accepts its reads
 * (ok NULL: scalar). */
static void emit_each_element(CG *cg, const Node *n, ElemValue *value, void *ctx, VecOk *ok) {
  Iter rows, el;
  cg_iter_rows(cg, &rows, n);
  FOR_EACH(cg, rows) {
    EachElem e = {n, rows.idx[0], value, ctx};
    int k = ok ? cg_vec_axes(cg, n, &n->shape, ok, ctx) : 0;
    /* update_part: a tensor of at most ENGINE_SLICE_MIN elements belongs
       to the last part (engine_slice); anything longer that is not in
       vectors, to none */
    bool small = cg->slice_part && !k && shape_numel(&n->shape) > 1;
    if (small && (shape_numel(&n->shape) > ENGINE_SLICE_MIN || cg->depth > 0)) cg->slice_failed = true;
    LLVMBasicBlockRef after = small ? slice_last_begin(cg) : NULL;
    if (k) {
      cg_vec_each(cg, &n->shape, k, store_elem_value, &e);
    } else {
      /* in a row loop, elements that each call libm are a loop too:
         unrolled, they were as many copies for the SLP vectorizer and the
         back end, with nothing to vectorize (circles: 0.86x the compile
         time, the same steps/s); two calls cost less than a loop */
      if (cg->depth > 0 && shape_numel(&n->shape) > LIBM_UNROLL && is_elementwise(n) && calls_libm(cg, n))
        cg_iter_loop(cg, &el, &n->shape);
      else
        cg_iter_shape(cg, &el, &n->shape);
      FOR_EACH(cg, el) { store_elem_value(cg, el.idx, &e); }
    }
    if (small) slice_last_end(cg, after);
  }
}

/* Elementwise ops, and views that must be materialized. */
static LLVMValueRef elementwise_value(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx, void *ctx) {
  (void)ctx;
  if (is_elementwise(n)) return cg_elem_value(cg, n, row, idx);
  /* a view read through itself (its storage was switched to memory) */
  Store saved = cg->st[n->id];
  cg->st[n->id].kind = ST_VIEW;
  LLVMValueRef v = cg_load_elem(cg, n, row, idx);
  cg->st[n->id] = saved;
  return v;
}

static bool elementwise_vec_ok(CG *cg, const Node *n, int k, void *ctx) {
  (void)ctx;
  if (is_elementwise(n)) return cg_vec_elem_ok(cg, n, k);
  Store saved = cg->st[n->id];
  cg->st[n->id].kind = ST_VIEW;
  bool ok = cg_vec_ok(cg, n, k);
  cg->st[n->id] = saved;
  return ok;
}

static void emit_elementwise(CG *cg, const Node *n) {
  emit_each_element(cg, n, elementwise_value, NULL, elementwise_vec_ok);
}

/* sum and mean over an axis other than the last, as a loop over it
 * around the results, unrolled (cg_loop_outside): each result is its
 * first term, then the others added in order, as emit_reduce's unrolled
 * sum. The results are the lanes of one vector, a stack slot LLVM keeps
 * in a register (the SLP vectorizer left 16 scalar sums scalar). */
static void emit_reduce_outside(CG *cg, const Node *n) {
  const Node *a = n->in[0];
  int axis = n->attr.axis;
  int64_t len = a->shape.dim[axis], outs = shape_numel(&n->shape);
  LLVMTypeRef vt = LLVMVectorType(cg->T, (unsigned)outs), i32 = LLVMInt32TypeInContext(cg->ctx);
  LLVMValueRef slot = LLVMBuildAlloca(cg->alloc, vt, "acc");
  Iter rows, out, in;
  Shape rest = shape1(len - 1);
  cg_iter_rows(cg, &rows, n);
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0], idx[MAX_RANK], v;
    /* the vector of a's values at position at of the axis */
#define A_VECTOR(at)                                                                                 \
  v = LLVMGetPoison(vt);                                                                             \
  cg_iter_shape(cg, &out, &n->shape);                                                                \
  FOR_EACH(cg, out) {                                                                                \
    for (int d = 0, j = 0; d < a->shape.rank; d++) idx[d] = d == axis ? (at) : out.idx[j++];         \
    v = LLVMBuildInsertElement(cg->b, v, cg_load_elem(cg, a, row, idx), LLVMConstInt(i32, (unsigned)out.k, 0), ""); \
  }
    A_VECTOR(ci(cg, 0));
    LLVMBuildStore(cg->b, v, slot);
    cg_iter_loop(cg, &in, &rest);
    FOR_EACH(cg, in) {
      LLVMValueRef at = iadd(cg, in.idx[0], ci(cg, 1));
      A_VECTOR(at);
      LLVMBuildStore(cg->b, cg_facc(cg, LLVMBuildLoad2(cg->b, vt, slot, ""), v), slot);
    }
    LLVMValueRef sum = LLVMBuildLoad2(cg->b, vt, slot, "");
    cg_iter_shape(cg, &out, &n->shape);
    FOR_EACH(cg, out) {
      LLVMValueRef result = LLVMBuildExtractElement(cg->b, sum, LLVMConstInt(i32, (unsigned)out.k, 0), "");
      if (n->op == OP_MEAN) result = b_fdiv(cg, result, cT(cg, (double)len));
      cg_name_value(cg, result, n);
      cg_store_elem(cg, n, row, out.idx, result);
    }
#undef A_VECTOR
  }
}

/* The results of a reduction, each the sum of `terms` terms (a vector
 * loop when vec): a loop when each sum is one, so that the loop is written
 * once and not once per result (a per-channel sum of a convolution's
 * gradient over its positions); unrolled when the sums are too. */
static void out_iter(CG *cg, Iter *out, const Shape *s, bool vec, int64_t terms) {
  if (shape_numel(s) > 1 && (vec || !cg_would_unroll2(cg, shape_numel(s), terms)))
    cg_iter_loop(cg, out, s);
  else
    cg_iter_shape(cg, out, s);
}

/* sum and mean over one axis or all of them. */
static void emit_reduce(CG *cg, const Node *n) {
  const Node *a = n->in[0];
  bool all = n->attr.axis == AXIS_ALL;
  if (!all && n->attr.axis < a->shape.rank - 1 &&
      cg_loop_outside(cg, a->shape.dim[n->attr.axis], shape_numel(&n->shape))) {
    emit_reduce_outside(cg, n);
    return;
  }
  /* the reduced index space: every element, or the one axis */
  Shape red = all ? a->shape : shape1(a->shape.dim[n->attr.axis]);
  Iter rows, out, in;
  /* every element, or the last axis: contiguous runs, summed in vectors */
  int k = all ? a->shape.rank : n->attr.axis == a->shape.rank - 1 ? 1 : 0;
  cg_iter_rows(cg, &rows, n);
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0];
    out_iter(cg, &out, &n->shape, k && cg_vec_sum_ok(cg, a, k), shape_numel(&red));
    FOR_EACH(cg, out) {
      LLVMValueRef idx[MAX_RANK], result;
      if (k && cg_vec_sum_ok(cg, a, k)) {
        result = cg_vec_sum(cg, a, row, out.idx, k);
      } else {
        Acc sum = cg_acc_new(cg, 0, cg_would_unroll(cg, shape_numel(&red)));
        cg_iter_shape(cg, &in, &red);
        FOR_EACH(cg, in) {
          for (int d = 0, j = 0; d < a->shape.rank; d++)
            idx[d] = all ? in.idx[d] : d == n->attr.axis ? in.idx[0] : out.idx[j++];
          cg_acc_add(cg, &sum, cg_load_elem(cg, a, row, idx));
        }
        result = cg_acc_get(cg, &sum);
      }
      if (n->op == OP_MEAN) result = b_fdiv(cg, result, cT(cg, (double)shape_numel(&red)));
      cg_name_value(cg, result, n);
      cg_store_elem(cg, n, row, out.idx, result);
    }
  }
}

/* The last-axis ops: logsumexp (one value per run of the last axis),
 * softmax and log_softmax (one per element), from each run's max m and
 * s = sum exp(x - m). */
static void emit_lastaxis(CG *cg, const Node *n) {
  const Node *a = n->in[0];
  int last = a->shape.rank - 1;
  Shape outer = a->shape;
  outer.rank = last;
  LLVMValueRef len = ci(cg, a->shape.dim[last]);
  Iter rows, ol, kl;
  cg_iter_rows(cg, &rows, n);
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0];
    cg_iter_shape(cg, &ol, &outer);
    FOR_EACH(cg, ol) {
      LLVMValueRef idx[MAX_RANK];
      for (int d = 0; d < last; d++) idx[d] = ol.idx[d];
      bool unrolled = cg_would_unroll(cg, a->shape.dim[last]);
      Acc mx = cg_acc_new(cg, -INFINITY, unrolled);
      cg_iter_range(cg, &kl, len);
      FOR_EACH(cg, kl) {
        idx[last] = kl.idx[0];
        cg_acc_max(cg, &mx, cg_load_elem(cg, a, row, idx));
      }
      LLVMValueRef m = cg_acc_get(cg, &mx);
      /* the exps, calls of libm, are a loop in a row loop (as
         emit_each_element's): unrolled copies of a call gave the back end
         nothing to vectorize; the sum adds them in the same order */
      bool exp_loop = cg->depth > 0 && a->shape.dim[last] > LIBM_UNROLL;
      Acc sum = cg_acc_new(cg, 0, unrolled && !exp_loop);
      Shape klen = shape1(a->shape.dim[last]);
      if (exp_loop) cg_iter_loop(cg, &kl, &klen); else cg_iter_range(cg, &kl, len);
      FOR_EACH(cg, kl) {
        idx[last] = kl.idx[0];
        cg_acc_add(cg, &sum, cg_intrinsic1(cg, "llvm.exp", b_fsub(cg, cg_load_elem(cg, a, row, idx), m)));
      }
      LLVMValueRef s = cg_acc_get(cg, &sum);
      if (op_info[n->op].cls == OPC_LASTREDUCE) {
        /* logsumexp: m + log s, or m itself when it is infinite */
        LLVMValueRef finite =
            LLVMBuildFCmp(cg->b, LLVMRealOLT, cg_intrinsic1(cg, "llvm.fabs", m), cT(cg, INFINITY), "");
        LLVMValueRef r = sel(cg, finite, b_fadd(cg, m, cg_intrinsic1(cg, "llvm.log", s)), m);
        cg_name_value(cg, r, n);
        cg_store_elem(cg, n, row, ol.idx, r);
      } else {
        LLVMValueRef logs = n->op == OP_LOG_SOFTMAX ? cg_intrinsic1(cg, "llvm.log", s) : NULL;
        if (exp_loop && n->op == OP_SOFTMAX) cg_iter_loop(cg, &kl, &klen); else cg_iter_range(cg, &kl, len);
        FOR_EACH(cg, kl) {
          idx[last] = kl.idx[0];
          LLVMValueRef z = b_fsub(cg, cg_load_elem(cg, a, row, idx), m);
          LLVMValueRef r = n->op == OP_SOFTMAX ? b_fdiv(cg, cg_intrinsic1(cg, "llvm.exp", z), s) : b_fsub(cg, z, logs);
          cg_name_value(cg, r, n);
          cg_store_elem(cg, n, row, idx, r);
        }
      }
    }
  }
}

/* A dot product's terms in vectors along k (cg_vec_reduce): A[i, k] or
 * A[k], times B[k] or B[k, j] read as its transposed operand's [j, k]. */
typedef struct DotTerm {
  const Node *A, *B;
  LLVMValueRef row, i, j;
} DotTerm;

static LLVMValueRef dot_term(CG *cg, LLVMValueRef at, void *p) {
  const DotTerm *t = p;
  LLVMValueRef ia[2] = {t->A->shape.rank == 2 ? t->i : at, at}, ib[2] = {t->j, at};
  LLVMValueRef b = t->B->shape.rank == 1 ? cg_load_elem(cg, t->B, t->row, &at) : cg_load_elem(cg, t->B->in[0], t->row, ib);
  return b_fmul(cg, cg_load_elem(cg, t->A, t->row, ia), b);
}

static bool dot_vec_ok(CG *cg, const Node *A, const Node *B, int64_t k) {
  if (!cg_vec_reduce_ok(cg, k) || !cg_vec_ok(cg, A, 1)) return false;
  if (B->shape.rank == 1) return cg_vec_ok(cg, B, 1);
  return B->op == OP_TRANSPOSE && cg->st[B->id].kind == ST_VIEW && B->in[0]->shape.rank == 2 && cg_vec_ok(cg, B->in[0], 1);
}

static void emit_matmul(CG *cg, const Node *n) {
  const Node *A = n->in[0], *B = n->in[1];
  int64_t m = A->shape.rank == 2 ? A->shape.dim[0] : 1;
  int64_t k = A->shape.dim[A->shape.rank - 1];
  int64_t nn = B->shape.rank == 2 ? B->shape.dim[1] : 1;
  Shape out = shape2(m, nn);
  Iter rows, ij, q;
  cg_iter_rows(cg, &rows, n);
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0], bv[64];
    /* a vector B read by every unrolled result: its k values loaded once
       per row, not once per result for early-cse to merge (circles: 0.92x
       the instructions of its compile) */
    bool pre = B->shape.rank == 1 && m > 1 && k <= 64 && cg_would_unroll2(cg, m, k);
    for (int64_t p = 0; pre && p < k; p++) {
      LLVMValueRef ip = ci(cg, p);
      bv[p] = cg_load_elem(cg, B, row, &ip);
    }
    /* each result a vector sum, a loop: the results are a loop too, not
       that loop written once per result (the 10 outputs of a layer whose
       product is not a GEMM) */
    bool vec = dot_vec_ok(cg, A, B, k);
    if (vec && m * nn > 1)
      cg_iter_loop(cg, &ij, &out);
    else
      cg_iter_shape(cg, &ij, &out);
    FOR_EACH(cg, ij) {
      LLVMValueRef i = ij.idx[0], j = ij.idx[1], v;
      if (vec) {
        v = cg_vec_reduce(cg, k, dot_term, &(DotTerm){A, B, row, i, j});
      } else {
        Acc acc = cg_acc_new(cg, 0, cg_would_unroll(cg, k));
        cg_iter_range(cg, &q, ci(cg, k));
        FOR_EACH(cg, q) {
          LLVMValueRef ia[2] = {A->shape.rank == 2 ? i : q.idx[0], q.idx[0]};
          LLVMValueRef ib[2] = {q.idx[0], j};
          LLVMValueRef b = pre ? bv[q.k] : cg_load_elem(cg, B, row, ib);
          cg_acc_add(cg, &acc, b_fmul(cg, cg_load_elem(cg, A, row, ia), b));
        }
        v = cg_acc_get(cg, &acc);
      }
      LLVMValueRef o[2];
      int r = 0;
      if (A->shape.rank == 2) o[r++] = i;
      if (B->shape.rank == 2) o[r++] = j;
      cg_name_value(cg, v, n);
      cg_store_elem(cg, n, row, o, v);
    }
  }
}

/* outer(a, b)[i, j] = a[i] * b[j]: in vectors along j (a[i] splat). */
static LLVMValueRef outer_value(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx, void *ctx) {
  (void)ctx;
  return b_fmul(cg, cg_load_elem(cg, n->in[0], row, &idx[0]), cg_load_elem(cg, n->in[1], row, &idx[1]));
}

static bool outer_vec_ok(CG *cg, const Node *n, int k, void *ctx) {
  (void)ctx;
  return k == 1 && cg_vec_ok(cg, n->in[1], 1);
}

static void emit_outer(CG *cg, const Node *n) { emit_each_element(cg, n, outer_value, NULL, outer_vec_ok); }

static bool always_vec(CG *cg, const Node *n, int k, void *ctx) {
  (void)cg, (void)n, (void)k, (void)ctx;
  return true;
}

static void store_zero(CG *cg, LLVMValueRef *idx, void *p) {
  const EachElem *e = p;
  cg_store_elem(cg, e->n, e->row, idx, cT(cg, 0));
}

static void zero_node(CG *cg, const Node *n, LLVMValueRef row) {
  EachElem e = {n, row, NULL, NULL};
  int k = cg_vec_axes(cg, n, &n->shape, always_vec, NULL);
  if (k) {
    cg_vec_each(cg, &n->shape, k, store_zero, &e);
    return;
  }
  Iter el;
  cg_iter_shape(cg, &el, &n->shape);
  FOR_EACH(cg, el) { store_zero(cg, el.idx, &e); }
}

/* out[i] += v, for accumulations whose order follows the source */
static void add_into(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx, LLVMValueRef v) {
  LLVMValueRef lin = cg_linear_index(cg, &n->shape, idx);
  cg_mem_store(cg, n, row, lin, cg_facc(cg, cg_mem_load(cg, n, row, lin), v));
}

/* The first axis from which a sum_to reduces every axis to 1 and none
 * before it ([C,H,W] to [C,1,1]: 1), or -1 when it is not of that form. */
static int suffix_sum(const Node *n) {
  const Shape *to = &n->shape, *from = &n->in[0]->shape;
  if (to->rank != from->rank) return -1;
  int k = to->rank;
  while (k > 0 && to->dim[k - 1] == 1) k--;
  for (int d = 0; d < k; d++)
    if (to->dim[d] != from->dim[d]) return -1;
  return k < to->rank ? k : -1;
}

/* sum_to: add every element of the operand into its broadcast source.
 * Reducing trailing axes (a per-channel sum), each result is one
 * accumulation in a register, as a reduction's. */
static void emit_sum_to(CG *cg, const Node *n) {
  const Node *a = n->in[0];
  Iter rows, el;
  int k = suffix_sum(n);
  if (k >= 0) {
    Shape inner = a->shape;
    inner.rank = a->shape.rank - k;
    for (int d = 0; d < inner.rank; d++) inner.dim[d] = a->shape.dim[k + d];
    cg_iter_rows(cg, &rows, n);
    FOR_EACH(cg, rows) {
      LLVMValueRef row = rows.idx[0];
      Iter out, in;
      out_iter(cg, &out, &n->shape, cg_vec_sum_ok(cg, a, inner.rank), shape_numel(&inner));
      FOR_EACH(cg, out) {
        LLVMValueRef v;
        if (cg_vec_sum_ok(cg, a, inner.rank)) {
          v = cg_vec_sum(cg, a, row, out.idx, inner.rank);
        } else {
          Acc sum = cg_acc_new(cg, 0, cg_would_unroll(cg, shape_numel(&inner)));
          cg_iter_shape(cg, &in, &inner);
          FOR_EACH(cg, in) {
            LLVMValueRef idx[MAX_RANK];
            for (int d = 0; d < a->shape.rank; d++) idx[d] = d < k ? out.idx[d] : in.idx[d - k];
            cg_acc_add(cg, &sum, cg_load_elem(cg, a, row, idx));
          }
          v = cg_acc_get(cg, &sum);
        }
        cg_name_value(cg, v, n);
        cg_store_elem(cg, n, row, out.idx, v);
      }
    }
    return;
  }
  cg_iter_rows(cg, &rows, n);
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0];
    zero_node(cg, n, row);
    cg_iter_shape(cg, &el, &a->shape);
    FOR_EACH(cg, el) {
      LLVMValueRef oi[MAX_RANK];
      cg_broadcast_index(cg, &n->shape, &a->shape, el.idx, oi);
      add_into(cg, n, row, oi, cg_load_elem(cg, a, row, el.idx));
    }
  }
}

/* A row of batch_sum's operand added into the sum, or the sum scaled by
 * 1/n (batch_mean). */
typedef struct BatchRow {
  const Node *n, *a;
  LLVMValueRef row;
} BatchRow;

static bool batch_vec_ok(CG *cg, const Node *n, int k, void *ctx) {
  (void)n;
  return cg_vec_ok(cg, ((BatchRow *)ctx)->a, k);
}

static void batch_add_row(CG *cg, LLVMValueRef *idx, void *p) {
  const BatchRow *b = p;
  add_into(cg, b->n, ci(cg, 0), idx, cg_load_elem(cg, b->a, b->row, idx));
}

static void batch_scale(CG *cg, LLVMValueRef *idx, void *p) {
  const BatchRow *b = p;
  LLVMValueRef lin = cg_linear_index(cg, &b->n->shape, idx);
  LLVMValueRef inv_n = cg->vidx ? cg_splat(cg, cg->inv_n) : cg->inv_n;
  cg_mem_store(cg, b->n, ci(cg, 0), lin, b_fmul(cg, cg_mem_load(cg, b->n, ci(cg, 0), lin), inv_n));
}

/* batch_sum / batch_mean: sum the rows (a per-batch operand counts n times;
 * in grad_part, whose n rows are a shard of a batch of 1 / inv_n, its mean
 * is its share, n inv_n times it). */
static void emit_batch(CG *cg, const Node *n) {
  const Node *a = n->in[0];
  LLVMValueRef zero = ci(cg, 0);
  Iter el, rows;
  if (!a->batched) {
    LLVMValueRef rows_n = LLVMBuildSIToFP(cg->b, cg->n, cg->T, "");
    cg_iter_shape(cg, &el, &n->shape);
    FOR_EACH(cg, el) {
      LLVMValueRef v = cg_load_elem(cg, a, zero, el.idx);
      if (n->op == OP_BATCH_SUM) v = b_fmul(cg, v, rows_n);
      if (n->op == OP_BATCH_MEAN && cg->kind == FN_GRAD_PART) v = b_fmul(cg, b_fmul(cg, v, rows_n), cg->inv_n);
      cg_store_elem(cg, n, zero, el.idx, v);
    }
    return;
  }
  zero_node(cg, n, zero);
  cg_iter_range(cg, &rows, cg->n);
  FOR_EACH(cg, rows) {
    BatchRow br = {n, a, rows.idx[0]};
    int k = cg_vec_axes(cg, n, &n->shape, batch_vec_ok, &br);
    if (k) {
      cg_vec_each(cg, &n->shape, k, batch_add_row, &br);
    } else {
      cg_iter_shape(cg, &el, &n->shape);
      FOR_EACH(cg, el) { batch_add_row(cg, el.idx, &br); }
    }
  }
  if (n->op == OP_BATCH_MEAN) {
    BatchRow br = {n, a, zero};
    int k = cg_vec_axes(cg, n, &n->shape, always_vec, NULL);
    if (k) {
      cg_vec_each(cg, &n->shape, k, batch_scale, &br);
    } else {
      cg_iter_shape(cg, &el, &n->shape);
      FOR_EACH(cg, el) { batch_scale(cg, el.idx, &br); }
    }
  }
}

/* dropout_hash (ir.c) in IR: a splitmix64 finalizer over the key and the
 * step, then over that and the element. */
/* The constant c as an i64, or in every lane of t's i64 vector. */
static LLVMValueRef k64(CG *cg, LLVMTypeRef t, uint64_t c) {
  LLVMValueRef k = LLVMConstInt(cg->i64, c, 0);
  if (LLVMGetTypeKind(t) != LLVMVectorTypeKind) return k;
  LLVMValueRef e[64];
  unsigned n = LLVMGetVectorSize(t);
  for (unsigned i = 0; i < n; i++) e[i] = k;
  return LLVMConstVector(e, n);
}

static LLVMValueRef mix64(CG *cg, LLVMValueRef h) {
  LLVMBuilderRef b = cg->b;
  LLVMTypeRef t = LLVMTypeOf(h); /* i64, or a vector of them (vector loops) */
  h = LLVMBuildAdd(b, h, k64(cg, t, 0x9E3779B97F4A7C15ull), "");
  h = LLVMBuildMul(b, LLVMBuildXor(b, h, LLVMBuildLShr(b, h, k64(cg, t, 30), ""), ""), k64(cg, t, 0xBF58476D1CE4E5B9ull), "");
  h = LLVMBuildMul(b, LLVMBuildXor(b, h, LLVMBuildLShr(b, h, k64(cg, t, 27), ""), ""), k64(cg, t, 0x94D049BB133111EBull), "");
  return LLVMBuildXor(b, h, LLVMBuildLShr(b, h, k64(cg, t, 31), ""), "");
}

/* dropout in training: a * mask / (1 - rate), the mask from the key, the
 * step (the state operand) and each element's place in the batch (a
 * grad_part's rows start at its `first` row of the batch, so that shards
 * draw the masks one call over the whole batch would): an element is kept
 * when the hash of the seed and its index, as a uniform in [0, 1), is at
 * least the rate. */
typedef struct DropMask {
  LLVMValueRef seed;
  double scale, rate;
  int64_t numel;
} DropMask;

/* In a vector loop (cg_vec_each) the lanes are elements elem, elem + 1,
 * ...: each lane computes the scalar hash of its own element. */
static LLVMValueRef dropout_value(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx, void *ctx) {
  const DropMask *m = ctx;
  LLVMValueRef batch_row = cg->first ? iadd(cg, cg->first, row) : row;
  LLVMValueRef elem = iadd(cg, imul(cg, batch_row, ci(cg, m->numel)), cg_linear_index(cg, &n->shape, idx));
  LLVMValueRef seed = m->seed;
  LLVMTypeRef dbl = LLVMDoubleTypeInContext(cg->ctx), ft = cg->T;
  LLVMValueRef scale = LLVMConstReal(dbl, 0x1p-53);
  if (cg->lanes > 1) {
    unsigned vl = (unsigned)cg->lanes;
    LLVMTypeRef vt = LLVMVectorType(cg->i64, vl);
    LLVMValueRef lane[64], zeros = LLVMConstNull(LLVMVectorType(LLVMInt32TypeInContext(cg->ctx), vl));
    for (unsigned l = 0; l < vl; l++) lane[l] = ci(cg, l);
    elem = LLVMBuildShuffleVector(cg->b, LLVMBuildInsertElement(cg->b, LLVMGetPoison(vt), elem, ci(cg, 0), ""),
                                  LLVMGetPoison(vt), zeros, "");
    elem = LLVMBuildAdd(cg->b, elem, LLVMConstVector(lane, vl), "");
    seed = LLVMBuildShuffleVector(cg->b, LLVMBuildInsertElement(cg->b, LLVMGetPoison(vt), seed, ci(cg, 0), ""),
                                  LLVMGetPoison(vt), zeros, "");
    dbl = LLVMVectorType(dbl, vl), ft = LLVMVectorType(ft, vl);
    LLVMValueRef e[64];
    for (unsigned l = 0; l < vl; l++) e[l] = scale;
    scale = LLVMConstVector(e, vl);
  }
  LLVMValueRef h = mix64(cg, LLVMBuildXor(cg->b, seed, elem, ""));
  LLVMValueRef u = LLVMBuildFMul(cg->b, LLVMBuildUIToFP(cg->b, LLVMBuildLShr(cg->b, h, k64(cg, LLVMTypeOf(h), 11), ""), dbl, ""),
                                 scale, "");
  if (cg->L->elem_size == 4) u = LLVMBuildFPTrunc(cg->b, u, ft, "");
  LLVMValueRef keep = LLVMBuildFCmp(cg->b, LLVMRealOGE, u, cT(cg, m->rate), "");
  return sel(cg, keep, b_fmul(cg, cg_load_elem(cg, n->in[0], row, idx), cT(cg, m->scale)), cT(cg, 0));
}

static bool dropout_vec_ok(CG *cg, const Node *n, int k, void *ctx) {
  (void)ctx;
  return cg_vec_ok(cg, n->in[0], k);
}

static void emit_dropout(CG *cg, const Node *n) {
  LLVMValueRef zero_idx[MAX_RANK] = {0};
  LLVMValueRef stepf = cg_load_elem(cg, n->in[1], ci(cg, 0), zero_idx);
  LLVMValueRef step = LLVMBuildFPToUI(cg->b, stepf, cg->i64, "step");
  DropMask m = {.seed = mix64(cg, LLVMBuildXor(cg->b, ci(cg, (int64_t)((uint64_t)(uint32_t)n->attr.axis << 32)), step, "")),
                .scale = 1 / (1 - n->attr.value),
                .rate = n->attr.value,
                .numel = shape_numel(&n->shape)};
  emit_each_element(cg, n, dropout_value, &m, dropout_vec_ok);
}

/* n's values stored from its view (the operand its function reads). */
static LLVMValueRef copy_value(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx, void *ctx) {
  (void)ctx;
  return cg_load_elem(cg, n->in[cg_evaluation(cg) ? 1 : 0], row, idx);
}

static bool copy_vec_ok(CG *cg, const Node *n, int k, void *ctx) {
  (void)ctx;
  return cg_vec_ok(cg, n->in[cg_evaluation(cg) ? 1 : 0], k);
}

static void emit_copy(CG *cg, const Node *n) { emit_each_element(cg, n, copy_value, NULL, copy_vec_ok); }

/* The table row an index value x selects, as interp.c's table_row: x
 * clamped to [0, rows - 1] (NaN to 0) before it becomes an integer. */
static LLVMValueRef table_row(CG *cg, LLVMValueRef x, int64_t rows) {
  LLVMValueRef lo = cT(cg, 0), hi = cT(cg, (double)(rows - 1));
  x = sel(cg, LLVMBuildFCmp(cg->b, LLVMRealOGE, x, lo, ""), x, lo);
  x = sel(cg, fgt(cg, x, hi), hi, x);
  return LLVMBuildFPToSI(cg->b, x, cg->i64, "");
}

/* A row of the table copied to a row of the gather's result, in vectors
 * (cg_vec_range). */
typedef struct RowCopy {
  LLVMValueRef from, to;
} RowCopy;

static void copy_vec(CG *cg, LLVMValueRef i, void *p) {
  const RowCopy *c = p;
  LLVMValueRef src = LLVMBuildInBoundsGEP2(cg->b, cg->T, c->from, &i, 1, "");
  LLVMValueRef dst = LLVMBuildInBoundsGEP2(cg->b, cg->T, c->to, &i, 1, "");
  cg_vec_store(cg, cg_vec_load(cg, src), dst);
}

/* gather: out[i..., d] = table[index[i...], d]. */
static void emit_gather(CG *cg, const Node *n) {
  const Node *table = n->in[0], *index = n->in[1];
  int r = index->shape.rank;
  int64_t dim = table->shape.dim[1];
  Iter rows, el;
  /* each index's row a vector copy, when both are in memory and the rows
     are not unrolled */
  bool vec = cg->vec_loops && cg->vl >= 2 && dim >= 4 && cg->st[table->id].kind == ST_MEM &&
             cg->st[n->id].kind == ST_MEM && !cg_would_unroll(cg, shape_numel(&n->shape));
  cg_iter_rows(cg, &rows, n);
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0];
    if (vec) {
      Iter pos;
      cg_flush(cg, table);
      cg_forget_node(cg, n);
      cg_iter_loop(cg, &pos, &index->shape);
      FOR_EACH(cg, pos) {
        LLVMValueRef t = table_row(cg, cg_load_elem(cg, index, row, pos.idx), table->shape.dim[0]);
        LLVMValueRef oi[MAX_RANK];
        for (int d = 0; d < r; d++) oi[d] = pos.idx[d];
        oi[r] = ci(cg, 0);
        RowCopy c = {cg_elem_ptr(cg, table, ci(cg, 0), imul(cg, t, ci(cg, dim))),
                     cg_elem_ptr(cg, n, row, cg_linear_index(cg, &n->shape, oi))};
        cg_vec_range(cg, ci(cg, dim), copy_vec, &c);
      }
    } else {
      cg_iter_shape(cg, &el, &n->shape);
      FOR_EACH(cg, el) {
        LLVMValueRef ti[2] = {table_row(cg, cg_load_elem(cg, index, row, el.idx), table->shape.dim[0]), el.idx[r]};
        LLVMValueRef v = cg_load_elem(cg, table, ci(cg, 0), ti);
        cg_name_value(cg, v, n);
        cg_store_elem(cg, n, row, el.idx, v);
      }
    }
  }
}

/* scatter_add: each row of dy added at its index, over the batch rows in
 * order (as the interpreter). */
static void emit_scatter(CG *cg, const Node *n) {
  const Node *dy = n->in[0], *index = n->in[1];
  LLVMValueRef zero = ci(cg, 0);
  Iter rows, pos, el;
  zero_node(cg, n, zero);
  if (dy->batched || index->batched)
    cg_iter_range(cg, &rows, cg->n);
  else
    cg_iter_range(cg, &rows, ci(cg, 1));
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0];
    if (cg_loop_outside(cg, shape_numel(&index->shape), n->shape.dim[1]))
      cg_iter_loop(cg, &pos, &index->shape); /* each index's row of dy unrolled, the indices a loop */
    else
      cg_iter_shape(cg, &pos, &index->shape);
    FOR_EACH(cg, pos) {
      LLVMValueRef at = table_row(cg, cg_load_elem(cg, index, row, pos.idx), n->shape.dim[0]);
      LLVMValueRef di[MAX_RANK];
      for (int d = 0; d < index->shape.rank; d++) di[d] = pos.idx[d];
      cg_iter_range(cg, &el, ci(cg, n->shape.dim[1]));
      FOR_EACH(cg, el) {
        di[index->shape.rank] = el.idx[0];
        add_into(cg, n, zero, (LLVMValueRef[]){at, el.idx[0]}, cg_load_elem(cg, dy, row, di));
      }
    }
  }
}

static void emit_node(CG *cg, const Node *n) {
  switch (op_info[n->op].cls) {
  case OPC_LEAF:
    return;
  case OPC_UNARY: case OPC_BINARY: case OPC_TRANSPOSE: case OPC_BROADCAST: case OPC_RESHAPE:
  case OPC_CONCAT: case OPC_SLICE:
    if (channel_affine_ok(cg, n))
      channel_affine(cg, n);
    else if (window_pool_relu_ok(cg, n))
      window_pool_relu(cg, n);
    else
      emit_elementwise(cg, n);
    return;
  case OPC_REDUCE:
    emit_reduce(cg, n);
    return;
  case OPC_LASTREDUCE: case OPC_LASTAXIS:
    emit_lastaxis(cg, n);
    return;
  case OPC_MATMUL:
    if (!gemm_try_matmul(cg, n)) emit_matmul(cg, n);
    return;
  case OPC_OUTER:
    emit_outer(cg, n);
    return;
  case OPC_SUM_TO:
    emit_sum_to(cg, n);
    return;
  case OPC_DROPOUT:
    if (cg_evaluation(cg))
      emit_elementwise(cg, n); /* evaluation: a copy of the operand (a result stored) */
    else
      emit_dropout(cg, n);
    return;
  case OPC_MODE:
    emit_copy(cg, n); /* a view, unless a result */
    return;
  case OPC_GATHER:
    emit_gather(cg, n);
    return;
  case OPC_SCATTER:
    emit_scatter(cg, n);
    return;
  case OPC_BATCH:
    if (gemm_batch_outer_ok(cg, n))
      gemm_batch_outer(cg, n);
    else if (window_batch_dw_ok(cg, n))
      window_batch_dw(cg, n);
    else if (channel_sum_ok(cg, n))
      channel_sum(cg, n);
    else
      emit_batch(cg, n);
    return;
  case OPC_MOMENTS:
    channel_moments_emit(cg, n);
    return;
  case OPC_WINDOW: case OPC_WINDOW2:
    window_emit(cg, n);
    return;
  }
}

/* Does node i of the plan get code of its own at its place in the
 * function? Not leaves, nodes computed where they are read, nodes read
 * from the buffer (update's gradients), nor nodes fused into a GEMM that
 * runs at its sink. */
static bool emits_here(const CG *cg, int i) {
  return cg->need[i] && op_info[cg->g->nodes[i]->op].cls != OPC_LEAF && cg->st[i].kind == ST_MEM &&
         !cg->given[i] && !cg->fused_into[i];
}

/* Is n (in memory) in a stack slot of its own, or the frame's? */
static bool in_slot(const CG *cg, const Node *n) {
  LLVMValueRef base = cg->st[n->id].base;
  return base && (LLVMIsAAllocaInst(base) || base == cg->frame);
}

/* ---- per-channel chains ----
 *
 * Consecutive elementwise nodes without a batch and of one shape (a
 * normalization's per-channel statistics, scales and their gradients:
 * vectors of C values) are one vector loop, each node's element computed
 * and stored in turn at each index, not one loop a node. Each element is
 * computed as its own loop would, so the results are the same bits. A
 * member may read another member, or memory a member writes (an update
 * written in place), only at its own index. */

enum { CHAIN_MAX = 64 };

typedef struct Chain {
  const Node *n[CHAIN_MAX];
  int len;
} Chain;

/* A member, of the nodes that get code here (emits_here): elementwise,
 * no batch, not a GEMM's epilogue, in a stack slot of its own or in the
 * buffer (an update written in place, a gradient), not the workspace,
 * whose nodes share ranges. */
static bool chain_member_ok(const CG *cg, const Node *n) {
  LLVMValueRef base = cg->st[n->id].base;
  return is_elementwise(n) && !n->batched && !cg->epi_gemm[n->id] && base && !(cg->adam_of && cg->adam_of[n->id]) &&
         (in_slot(cg, n) || base == cg->buf || base == cg->gbuf);
}

/* Does x share memory with a node of the chain (the same node, or the
 * same range of the buffer)? */
static bool chain_writes(const CG *cg, const Chain *c, const Node *x) {
  const Store *sx = &cg->st[x->id];
  if (sx->kind != ST_MEM) return false;
  for (int i = 0; i < c->len; i++) {
    const Store *sm = &cg->st[c->n[i]->id];
    if (c->n[i] == x) return true;
    if (sm->base == sx->base && sx->off < sm->off + shape_numel(&c->n[i]->shape) &&
        sm->off < sx->off + shape_numel(&x->shape) * (x->batched ? cg->max_batch : 1))
      return true;
  }
  return false;
}

/* Are x's reads (through inlined nodes and views) of memory the chain
 * writes all at the reader's own index? same: x is read at the index. */
static bool chain_reads_ok(const CG *cg, const Chain *c, const Node *x, const Shape *s, bool same) {
  switch (cg->st[x->id].kind) {
  case ST_MEM:
    return !chain_writes(cg, c, x) || (same && !x->batched && shape_numel(&x->shape) == shape_numel(s));
  case ST_INLINE:
    for (int k = 0; k < op_info[x->op].nin; k++)
      if (!chain_reads_ok(cg, c, x->in[k], s, same && shape_eq(&x->in[k]->shape, &x->shape))) return false;
    return true;
  case ST_VIEW: /* a reshape or if_training reads its operand at the same linear index */
    for (int k = 0; k < op_info[x->op].nin; k++)
      if (!chain_reads_ok(cg, c, x->in[k], s,
                          same && (x->op == OP_RESHAPE || x->op == OP_IF_TRAINING) && !x->batched &&
                              !x->in[k]->batched && shape_numel(&x->in[k]->shape) == shape_numel(&x->shape)))
        return false;
    return true;
  case ST_NONE: case ST_CONST: case ST_VALUE:
    return true;
  }
  return true;
}

/* A scalar between the chain's nodes that reads nothing the chain
 * writes and has a stack slot of its own: computed before the chain's
 * loop (a count less one). */
static bool chain_scalar_ok(const CG *cg, const Chain *c, const Node *n) {
  if (!is_elementwise(n) || n->batched || shape_numel(&n->shape) != 1 || cg->st[n->id].kind != ST_MEM ||
      !in_slot(cg, n) || cg->epi_gemm[n->id])
    return false;
  for (int k = 0; k < op_info[n->op].nin; k++)
    if (!chain_reads_ok(cg, c, n->in[k], &n->shape, false)) return false;
  return true;
}

typedef struct ChainRow {
  const Chain *c;
  LLVMValueRef row;
} ChainRow;

static void chain_body(CG *cg, LLVMValueRef *idx, void *p) {
  const ChainRow *r = p;
  for (int i = 0; i < r->c->len; i++) {
    EachElem e = {r->c->n[i], r->row, elementwise_value, NULL};
    store_elem_value(cg, idx, &e);
  }
}

/* Nodes i, i+1, ... that make a chain with node i, emitted as one loop
 * when more than one: returns the index after the chain, or i when node
 * i is not emitted this way. */
static int emit_chain(CG *cg, int i) {
  const Graph *g = cg->g;
  const Node *first = g->nodes[i];
  if (!chain_member_ok(cg, first) || shape_numel(&first->shape) <= 1) return i;
  int k = cg_vec_axes(cg, first, &first->shape, elementwise_vec_ok, NULL);
  if (!k) return i;
  Chain c = {{first}, 1};
  const Node *hoist[CHAIN_MAX];
  int end = i + 1, nhoist = 0, hoisted = 0;
  for (int j = i + 1; j < g->len && c.len < CHAIN_MAX; j++) {
    const Node *n = g->nodes[j];
    if (!emits_here(cg, j)) continue;
    if (chain_scalar_ok(cg, &c, n) && nhoist < CHAIN_MAX) {
      hoist[nhoist++] = n; /* computed before the loop */
      continue;
    }
    if (!chain_member_ok(cg, n) || !shape_eq(&n->shape, &first->shape) ||
        cg_vec_axes(cg, n, &n->shape, elementwise_vec_ok, NULL) != k)
      break;
    c.n[c.len++] = n;
    bool ok = true;
    for (int m = 0; m < c.len && ok; m++)
      for (int a = 0; a < op_info[c.n[m]->op].nin && ok; a++)
        ok = chain_reads_ok(cg, &c, c.n[m]->in[a], &first->shape, shape_eq(&c.n[m]->in[a]->shape, &first->shape));
    if (!ok) {
      c.len--;
      break;
    }
    end = j + 1;
    hoisted = nhoist;
  }
  if (c.len < 2) return i;
  for (int h = 0; h < hoisted; h++) emit_node(cg, hoist[h]);
  Iter rows;
  cg_iter_rows(cg, &rows, first);
  FOR_EACH(cg, rows) {
    ChainRow r = {&c, rows.idx[0]};
    cg_vec_each(cg, &first->shape, k, chain_body, &r);
  }
  return end;
}

/* ---- storage ---- */

static bool is_view(const Node *n) {
  return n->op == OP_TRANSPOSE || n->op == OP_BROADCAST || n->op == OP_RESHAPE || n->op == OP_SLICE ||
         n->op == OP_CONCAT || n->op == OP_IF_TRAINING;
}

/* Bytes of a node's values for a batch of max_batch rows. */
static int64_t node_bytes(const CG *cg, const Node *n) {
  return shape_numel(&n->shape) * (n->batched ? cg->max_batch : 1) * cg->L->elem_size;
}

static void set_mem(CG *cg, const Node *n, LLVMValueRef base, int64_t off, int64_t row_stride) {
  cg->st[n->id] = (Store){.kind = ST_MEM, .base = base, .off = off, .row_stride = row_stride};
}

/* A computed node gets a stack slot when small (a slot of the frame in a
 * function built as segments), else a range of the workspace, which
 * plan_workspace chooses once every node's storage is known (until then
 * its base is NULL). */
static void place(CG *cg, const Node *n, bool materialize) {
  if (!materialize && (is_view(n) || (n->op == OP_DROPOUT && cg_evaluation(cg)))) {
    cg->st[n->id].kind = ST_VIEW;
    return;
  }
  int64_t bytes = node_bytes(cg, n);
  int64_t numel = shape_numel(&n->shape);
  int64_t slot_bytes = (bytes + 63) / 64 * 64; /* a slot of the frame, 64-byte aligned as a stack slot is */
  if (cg->split && bytes <= SMALL_NODE_BYTES && cg->frame_bytes + slot_bytes <= STACK_BUDGET) {
    set_mem(cg, n, cg->frame, cg->frame_bytes / cg->L->elem_size, numel);
    cg->frame_bytes += slot_bytes;
    return;
  }
  if (!cg->split && bytes <= SMALL_NODE_BYTES && cg->stack_bytes + bytes <= STACK_BUDGET) {
    LLVMTypeRef ty = LLVMArrayType2(cg->T, (uint64_t)(bytes / cg->L->elem_size));
    char name[128];
    LLVMValueRef slot = LLVMBuildAlloca(cg->alloc, ty, cg_llvm_name(cg, n, name, sizeof name));
    LLVMSetAlignment(slot, 64);
    cg->stack_bytes += bytes;
    set_mem(cg, n, slot, 0, numel);
    return;
  }
  set_mem(cg, n, NULL, 0, numel);
}

/* Can elementwise node n be computed inside its one reader c? Only when c
 * reads each of n's elements once, at c's own row and index. */
static bool can_inline(const Node *n, const Node *c) {
  if (!is_elementwise(n) || n->batched != c->batched) return false;
  switch (op_info[c->op].cls) {
  case OPC_UNARY: case OPC_BINARY:
    return shape_eq(&n->shape, &c->shape);
  case OPC_REDUCE: case OPC_SUM_TO: case OPC_BATCH:
    return true;
  case OPC_GATHER: case OPC_SCATTER: case OPC_MOMENTS:
  case OPC_LEAF: case OPC_LASTREDUCE: case OPC_LASTAXIS: case OPC_MATMUL: case OPC_OUTER: case OPC_TRANSPOSE:
  case OPC_BROADCAST: case OPC_RESHAPE: case OPC_CONCAT: case OPC_SLICE: case OPC_DROPOUT: case OPC_MODE: case OPC_WINDOW:
  case OPC_WINDOW2:
    return false;
  }
  return false;
}

/* Where node i is evaluated: itself, or the node it is inlined into. */
static int eval_point(const CG *cg, const Node **reader, int i) {
  for (;;) {
    if (cg->st[i].kind == ST_INLINE)
      i = reader[i]->id;
    else if (cg->fused_into[i])
      i = cg->fused_into[i]->id; /* a GEMM runs where its epilogue's sink is */
    else
      return i;
  }
}

/* An update can write its target in place when the value is computed
 * elementwise (same index in, same index out) and nothing evaluated after
 * it still reads the target's old value. */
static bool update_in_place(CG *cg, const Node **reader, const Update *u) {
  const Node *v = u->value;
  if (!is_elementwise(v) || cg->st[v->id].kind != ST_MEM || cg->st[v->id].base == cg->buf) return false;
  for (int i = 0; i < cg->g->len; i++) {
    if (!cg->need[i]) continue;
    const Node *n = cg->g->nodes[i];
    for (int k = 0; k < op_info[n->op].nin; k++)
      if (n->in[k] == u->target && eval_point(cg, reader, i) != v->id && eval_point(cg, reader, i) > v->id)
        return false;
  }
  return true;
}

/* ---- the workspace ----
 *
 * Nodes too large for the stack live in the workspace, sized for one batch
 * of max_batch rows. Each function plans its own: a node holds its range
 * from where it is computed to its last read (a read through a view or an
 * inlined node counts where it happens; results are read at the end), and
 * nodes whose lifetimes do not overlap share bytes. Ranges are placed
 * greedily, the largest first, each at the lowest offset that is free for
 * its whole lifetime. An elementwise node whose operand dies in it takes
 * the operand's range (in place: each element is read before it is
 * written). A GEMM that packs its matrix gets a scratch range for its own
 * position. The module's global is as large as its largest function's
 * workspace; grad_part plans the ws it is given. */

typedef struct Span {
  int64_t bytes, off;
  int from, to; /* positions (graph order) where the range is in use */
} Span;

/* Bytes of a GEMM's scratch (its packed B; a convolution's also holds its
 * im2col matrix), or 0. */
static int64_t pack_bytes(const CG *cg, const Node *n) {
  return gemm_scratch_bytes(n, cg->L->elem_size, cg->max_batch, cg->kind == FN_GRAD_PART) + window_scratch_bytes(n, cg->L->elem_size, cg->max_batch);
}

/* The worker's copy of that scratch (fork_gemms): what its GEMM packs. */
static int64_t fork_bytes(const CG *cg, const Node *n) {
  return gemm_scratch_bytes(n, cg->L->elem_size, cg->max_batch, cg->kind == FN_GRAD_PART) + window_pack_bytes(n, cg->L->elem_size);
}

static bool in_workspace(const CG *cg, int i) {
  return cg->need[i] && !cg->given[i] && !cg->fused_into[i] && cg->st[i].kind == ST_MEM && !cg->st[i].base;
}

/* Can elementwise node n be written over its operand a, which dies in it? */
static bool reuse_in_place(const CG *cg, const Node *n, const Node *a, const int *users, const Node **reader,
                           const bool *root) {
  return is_elementwise(n) && !cg->epi_gemm[n->id] && in_workspace(cg, a->id) && !root[a->id] &&
         users[a->id] == 1 && reader[a->id] == n && a->batched == n->batched && shape_eq(&a->shape, &n->shape);
}

static int cmp_span_size(const void *pa, const void *pb) {
  const Span *a = *(Span *const *)pa, *b = *(Span *const *)pb;
  if (a->bytes != b->bytes) return a->bytes > b->bytes ? -1 : 1;
  return a->from - b->from;
}

static int cmp_span_off(const void *pa, const void *pb) {
  const Span *a = *(Span *const *)pa, *b = *(Span *const *)pb;
  return a->off < b->off ? -1 : a->off > b->off;
}

/* Offsets for spans[0..n): returns the bytes they need together. */
static int64_t place_spans(Span *spans, int n) {
  Span **order = nnc_xcalloc((size_t)n + 1, sizeof *order), **live = nnc_xcalloc((size_t)n + 1, sizeof *live);
  for (int i = 0; i < n; i++) order[i] = &spans[i];
  qsort(order, (size_t)n, sizeof *order, cmp_span_size);
  int64_t peak = 0;
  for (int i = 0; i < n; i++) {
    Span *s = order[i];
    int nlive = 0;
    for (int j = 0; j < i; j++)
      if (order[j]->from <= s->to && s->from <= order[j]->to) live[nlive++] = order[j];
    qsort(live, (size_t)nlive, sizeof *live, cmp_span_off);
    int64_t off = 0;
    for (int j = 0; j < nlive && off + s->bytes > live[j]->off; j++)
      if (live[j]->off + live[j]->bytes > off) off = live[j]->off + live[j]->bytes;
    s->off = off;
    if (off + s->bytes > peak) peak = off + s->bytes;
  }
  free(order);
  free(live);
  return peak;
}

/* Lifetimes, in-place reuse and offsets for this function's workspace
 * nodes and GEMM scratch; their bases become addresses in cg->ws. */
static void plan_workspace(CG *cg, const Node **reader, const int *users, const bool *root) {
  const Graph *g = cg->g;
  int len = g->len;
  int *last = cg->last_read, *span_of = nnc_xcalloc((size_t)len, sizeof(int));
  int *pack_span = nnc_xcalloc((size_t)len, sizeof(int));
  Span *spans = nnc_xcalloc((size_t)len * 3 + 1, sizeof(Span));
  int nspans = 0;
  /* last reads, from the end: a view is read where its readers are */
  for (int i = 0; i < len; i++) last[i] = root[i] ? len : -1;
  for (int i = len - 1; i >= 0; i--) {
    if (!cg->need[i] || cg->given[i]) continue;
    const Node *n = g->nodes[i];
    int at = cg->st[i].kind == ST_VIEW ? last[i] : eval_point(cg, reader, i);
    for (int k = 0; k < op_info[n->op].nin; k++)
      if (last[n->in[k]->id] < at) last[n->in[k]->id] = at;
  }
  for (int i = 0; i < len; i++) {
    span_of[i] = pack_span[i] = -1;
    if (cg->need[i] && !cg->given[i] && pack_bytes(cg, g->nodes[i])) {
      int at = eval_point(cg, reader, i);
      pack_span[i] = nspans;
      spans[nspans++] = (Span){.bytes = pack_bytes(cg, g->nodes[i]), .from = at, .to = at};
      if (cg->fork_gemms) /* the worker's copy, live at the same point: its own range */
        spans[nspans++] = (Span){.bytes = fork_bytes(cg, g->nodes[i]), .from = at, .to = at};
    }
    if (!in_workspace(cg, i)) continue;
    const Node *n = g->nodes[i];
    int to = last[i] > i ? last[i] : i;
    for (int k = 0; k < op_info[n->op].nin && span_of[i] < 0; k++)
      if (reuse_in_place(cg, n, n->in[k], users, reader, root)) {
        span_of[i] = span_of[n->in[k]->id];
        if (spans[span_of[i]].to < to) spans[span_of[i]].to = to;
      }
    if (span_of[i] >= 0) continue;
    span_of[i] = nspans;
    spans[nspans++] = (Span){.bytes = (node_bytes(cg, n) + 63) / 64 * 64, .from = i, .to = to};
  }
  int64_t peak = place_spans(spans, nspans);
  LLVMTypeRef i8 = LLVMInt8TypeInContext(cg->ctx);
  for (int i = 0; i < len; i++) {
    cg->pack_off[i] = pack_span[i] >= 0 ? spans[pack_span[i]].off : -1;
    if (cg->fork_gemms) cg->fork_off[i] = pack_span[i] >= 0 ? spans[pack_span[i] + 1].off : -1;
    if (span_of[i] < 0) continue;
    if (cg->split) { /* the workspace and an offset, as segments reach it */
      cg->st[i].base = cg->ws;
      cg->st[i].off = spans[span_of[i]].off / cg->L->elem_size;
      continue;
    }
    char name[128];
    LLVMValueRef off = ci(cg, spans[span_of[i]].off);
    cg->st[i].base = LLVMBuildInBoundsGEP2(cg->alloc, i8, cg->ws, &off, 1, cg_llvm_name(cg, g->nodes[i], name, sizeof name));
  }
  if (cg->kind == FN_GRAD_PART)
    cg->part_ws_bytes = peak;
  else if (peak > cg->ws_bytes)
    cg->ws_bytes = peak;
  free(span_of);
  free(pack_span);
  free(spans);
}

/* ---- segments ----
 *
 * LLVM's time on a function grows faster than the function: loop
 * rotation and the SLP vectorizer in the optimization, instruction
 * selection and the scheduler in machine code. A chain of 100 small
 * layers is thousands of small loops in one training step, and took
 * seconds. So a function whose code passes SEGMENTS_FROM instructions is
 * built again as segments: functions of about SEGMENT_WEIGHT
 * instructions each, internal and never inlined, that it calls in turn
 * with its own arguments and its frame. Whatever a segment leaves for a
 * later one is in memory they all reach: the buffer, the workspace, the
 * frame (the stack slots of a function built whole). Values the cache
 * holds in registers are stored at each segment's end. The function
 * itself only calls them and copies out its results. Every example's
 * functions are built whole (the largest, circles' straight-line training
 * step, is about 6,400 instructions). */
enum { SEGMENTS_FROM = 12000, SEGMENT_WEIGHT = 2000 };

/* The instructions of a function so far, counted from where the last
 * count ended: new blocks come at the end, and what is added to blocks
 * counted before (stack slots, loop preheaders, a loop's exit block that
 * the code goes on in) is missed. An estimate, which is all the sizes
 * need. */
typedef struct Weight {
  LLVMBasicBlockRef bb; /* the last block counted */
  int64_t before;       /* instructions in the blocks before it */
} Weight;

static int64_t weigh(LLVMValueRef fn, Weight *w) {
  int64_t n = w->bb ? w->before : 0;
  for (LLVMBasicBlockRef bb = w->bb ? w->bb : LLVMGetFirstBasicBlock(fn); bb; bb = LLVMGetNextBasicBlock(bb)) {
    int64_t in_bb = 0;
    for (LLVMValueRef in = LLVMGetFirstInstruction(bb); in; in = LLVMGetNextInstruction(in)) in_bb++;
    w->bb = bb, w->before = n;
    n += in_bb;
  }
  return n;
}

/* Its small nodes are placed in a frame when the function is built as
 * segments, addressed through a stand-in until its size is known. */
static void plan_frame(CG *cg) {
  cg->frame = cg->split ? LLVMAddGlobal(cg->mod, LLVMArrayType2(LLVMInt8TypeInContext(cg->ctx), 0), "nnc.frame.planned")
                        : NULL;
  cg->frame_bytes = 0;
}

/* Mark what this function computes, and how each node is stored. */
static void plan(CG *cg, Node **roots, int nroots, bool grads_given) {
  const Graph *g = cg->g;
  memset(cg->need, 0, (size_t)g->len);
  memset(cg->st, 0, sizeof(Store) * (size_t)g->len);
  bool *given = cg->given;
  memset(given, 0, (size_t)g->len);
  memset(cg->fused_into, 0, sizeof(Node *) * (size_t)g->len);
  memset(cg->epi_gemm, 0, sizeof(Node *) * (size_t)g->len);
  if (grads_given)
    for (int i = 0; i < g->params.len; i++) {
      const Node *d = g->grads[i];
      if (!given[d->id] && op_info[d->op].cls != OPC_LEAF) {
        given[d->id] = true;
        set_mem(cg, d, cg->gbuf, cg->L->grad_off[i], 0);
      }
    }
  for (int r = 0; r < nroots; r++) cg->need[roots[r]->id] = true;
  for (int i = g->len - 1; i >= 0; i--) {
    if (!cg->need[i] || given[i]) continue;
    const Node *n = g->nodes[i];
    for (int k = 0; k < op_info[n->op].nin; k++)
      if (node_reads(n, k, cg_evaluation(cg))) cg->need[n->in[k]->id] = true;
  }
  plan_frame(cg);
  /* readers within this function */
  int *users = nnc_xcalloc((size_t)g->len, sizeof(int));
  const Node **reader = nnc_xcalloc((size_t)g->len, sizeof(Node *));
  for (int i = 0; i < g->len; i++) {
    if (!cg->need[i] || given[i]) continue;
    const Node *n = g->nodes[i];
    for (int k = 0; k < op_info[n->op].nin; k++) {
      if (!node_reads(n, k, cg_evaluation(cg))) continue;
      users[n->in[k]->id]++;
      reader[n->in[k]->id] = n;
    }
  }
  bool *root = nnc_xcalloc((size_t)g->len, 1);
  for (int r = 0; r < nroots; r++) root[roots[r]->id] = true;
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (!cg->need[i] || given[i]) continue;
    switch ((int)n->op) { /* leaves have fixed homes; the rest is placed */
    case OP_PARAM: set_mem(cg, n, cg->buf, cg->L->param_off[n->param_index], 0); break;
    case OP_STATE: set_mem(cg, n, cg->buf, cg->L->state_off[n->state_index], 0); break;
    case OP_INPUT: set_mem(cg, n, cg->x, cg_leaf_column(&g->inputs, n), cg_cols(&g->inputs)); break;
    case OP_TARGET: set_mem(cg, n, cg->t, cg_leaf_column(&g->targets, n), cg_cols(&g->targets)); break;
    case OP_CONST: cg->st[i] = (Store){.kind = ST_CONST, .value = cT(cg, n->attr.value)}; break;
    case OP_INV_BATCH: cg->st[i] = (Store){.kind = ST_VALUE, .value = cg->inv_n}; break;
    default:
      if (!root[i] && users[i] == 1 && can_inline(n, reader[i]))
        cg->st[i].kind = ST_INLINE;
      else if (!root[i] && users[i] == 1 && gemm_outer_ok(cg, n, reader[i]))
        cg->st[i].kind = ST_INLINE; /* gemm_batch_outer computes it with its reader */
      else if (!root[i] && users[i] == 1 && window_dw_inline_ok(n, reader[i]))
        cg->st[i].kind = ST_INLINE; /* window_batch_dw computes it with its reader */
      else
        place(cg, n, root[i]);
      break;
    }
  }
  gemm_plan_epilogues(cg, reader, users, root);
  /* per-channel sums over the batch of values in memory: one kernel call,
     the sum_to not stored */
  for (int i = 0; i < g->len; i++)
    if (cg->need[i] && !given[i] && !root[i] && users[i] == 1 && cg->st[i].kind == ST_MEM &&
        cg->st[reader[i]->id].kind == ST_MEM && channel_sum_inline_ok(cg, g->nodes[i], reader[i]))
      cg->st[i].kind = ST_INLINE;
  /* max pooling's gradient times relu's mask: one kernel call, the
     gradient not stored */
  for (int i = 0; i < g->len; i++)
    if (cg->need[i] && !given[i] && !root[i] && users[i] == 1 && cg->st[i].kind == ST_MEM &&
        window_pool_relu_inline_ok(cg, g->nodes[i], reader[i]))
      cg->st[i].kind = ST_INLINE;
  /* results that can be computed straight into the buffer; train_step
     keeps a gradient too large for the stack in the buffer's gradient
     range, memory that exists anyway, instead of the workspace */
  bool grads_out = cg->kind == FN_BACKWARD || cg->kind == FN_GRAD_PART;
  if (grads_out || cg->kind == FN_TRAIN_STEP)
    for (int p = 0; p < g->params.len; p++) {
      const Node *d = g->grads[p];
      bool shared = false;
      for (int q = 0; q < p; q++) shared |= g->grads[q] == d;
      if (!shared && cg->st[d->id].kind == ST_MEM && cg->st[d->id].base != cg->gbuf &&
          op_info[d->op].cls != OPC_LEAF && (grads_out || (!cg->st[d->id].base && !cg->fused_into[d->id])))
        set_mem(cg, d, cg->gbuf, cg->L->grad_off[p], 0);
    }
  if (cg->kind == FN_TRAIN_STEP || cg->kind == FN_UPDATE)
    for (int u = 0; u < g->nupdates; u++) {
      const Update *up = &g->updates[u];
      if ((cg->kind == FN_UPDATE && up->from_batch) || !update_in_place(cg, reader, up)) continue;
      /* update_part: every part computes a scalar state's new value (Adam's
         b1^t) from the old one; the tail call alone writes it back */
      if (cg->slice_part && shape_numel(&up->value->shape) == 1) continue;
      const Node *t = up->target;
      set_mem(cg, up->value, cg->buf,
              t->op == OP_PARAM ? cg->L->param_off[t->param_index] : cg->L->state_off[t->state_index], 0);
    }
  plan_workspace(cg, reader, users, root);
  free(root);
  free(users);
  free(reader);
}

/* ---- functions ---- */

/* Parameter `i` of fn, the row count of a batch, is 0..max_batch
 * (nnc.h: backward and train_step take at most max_batch rows, forward
 * and predict call the batch code on chunks of at most that many): said
 * as its range in a small step, so ScalarEvolution knows each row loop's
 * trip count without proving n >= 0 from the exit tests of every row
 * loop before it, a walk over the dominating branches that grows with
 * the function: a small step is dozens of row loops in a row, and the
 * SLP vectorizer and loop strength reduction ask for each (circles:
 * 715 M -> 692 M instructions of its compile under callgrind). Loop
 * nests have few row loops; there it cost 0.3% more. */
static void rows_range(CG *cg, LLVMValueRef fn, unsigned i) {
  /* max_batch 1: set_rows makes n the constant 1 */
  if (cg->max_batch <= 1 || !codegen_step_is_small(cg->g, cg->max_batch)) return;
  unsigned kind = LLVMGetEnumAttributeKindForName("range", 5);
  uint64_t lo[1] = {0}, hi[1] = {(uint64_t)cg->max_batch + 1};
  LLVMAddAttributeAtIndex(fn, i + 1, LLVMCreateConstantRangeAttribute(cg->ctx, kind, 64, lo, hi));
}

/* n as the batch row count: a constant when batches have one row. */
static void set_rows(CG *cg, LLVMValueRef n) {
  cg->n = cg->max_batch == 1 ? ci(cg, 1) : n;
  cg->inv_n = cg->max_batch == 1 ? cT(cg, 1)
                                 : b_fdiv(cg, cT(cg, 1), LLVMBuildSIToFP(cg->b, cg->n, cg->T, ""));
}

/* Copy node `from` (any storage) into memory at base+off, rows stride. */
static void copy_out(CG *cg, const Node *from, LLVMValueRef base, int64_t off, int64_t row_stride,
                     bool per_row) {
  Iter rows, el;
  cg_iter_range(cg, &rows, per_row ? cg->n : ci(cg, 1));
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0];
    cg_iter_shape(cg, &el, &from->shape);
    FOR_EACH(cg, el) {
      LLVMValueRef v = cg_load_elem(cg, from, row, el.idx);
      LLVMValueRef lin = iadd(cg, cg_linear_index(cg, &from->shape, el.idx), ci(cg, off));
      if (per_row) lin = iadd(cg, lin, imul(cg, row, ci(cg, row_stride)));
      LLVMBuildStore(cg->b, v, LLVMBuildInBoundsGEP2(cg->b, cg->T, base, &lin, 1, ""));
    }
  }
}

static LLVMValueRef scalar_value(CG *cg, const Node *n) {
  LLVMValueRef idx[MAX_RANK] = {0};
  for (int d = 0; d < n->shape.rank; d++) idx[d] = ci(cg, 0);
  return cg_load_elem(cg, n, ci(cg, 0), idx);
}

/* Is n's storage exactly base + off (computed in place)? */
static bool stored_at(const CG *cg, const Node *n, LLVMValueRef base, int64_t off) {
  const Store *s = &cg->st[n->id];
  return s->kind == ST_MEM && s->base == base && s->off == off && op_info[n->op].cls != OPC_LEAF;
}

static void store_updates(CG *cg) {
  const Graph *g = cg->g;
  LLVMBasicBlockRef after = NULL;
  if (cg->slice_part) {
    /* update_part: the scalar states only in the tail call (part ==
       parts), which runs after every part has read them; the tensors'
       slices are in place (sliceable) */
    for (int i = 0; i < g->len; i++) cg_flush(cg, g->nodes[i]);
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "tail");
    after = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "end");
    LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntEQ, cg->slice_part, cg->slice_parts, ""), then, after);
    LLVMPositionBuilderAtEnd(cg->b, then);
  }
  for (int u = 0; u < g->nupdates; u++) {
    if (cg->kind == FN_UPDATE && g->updates[u].from_batch) continue;
    const Node *t = g->updates[u].target;
    int64_t off = t->op == OP_PARAM ? cg->L->param_off[t->param_index] : cg->L->state_off[t->state_index];
    if (!stored_at(cg, g->updates[u].value, cg->buf, off)) copy_out(cg, g->updates[u].value, cg->buf, off, 0, false);
  }
  if (after) {
    LLVMBuildBr(cg->b, after);
    LLVMPositionBuilderAtEnd(cg->b, after);
  }
}

int codegen_part_rows(const Graph *g, int max_batch) {
  return g->part_rows > 0 && g->part_rows < max_batch ? g->part_rows : max_batch;
}

/* Few enough per-row values for straight-line rows (jit.c's pipeline). */
bool codegen_step_is_small(const Graph *g, int max_batch) { return graph_row_values(g) * max_batch <= 16384; }

/* forward and predict take any number of rows: the public function runs
 * `batch` (the code for at most max_batch rows) on chunks of max_batch
 * rows, the last one smaller, so the workspace is sized by the batch
 * whatever the number of rows. */
/* fn is a loop of calls, once a batch (forward, predict, train_epoch):
 * LLVM's -O0 code generation for it (fast instruction selection, no
 * scheduling, no loop strength reduction), not -O2's, whose cost is mostly
 * a fixed one per function (W2's forward: 5.9 M instructions of machine
 * code under callgrind). */
static void compile_as_call_loop(CG *cg, LLVMValueRef fn) {
  cg_add_attr(cg, fn, LLVMAttributeFunctionIndex, "noinline");
  cg_add_attr(cg, fn, LLVMAttributeFunctionIndex, "optnone");
}

/* Can update_part slice every tensor it writes? Each node it computes is
 * elementwise, and either a tensor (in the buffer or on the stack) whose
 * operands, through the nodes computed where they are read, are tensors
 * of its shape, read at its own index, or scalars, or a scalar on the
 * stack that each part computes for itself; every update is written in
 * place. Not a step that reduces (clip_norm) or writes a scalar of the
 * buffer (Adam's b1^t): a part would read what another writes. */
static bool slice_reads_ok(const CG *cg, const Node *x, const Shape *s) {
  if (shape_numel(&x->shape) == 1 && !x->batched) return true;
  if (x->batched || !shape_eq(&x->shape, s)) return false;
  switch (cg->st[x->id].kind) {
  case ST_MEM: case ST_CONST: case ST_VALUE:
    return true;
  case ST_INLINE:
    if (!is_elementwise(x)) return false;
    for (int k = 0; k < op_info[x->op].nin; k++)
      if (!slice_reads_ok(cg, x->in[k], s)) return false;
    return true;
  case ST_VIEW: case ST_NONE:
    return false;
  }
  return false;
}

/* Is [off, off + numel) of the buffer exactly a tensor of the layout (a
 * parameter, its gradient or a state), which the parts cut alike? */
static bool whole_tensor_at(const CG *cg, int64_t off, int64_t numel) {
  const Graph *g = cg->g;
  for (int i = 0; i < g->params.len; i++) {
    int64_t m = shape_numel(&((const Node *)g->params.items[i])->shape);
    if (m == numel && (off == cg->L->param_off[i] || off == cg->L->grad_off[i])) return true;
  }
  for (int j = 0; j < g->states.len; j++)
    if (off == cg->L->state_off[j] && shape_numel(&((const Node *)g->states.items[j])->shape) == numel) return true;
  return false;
}

static bool sliceable(CG *cg) {
  const Graph *g = cg->g;
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (!emits_here(cg, i)) continue;
    LLVMValueRef base = cg->st[i].base;
    bool stack = in_slot(cg, n);
    if (!is_elementwise(n) || n->batched || !(stack || base == cg->buf)) return false;
    /* in the buffer, a node takes a tensor's place (in place, or a dead
       gradient's): a part writes only its slice of that tensor, which it
       alone has summed */
    if (!stack && !whole_tensor_at(cg, cg->st[i].off, shape_numel(&n->shape))) return false;
    if (shape_numel(&n->shape) == 1) {
      if (!stack) return false;
      continue;
    }
    for (int k = 0; k < op_info[n->op].nin; k++)
      if (!slice_reads_ok(cg, n->in[k], &n->shape)) return false;
  }
  for (int u = 0; u < g->nupdates; u++) {
    if (g->updates[u].from_batch || shape_numel(&g->updates[u].value->shape) == 1) continue; /* the tail's */
    const Node *t = g->updates[u].target;
    int64_t off = t->op == OP_PARAM ? cg->L->param_off[t->param_index] : cg->L->state_off[t->state_index];
    if (!stored_at(cg, g->updates[u].value, cg->buf, off)) return false;
  }
  return true;
}

/* The Adam steps of the function that are one call of the prebuilt
 * kernel each (optstep.h), marked in cg->adam_of: in train_step, update
 * and update_part (on its slice), when the three updates are written in
 * place in the buffer, the formula's other nodes are computed where they
 * are read (inline), the gradient is in memory, and no other node is
 * computed between the updates. A call instead of a vector loop per
 * parameter: fashion_bn's training step has ten. */
static AdamStep *plan_adam_calls(CG *cg) {
  const Graph *g = cg->g;
  /* 128-bit vectors: the set is x86-64-v2's, without the FMAs a host
     with them contracts the module's loops into */
  if (cg->gemm_kernels != GEMM_KERNELS_PREBUILT || !cg->vec_loops || cg->vl * cg->L->elem_size < 32 ||
      (cg->kind != FN_TRAIN_STEP && cg->kind != FN_UPDATE))
    return NULL;
  AdamStep *steps = NULL;
  int count = 0;
  for (int u = 0; u < g->nupdates; u++) {
    AdamStep a;
    if (!adam_step_match(g, &g->updates[u], &a)) continue;
    const Node *upd[3] = {a.m_new, a.v_new, a.p_new}, *to[3] = {a.m, a.v, a.p};
    const Node *gm = cg_stored(cg, a.grad);
    bool ok = a.m_new->id < a.v_new->id && a.v_new->id < a.p_new->id && a.ss->id < a.m_new->id &&
              a.bc->id < a.m_new->id && cg->st[gm->id].kind == ST_MEM && cg->st[gm->id].base &&
              !cg->fused_into[gm->id] && !gm->batched && shape_numel(&gm->shape) == shape_numel(&a.p->shape);
    /* a last vector of one lane under a constant mask: LLVM makes it
       scalar code, whose multiply-adds it contracts otherwise than the
       kernel's vectors (and so a parameter of one element) */
    ok = ok && shape_numel(&a.p->shape) % cg->vl != 1 && shape_numel(&a.p->shape) > 1;
    /* update_part reads a parameter's gradient in the buffer as its sum
       with grad2's (cgbase.c), and the kernel does */
    ok = ok && (!cg->slice_part || cg_summed_grad(cg, gm));
    for (int k = 0; k < 3 && ok; k++) {
      int64_t off = to[k]->op == OP_PARAM ? cg->L->param_off[to[k]->param_index] : cg->L->state_off[to[k]->state_index];
      ok = emits_here(cg, upd[k]->id) && stored_at(cg, upd[k], cg->buf, off);
    }
    for (int k = 0; k < ADAM_INNER && ok; k++) ok = cg->st[a.inner[k]->id].kind == ST_INLINE;
    for (int i = a.m_new->id + 1; i < a.p_new->id && ok; i++)
      ok = !emits_here(cg, i) || g->nodes[i] == a.v_new;
    if (!ok) continue;
    steps = nnc_xrealloc(steps, sizeof *steps * (size_t)(count + 1));
    steps[count++] = a;
  }
  /* marked once every step has its place (the array moved as it grew) */
  if (count) cg->adam_of = nnc_xcalloc((size_t)g->len, sizeof *cg->adam_of);
  for (int k = 0; k < count; k++) {
    cg->adam_of[steps[k].m_new->id] = cg->adam_of[steps[k].v_new->id] = &steps[k];
    cg->adam_of[steps[k].p_new->id] = &steps[k];
  }
  return steps;
}

static void build_chunked(CG *cg, FnKind kind, LLVMValueRef batch) {
  const Graph *g = cg->g;
  bool fwd = kind == FN_FORWARD;
  LLVMSetLinkage(batch, LLVMInternalLinkage);
  LLVMTypeRef p = cg->ptr, I = cg->i64;
  LLVMTypeRef ps[] = {p, p, p, I, p, p};
  const char *names[] = {"buf", "x", "t", "n", "y", "loss"};
  LLVMTypeRef pps[] = {p, p, I, p};
  const char *pnames[] = {"buf", "x", "n", "y"};
  LLVMValueRef fn = fwd ? cg_declare(cg, "forward", LLVMVoidTypeInContext(cg->ctx), ps, 6, names, 0x6)
                        : cg_declare(cg, "predict", LLVMVoidTypeInContext(cg->ctx), pps, 4, pnames, 0x2);
  cg_begin_body(cg, fn);
  LLVMValueRef n = LLVMGetParam(fn, fwd ? 3 : 2), B = ci(cg, cg->max_batch);
  LLVMValueRef chunks = LLVMBuildSDiv(cg->b, iadd(cg, n, ci(cg, cg->max_batch - 1)), B, "chunks");
  Loop lp;
  LLVMValueRef first = imul(cg, cg_loop_begin(cg, &lp, chunks), B);
  LLVMValueRef rest = LLVMBuildNSWSub(cg->b, n, first, "");
  LLVMValueRef rows = sel(cg, LLVMBuildICmp(cg->b, LLVMIntSLT, rest, B, ""), rest, B);
  /* argument k's rows from `first` on, `cols` values a row */
  LLVMValueRef args[6];
  int64_t cols[6] = {0, cg_cols(&g->inputs), cg_cols(&g->targets), -1, shape_numel(&g->output->shape), 1};
  int64_t *c = fwd ? cols : (int64_t[4]){0, cols[1], -1, cols[4]};
  for (int k = 0; k < (fwd ? 6 : 4); k++) {
    LLVMValueRef a = LLVMGetParam(fn, (unsigned)k);
    if (c[k] > 0) {
      LLVMValueRef off = imul(cg, first, ci(cg, c[k]));
      a = LLVMBuildGEP2(cg->b, cg->T, a, &off, 1, "");
    }
    args[k] = c[k] < 0 ? rows : a;
  }
  LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(batch), batch, args, fwd ? 6 : 4, "");
  cg_loop_end(cg, &lp);
  LLVMBuildRetVoid(cg->b);
  cg_end_body(cg);
  compile_as_call_loop(cg, fn);
}

/* A function kind's name and parameters (codegen.h, engine.h). */
typedef struct Signature {
  const char *name;
  LLVMTypeRef ret;
  LLVMTypeRef ps[9]; /* a segment's: the same and the frame */
  const char *names[9];
  int np;
  unsigned readonly; /* bit i: parameter i is read only */
  int rows;          /* the parameter that is a batch's row count, or -1 */
} Signature;

static Signature signature(CG *cg, FnKind kind, bool sliced) {
  LLVMTypeRef p = cg->ptr, I = cg->i64, V = LLVMVoidTypeInContext(cg->ctx);
  switch (kind) {
  case FN_FORWARD:
    return (Signature){"forward_batch", V, {p, p, p, I, p, p}, {"buf", "x", "t", "n", "y", "loss"}, 6, 0x6, 3};
  case FN_PREDICT:
    return (Signature){"predict_batch", V, {p, p, I, p}, {"buf", "x", "n", "y"}, 4, 0x2, 2};
  case FN_BACKWARD: case FN_TRAIN_STEP:
    return (Signature){kind == FN_BACKWARD ? "backward" : "train_step", cg->T, {p, p, p, I}, {"buf", "x", "t", "n"},
                       4, 0x6, 3};
  case FN_GRAD_PART:
    /* a shard of a batch: gradients of its n rows into grad (the buffer's
       layout), scaled by 1/total, the rows of the whole batch; its own
       workspace, so threads can run it side by side */
    return (Signature){"grad_part", cg->T, {p, p, p, p, p, I, I, I},
                       {"buf", "grad", "ws", "x", "t", "n", "total", "first"}, 8, 0x19, -1};
  case FN_UPDATE:
    return (Signature){sliced ? "update_part" : "update", V, {p, I, I, p, I}, {"buf", "part", "parts", "grad2", "nt"},
                       sliced ? 5 : 1, sliced ? 0x8 : 0, -1};
  case FN_TRAIN_EPOCH: case FN_COUNT:
    break;
  }
  nnc_die("codegen: bad function kind");
}

/* What cg's code reads of the function being built: its parameters and
 * what is computed from them once. */
typedef struct Bound {
  LLVMValueRef buf, gbuf, ws, x, t, y, loss, n, inv_n, first, frame;
  LLVMValueRef slice_part, slice_parts, slice_grad, slice_nt;
} Bound;

static Bound bound_now(const CG *cg) {
  return (Bound){cg->buf, cg->gbuf, cg->ws, cg->x, cg->t, cg->y, cg->loss, cg->n, cg->inv_n, cg->first, cg->frame,
                 cg->slice_part, cg->slice_parts, cg->slice_grad, cg->slice_nt};
}

static void bind(CG *cg, const Bound *b) {
  cg->buf = b->buf, cg->gbuf = b->gbuf, cg->ws = b->ws, cg->x = b->x, cg->t = b->t, cg->y = b->y;
  cg->loss = b->loss, cg->n = b->n, cg->inv_n = b->inv_n, cg->first = b->first, cg->frame = b->frame;
  cg->slice_part = b->slice_part, cg->slice_parts = b->slice_parts, cg->slice_grad = b->slice_grad;
  cg->slice_nt = b->slice_nt;
}

/* cg's view of fn's parameters: fn is cg->kind's function or one of its
 * segments (then the frame is its last parameter). */
static void bind_params(CG *cg, LLVMValueRef fn) {
  LLVMValueRef P[9] = {0};
  unsigned np = LLVMCountParams(fn);
  for (unsigned i = 0; i < np && i < 9; i++) P[i] = LLVMGetParam(fn, i);
  switch (cg->kind) {
  case FN_FORWARD:
    cg->buf = P[0], cg->x = P[1], cg->t = P[2], cg->y = P[4], cg->loss = P[5];
    set_rows(cg, P[3]);
    break;
  case FN_PREDICT:
    cg->buf = P[0], cg->x = P[1], cg->y = P[3];
    set_rows(cg, P[2]);
    break;
  case FN_BACKWARD: case FN_TRAIN_STEP:
    cg->buf = P[0], cg->x = P[1], cg->t = P[2];
    set_rows(cg, P[3]);
    break;
  case FN_GRAD_PART:
    cg->buf = P[0], cg->gbuf = P[1], cg->ws = P[2], cg->x = P[3], cg->t = P[4], cg->n = P[5], cg->first = P[7];
    cg->inv_n = b_fdiv(cg, cT(cg, 1), LLVMBuildSIToFP(cg->b, P[6], cg->T, ""));
    break;
  case FN_UPDATE:
    cg->buf = P[0];
    if (np >= 5) cg->slice_part = P[1], cg->slice_parts = P[2], cg->slice_grad = P[3], cg->slice_nt = P[4];
    set_rows(cg, ci(cg, 1));
    break;
  case FN_TRAIN_EPOCH: case FN_COUNT:
    nnc_die("codegen: bad function kind");
  }
  if (cg->kind != FN_GRAD_PART) cg->gbuf = cg->buf;
}

/* Point every node's storage at what is bound now instead of what was
 * bound (`was`): another function's parameters, frame and workspace. */
static void rebind(CG *cg, const Bound *was) {
  LLVMValueRef from[] = {was->buf, was->gbuf, was->ws, was->x, was->t, was->y, was->loss, was->frame};
  LLVMValueRef to[] = {cg->buf, cg->gbuf, cg->ws, cg->x, cg->t, cg->y, cg->loss, cg->frame};
  for (int i = 0; i < cg->g->len; i++) {
    Store *s = &cg->st[i];
    if (s->kind == ST_VALUE && s->value == was->inv_n) s->value = cg->inv_n;
    if (s->kind != ST_MEM || !s->base) continue;
    int k = 0;
    while (k < 8 && s->base != from[k]) k++;
    if (k == 8) nnc_die("codegen: node %d's memory is out of a segment's reach", i);
    s->base = to[k];
  }
}

/* The frame, now that its size is known: a stack slot of the function,
 * where its stand-in was. */
static void frame_ready(CG *cg) {
  LLVMValueRef planned = cg->frame;
  LLVMTypeRef ty = LLVMArrayType2(LLVMInt8TypeInContext(cg->ctx), (uint64_t)(cg->frame_bytes > 0 ? cg->frame_bytes : 64));
  cg->frame = LLVMBuildAlloca(cg->alloc, ty, "frame");
  LLVMSetAlignment(cg->frame, 64);
  for (int i = 0; i < cg->g->len; i++)
    if (cg->st[i].kind == ST_MEM && cg->st[i].base == planned) cg->st[i].base = cg->frame;
  LLVMDeleteGlobal(planned);
}

typedef struct Segments {
  const Signature *sig;
  LLVMValueRef fn;        /* the function they make up */
  LLVMValueRef seg;       /* the open segment, or NULL */
  Weight weight;          /* the open segment's */
  LLVMBasicBlockRef body; /* the function's block that calls them */
  Bound fn_bound;         /* the function's own */
  int count;
} Segments;

/* The open segment's end, before the node at position `at`: what the
 * cache holds of nodes read from there on stored, and back to the function
 * (the builders at its calls, its bindings). The values of a node no
 * longer read are dropped: its workspace range may be another node's by
 * now, and storing them would overwrite that node. */
static void segment_close(CG *cg, Segments *s, int at) {
  Bound was = bound_now(cg);
  for (int i = 0; i < cg->g->len; i++)
    if (cg->last_read[i] >= at)
      cg_flush(cg, cg->g->nodes[i]);
    else
      cg_forget_node(cg, cg->g->nodes[i]);
  LLVMBuildRetVoid(cg->b);
  cg_end_body(cg);
  cg->fn = s->fn;
  LLVMPositionBuilderAtEnd(cg->b, s->body);
  LLVMPositionBuilderAtEnd(cg->alloc, LLVMGetEntryBasicBlock(s->fn));
  cg_forget_cache(cg);
  bind(cg, &s->fn_bound);
  rebind(cg, &was);
  s->seg = NULL;
}

/* Before the code of the node at position `at`: a segment open with room
 * for it (one opened, the full one closed, as needed). */
static void segment_next(CG *cg, Segments *s, int at) {
  if (s->seg && weigh(s->seg, &s->weight) < cg->segment_weight) return;
  if (s->seg) segment_close(cg, s, at);
  if (!s->count) {
    s->body = LLVMGetInsertBlock(cg->b);
    s->fn_bound = bound_now(cg);
  }
  const Signature *sig = s->sig;
  LLVMTypeRef ps[9];
  const char *names[9];
  for (int i = 0; i < sig->np; i++) ps[i] = sig->ps[i], names[i] = sig->names[i];
  ps[sig->np] = cg->ptr, names[sig->np] = "frame";
  char name[64];
  snprintf(name, sizeof name, "%s.seg%d", sig->name, ++s->count);
  s->seg = cg_declare(cg, name, LLVMVoidTypeInContext(cg->ctx), ps, sig->np + 1, names, sig->readonly);
  s->weight = (Weight){0};
  LLVMSetLinkage(s->seg, LLVMInternalLinkage);
  cg_add_attr(cg, s->seg, LLVMAttributeFunctionIndex, "noinline");
  if (sig->rows >= 0) rows_range(cg, s->seg, (unsigned)sig->rows);
  LLVMValueRef args[9];
  for (int i = 0; i < sig->np; i++) args[i] = LLVMGetParam(s->fn, (unsigned)i);
  args[sig->np] = cg->frame;
  LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(s->seg), s->seg, args, (unsigned)sig->np + 1, "");
  Bound was = bound_now(cg);
  cg_begin_body(cg, s->seg);
  bind_params(cg, s->seg);
  cg->frame = LLVMGetParam(s->seg, (unsigned)sig->np);
  rebind(cg, &was);
}

/* fn and its segments gone from the module. */
static void delete_function(CG *cg, LLVMValueRef fn) {
  size_t len;
  char name[256];
  snprintf(name, sizeof name, "%s", LLVMGetValueName2(fn, &len));
  LLVMDeleteFunction(fn);
  for (int k = 1;; k++) {
    char seg[300];
    snprintf(seg, sizeof seg, "%s.seg%d", name, k);
    LLVMValueRef f = LLVMGetNamedFunction(cg->mod, seg);
    if (!f) break;
    LLVMDeleteFunction(f);
  }
}

static void segments_end(CG *cg, Segments *s) {
  if (s->seg) segment_close(cg, s, cg->g->len); /* the results are read after */
}

/* fn's body: the nodes the roots need, then its results. Built whole, it
 * is left unfinished, and false returned, once its code passes
 * cg->segments_from instructions (build_function builds it again as
 * segments). */
static bool build_body(CG *cg, LLVMValueRef fn, const Signature *sig, Node **roots, int nroots, bool sliced) {
  const Graph *g = cg->g;
  FnKind kind = cg->kind;
  cg_begin_body(cg, fn);
  bind_params(cg, fn);
  plan(cg, roots, nroots, kind == FN_UPDATE);
  if (cg->split) frame_ready(cg);
  cg->slice_failed = sliced && !sliceable(cg);
  AdamStep *adam = plan_adam_calls(cg);
  Segments seg = {.sig = sig, .fn = fn};
  Weight weight = {0};
  bool whole = true;
  /* nodes stored in the buffer are inputs here (params, state, given
     gradients); everything else in the plan is computed, in order */
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (!emits_here(cg, i)) continue;
    if (cg->split)
      segment_next(cg, &seg, i);
    else if (weigh(fn, &weight) > cg->segments_from) {
      whole = false;
      break;
    }
    if (cg->adam_of && cg->adam_of[i]) { /* one call, at the first of its updates */
      const AdamStep *a = cg->adam_of[i];
      if (n == a->m_new) adam_step_call(cg, a, scalar_value(cg, a->ss), scalar_value(cg, a->bc));
      continue;
    }
    int next = emit_chain(cg, i);
    if (next > i) {
      i = next - 1;
      continue;
    }
    emit_node(cg, cg->epi_gemm[i] ? cg->epi_gemm[i] : n);
  }
  free(cg->adam_of);
  free(adam);
  cg->adam_of = NULL;
  if (!whole) {
    cg_forget_cache(cg);
    return false;
  }
  if (cg->split) segments_end(cg, &seg);
  switch (kind) {
  case FN_FORWARD:
    copy_out(cg, g->output, cg->y, 0, shape_numel(&g->output->shape), true);
    copy_out(cg, g->loss, cg->loss, 0, 1, true);
    LLVMBuildRetVoid(cg->b);
    break;
  case FN_PREDICT:
    copy_out(cg, g->output, cg->y, 0, shape_numel(&g->output->shape), true);
    LLVMBuildRetVoid(cg->b);
    break;
  case FN_BACKWARD: case FN_GRAD_PART: {
    for (int i = 0; i < g->params.len; i++)
      if (!stored_at(cg, g->grads[i], cg->gbuf, cg->L->grad_off[i]))
        copy_out(cg, g->grads[i], cg->gbuf, cg->L->grad_off[i], 0, false);
    LLVMBuildRet(cg->b, scalar_value(cg, g->batch_loss));
    break;
  }
  case FN_TRAIN_STEP: {
    LLVMValueRef loss = scalar_value(cg, g->batch_loss);
    store_updates(cg);
    LLVMBuildRet(cg->b, loss);
    break;
  }
  case FN_UPDATE:
    store_updates(cg);
    LLVMBuildRetVoid(cg->b);
    break;
  case FN_TRAIN_EPOCH: case FN_COUNT:
    break;
  }
  cg_end_body(cg);
  return true;
}

/* kind's function; sliced: update's as update_part (engine.h), when it
 * can be (else nothing, and NULL) */
static LLVMValueRef build_function(CG *cg, FnKind kind, bool sliced) {
  const Graph *g = cg->g;
  LLVMValueRef fn;
  cg->kind = kind;
  cg->first = NULL;
  cg->x = cg->t = cg->y = cg->loss = NULL;
  LLVMValueRef module_ws = cg->ws;
  int batch = cg->max_batch;
  /* grad_part's code and workspace are for a shard's rows (its sizes,
     scratch and the choices that follow the rows, planned as for a batch
     of that many) */
  if (kind == FN_GRAD_PART) cg->max_batch = codegen_part_rows(g, batch);
  int nroots = 0;
  Node **roots = nnc_xcalloc((size_t)(g->params.len + g->nupdates + 4), sizeof(Node *));
  switch (kind) {
  case FN_FORWARD:
    roots[nroots++] = g->output;
    roots[nroots++] = g->loss;
    break;
  case FN_PREDICT:
    roots[nroots++] = g->output;
    break;
  case FN_BACKWARD: case FN_TRAIN_STEP:
    roots[nroots++] = g->batch_loss;
    if (kind == FN_BACKWARD)
      for (int i = 0; i < g->params.len; i++) roots[nroots++] = g->grads[i];
    else
      for (int u = 0; u < g->nupdates; u++) roots[nroots++] = g->updates[u].value;
    break;
  case FN_GRAD_PART:
    roots[nroots++] = g->batch_loss;
    for (int i = 0; i < g->params.len; i++) roots[nroots++] = g->grads[i];
    break;
  case FN_UPDATE:
    for (int u = 0; u < g->nupdates; u++)
      if (!g->updates[u].from_batch) roots[nroots++] = g->updates[u].value; /* it has no batch */
    break;
  case FN_TRAIN_EPOCH: case FN_COUNT: default:
    nnc_die("codegen: bad function kind");
  }
  Signature sig = signature(cg, kind, sliced);
  int64_t ws_bytes = cg->ws_bytes;
  /* whole, unless its code is too large for that (then again as segments) */
  cg->split = cg->segments_from == 0;
  for (;;) {
    fn = cg_declare(cg, sig.name, sig.ret, sig.ps, sig.np, sig.names, sig.readonly);
    if (sig.rows >= 0) rows_range(cg, fn, (unsigned)sig.rows);
    if (build_body(cg, fn, &sig, roots, nroots, sliced)) break;
    LLVMDeleteFunction(fn);
    cg->ws_bytes = ws_bytes; /* the plan that counts is the segments' */
    cg->split = true;
  }
  cg->ws = module_ws;
  cg->max_batch = batch;
  free(roots);
  if (sliced && cg->slice_failed) delete_function(cg, fn), fn = NULL;
  cg->slice_part = cg->slice_parts = cg->slice_grad = cg->slice_nt = NULL;
  cg->split = false;
  cg->frame = NULL;
  /* train_epoch calls train_step twice, for full batches and the last
     one: its code exists once (compile time grows with every copy). A
     small step was inlined at both calls, the full batches' copy
     specialized for their row count: a third more compile time for
     circles' step, and the same steps/s at batch 16 and 32 (the row
     loops stay loops either way) */
  if (kind == FN_TRAIN_STEP) cg_add_attr(cg, fn, LLVMAttributeFunctionIndex, "noinline");
  if (kind == FN_FORWARD || kind == FN_PREDICT) build_chunked(cg, kind, fn);
  return fn;
}

/* total + loss * rows, as llvm.fmuladd: one rounding where the target
 * has a fast fused multiply-add, as -O2 fused the contract fmul and fadd,
 * and the same at -O0 (train_epoch's optnone), which fuses nothing else */
static LLVMValueRef add_batch_loss(CG *cg, LLVMValueRef total, LLVMValueRef loss, LLVMValueRef rows) {
  return cg_fmuladd(cg, loss, rows, total);
}

/* train_epoch: train_step on the full batches, then on the last partial
 * batch (compile_as_call_loop). */
static void build_train_epoch(CG *cg) {
  const Graph *g = cg->g;
  LLVMTypeRef p = cg->ptr, I = cg->i64;
  LLVMTypeRef ps[] = {p, p, p, I};
  const char *names[] = {"buf", "x", "t", "rows"};
  LLVMValueRef fn = cg_declare(cg, "train_epoch", cg->T, ps, 4, names, 0x6);
  char prefix[128], step_name[256];
  snprintf(step_name, sizeof step_name, "%strain_step", codegen_prefix(g, prefix, sizeof prefix));
  LLVMValueRef step = LLVMGetNamedFunction(cg->mod, step_name);
  LLVMTypeRef step_ty = LLVMGlobalGetValueType(step);
  cg_begin_body(cg, fn);
  LLVMValueRef buf = LLVMGetParam(fn, 0), x = LLVMGetParam(fn, 1), t = LLVMGetParam(fn, 2);
  LLVMValueRef rows = LLVMGetParam(fn, 3);
  int64_t B = cg->max_batch, xc = cg_cols(&g->inputs), tc = cg_cols(&g->targets);
  LLVMValueRef total = LLVMBuildAlloca(cg->alloc, cg->T, "total");
  LLVMBuildStore(cg->b, cT(cg, 0), total);
  LLVMValueRef full = LLVMBuildSDiv(cg->b, rows, ci(cg, B), "full_batches");
  Loop lp;
  LLVMValueRef k = cg_loop_begin(cg, &lp, full); /* always a real loop */
  LLVMValueRef first = imul(cg, k, ci(cg, B));
  LLVMValueRef xo = imul(cg, first, ci(cg, xc)), to = imul(cg, first, ci(cg, tc));
  LLVMValueRef args[4] = {buf, LLVMBuildInBoundsGEP2(cg->b, cg->T, x, &xo, 1, ""),
                          LLVMBuildInBoundsGEP2(cg->b, cg->T, t, &to, 1, ""), ci(cg, B)};
  LLVMValueRef l = LLVMBuildCall2(cg->b, step_ty, step, args, 4, "batch_loss");
  LLVMBuildStore(cg->b, add_batch_loss(cg, LLVMBuildLoad2(cg->b, cg->T, total, ""), l, cT(cg, (double)B)), total);
  cg_loop_end(cg, &lp);
  if (B > 1) {
    LLVMValueRef done = imul(cg, full, ci(cg, B));
    LLVMValueRef rest = LLVMBuildNSWSub(cg->b, rows, done, "rest");
    LLVMBasicBlockRef tail = LLVMAppendBasicBlockInContext(cg->ctx, fn, "last_batch");
    LLVMBasicBlockRef out = LLVMAppendBasicBlockInContext(cg->ctx, fn, "end");
    LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGT, rest, ci(cg, 0), ""), tail, out);
    LLVMPositionBuilderAtEnd(cg->b, tail);
    LLVMValueRef xo2 = imul(cg, done, ci(cg, xc)), to2 = imul(cg, done, ci(cg, tc));
    LLVMValueRef args2[4] = {buf, LLVMBuildInBoundsGEP2(cg->b, cg->T, x, &xo2, 1, ""),
                             LLVMBuildInBoundsGEP2(cg->b, cg->T, t, &to2, 1, ""), rest};
    LLVMValueRef l2 = LLVMBuildCall2(cg->b, step_ty, step, args2, 4, "batch_loss");
    LLVMBuildStore(cg->b,
                   add_batch_loss(cg, LLVMBuildLoad2(cg->b, cg->T, total, ""), l2,
                                  LLVMBuildSIToFP(cg->b, rest, cg->T, "")),
                   total);
    LLVMBuildBr(cg->b, out);
    LLVMPositionBuilderAtEnd(cg->b, out);
  }
  LLVMBuildRet(cg->b, LLVMBuildLoad2(cg->b, cg->T, total, ""));
  cg_end_body(cg);
  compile_as_call_loop(cg, fn);
}

/* The workspace global, in the functions' place of the stand-in, 64-byte
 * aligned: zero (.bss) and internal, or with `external` declared only
 * (CgTarget's workspace_extern; its size is in its type, so an object
 * cached for one size is never taken for another). A module without one
 * has none. */
static void define_workspace(CG *cg, bool external) {
  LLVMValueRef planned = cg->ws;
  if (cg->ws_bytes > 0) {
    LLVMTypeRef ty = LLVMArrayType2(LLVMInt8TypeInContext(cg->ctx), (uint64_t)cg->ws_bytes);
    LLVMValueRef ws = LLVMAddGlobal(cg->mod, ty, CG_WORKSPACE_SYMBOL);
    if (!external) {
      LLVMSetInitializer(ws, LLVMConstNull(ty));
      LLVMSetLinkage(ws, LLVMInternalLinkage);
    }
    LLVMSetAlignment(ws, 64);
    LLVMReplaceAllUsesWith(planned, ws);
  }
  LLVMDeleteGlobal(planned);
  cg->ws = NULL;
}

/* A count from an environment variable's value v (NULL: unset), or dflt. */
static int env_count(const char *v, int dflt) {
  char *end;
  long n = v ? strtol(v, &end, 10) : -1;
  return v && *v && !*end && n >= 0 && n <= 1 << 30 ? (int)n : dflt;
}

LLVMModuleRef codegen_module(LLVMContextRef ctx, const Graph *g, const Layout *layout, int max_batch,
                             unsigned fns, const CgTarget *target, CgInfo *info) {
  CG cg = {.ctx = ctx, .g = g, .L = layout, .max_batch = max_batch};
  char name[160];
  snprintf(name, sizeof name, "nnc.%s", g->model_name ? g->model_name : "model");
  cg.mod = LLVMModuleCreateWithNameInContext(name, ctx);
  cg.b = LLVMCreateBuilderInContext(ctx);
  cg.alloc = LLVMCreateBuilderInContext(ctx);
  cg.T = g->dtype == DT_F64 ? LLVMDoubleTypeInContext(ctx) : LLVMFloatTypeInContext(ctx);
  cg.i64 = LLVMInt64TypeInContext(ctx);
  cg.i1 = LLVMInt1TypeInContext(ctx);
  cg.ptr = LLVMPointerTypeInContext(ctx, 0);
  Arena labels; /* LLVM copies the names it is given */
  arena_init(&labels);
  cg.labels = graph_labels(g, &labels);
  cg.st = nnc_xcalloc((size_t)g->len, sizeof(Store));
  cg.need = nnc_xcalloc((size_t)g->len, 1);
  cg.given = nnc_xcalloc((size_t)g->len, 1);
  cg.cache = nnc_xcalloc((size_t)g->len, sizeof(LLVMValueRef *));
  cg.dirty = nnc_xcalloc((size_t)g->len, sizeof(bool *));
  cg.pack_off = nnc_xcalloc((size_t)g->len, sizeof(int64_t));
  cg.fork_off = nnc_xcalloc((size_t)g->len, sizeof(int64_t));
  cg.fork_gemms = target->fork_gemms;
  cg.last_read = nnc_xcalloc((size_t)g->len, sizeof(int));
  cg.fused_into = nnc_xcalloc((size_t)g->len, sizeof(Node *));
  cg.epi_gemm = nnc_xcalloc((size_t)g->len, sizeof(Node *));
  /* the functions address the workspace through a stand-in until its size,
     their largest plan, is known */
  cg.ws = LLVMAddGlobal(cg.mod, LLVMArrayType2(LLVMInt8TypeInContext(ctx), 0), "nnc.workspace.planned");
  cg.vl = target->vector_bits / (8 * layout->elem_size);
  cg.gemm_nv = gemm_vectors(target->vector_bits);
  cg.avx_lane_swap = target->x86_avx;
  const char *vec_env = getenv("NNC_VECTOR_LOOPS"); /* 0: scalar loops, for comparison */
  cg.vec_loops = !vec_env || strcmp(vec_env, "0") != 0;
  /* segments of other sizes, for tests and comparisons: NNC_SEGMENTS_FROM=0
     NNC_SEGMENT_WEIGHT=1 builds every function as a segment a node */
  cg.segments_from = env_count(getenv("NNC_SEGMENTS_FROM"), SEGMENTS_FROM);
  cg.segment_weight = env_count(getenv("NNC_SEGMENT_WEIGHT"), SEGMENT_WEIGHT);
  cg.gemm_kernels = target->gemm_kernels;
  /* an output computed from targets cannot be predicted from inputs */
  if (graph_output_needs_targets(g)) fns &= ~(unsigned)CG_PREDICT;
  bool step_public = fns & CG_TRAIN_STEP;
  /* train_epoch, forward and predict in registers when their nodes fit
     (regstep.c), else loop nests; train_epoch then calls train_step */
  bool *need[FN_COUNT] = {0};
  int lanes[FN_COUNT] = {0};
  for (int k = 0; k < FN_COUNT; k++) {
    if (!(fns & (1u << k)) || (k != FN_TRAIN_EPOCH && k != FN_FORWARD && k != FN_PREDICT)) continue;
    need[k] = nnc_xcalloc((size_t)g->len, 1);
    lanes[k] = regstep_lanes(&cg, (FnKind)k, need[k]);
  }
  bool all_registers = true;
  unsigned register_fns = 0;
  if ((fns & CG_TRAIN_EPOCH) && !lanes[FN_TRAIN_EPOCH]) fns |= CG_TRAIN_STEP;
  /* threads run update_part; update only when the step has none (its
     loops again were fashion_cnn's 57 M instructions of optimization and
     machine code of 567 M) */
  if ((fns & CG_GRAD_PART) && !build_function(&cg, FN_UPDATE, true)) fns |= CG_UPDATE;
  for (int k = 0; k < FN_COUNT; k++) {
    if (!(fns & (1u << k))) continue;
    all_registers &= lanes[k] > 0;
    if (lanes[k]) register_fns |= 1u << k;
    if (lanes[k])
      regstep_build(&cg, (FnKind)k, lanes[k], need[k]);
    else if (k == FN_TRAIN_EPOCH)
      build_train_epoch(&cg);
    else
      build_function(&cg, (FnKind)k, false);
    free(need[k]);
  }
  define_workspace(&cg, target->workspace_extern);
  if (info)
    *info = (CgInfo){.registers_only = all_registers, .built_fns = fns, .register_fns = register_fns,
                     .has_gemm = cg.gemm != NULL, .ws_bytes = cg.ws_bytes, .part_ws_bytes = cg.part_ws_bytes};
  if ((fns & CG_TRAIN_EPOCH) && !lanes[FN_TRAIN_EPOCH] && !step_public) {
    char prefix[128], step[256];
    snprintf(step, sizeof step, "%strain_step", codegen_prefix(g, prefix, sizeof prefix));
    LLVMSetLinkage(LLVMGetNamedFunction(cg.mod, step), LLVMInternalLinkage);
  }
  LLVMDisposeBuilder(cg.b);
  LLVMDisposeBuilder(cg.alloc);
  cg_forget_cache(&cg);
  free(cg.cache);
  free(cg.dirty);
  free(cg.st);
  free(cg.need);
  free(cg.given);
  free(cg.pack_off);
  free(cg.fork_off);
  free(cg.last_read);
  gemm_free(&cg);
  free(cg.fused_into);
  free(cg.epi_gemm);
  arena_free(&labels);
  return cg.mod;
}
