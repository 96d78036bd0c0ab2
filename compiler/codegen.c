/*
 * codegen.c - IR graph to LLVM IR (see codegen.h and jit.h).
 *
 * Each module function is a subset of the one graph: the nodes its results
 * need, in graph order, each written as loop nests over its (static) shape,
 * with a loop over the batch rows for batched nodes. Operands are read
 * through load_elem(), which maps an element index through views
 * (transpose, broadcast, reshape) so those never touch memory; every other
 * node is stored once in a stack slot or the workspace global.
 *
 * Floating point: `contract` everywhere (FMA), and `reassoc` on the adds of
 * reductions (sum, matmul) so LLVM can vectorize them. No nnan/ninf: the
 * training driver must see NaN and infinity as they happen. Results stay
 * within 1e-12 (f64) / 1e-5 (f32) relative of the interpreter.
 */
#include "codegen_int.h"

#include <llvm-c/TargetMachine.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SMALL_NODE_BYTES = 4096, STACK_BUDGET = 96 * 1024 };

/* Bytes of a node's values for a batch of max_batch rows. */
static int64_t bytes_at(const Node *n, int max_batch, int elem_size) {
  return shape_numel(&n->shape) * (n->batched ? max_batch : 1) * elem_size;
}

/* ---- small builders ---- */

static bool is_const_fp(LLVMValueRef v, double c) {
  LLVMBool lost;
  return LLVMIsAConstantFP(v) && LLVMConstRealGetDouble(v, &lost) == c &&
         signbit(LLVMConstRealGetDouble(v, &lost)) == signbit(c);
}

/* An accumulation whose order does not matter (reductions). A sum that
 * starts at +0 starts at its first term instead: the same number (up to the
 * sign of a zero), and no `fadd 0.0, x` that LLVM may not remove. */
static LLVMValueRef facc(CG *cg, LLVMValueRef a, LLVMValueRef b) {
  if (is_const_fp(a, 0.0)) return b;
  return fm(LLVMBuildFAdd(cg->b, a, b, ""), LLVMFastMathAllowContract | LLVMFastMathAllowReassoc);
}
static LLVMValueRef intrinsic(CG *cg, const char *name, LLVMValueRef *args, int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  if (!id) nnc_die("codegen: no intrinsic %s", name);
  LLVMTypeRef over = LLVMTypeOf(args[0]); /* T, or a vector of T */
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, &over, 1);
  LLVMTypeRef ty = LLVMIntrinsicGetType(cg->ctx, id, &over, 1);
  return fm(LLVMBuildCall2(cg->b, ty, fn, args, (unsigned)nargs, ""), LLVMFastMathAllowContract);
}

static LLVMValueRef intrinsic1(CG *cg, const char *name, LLVMValueRef a) {
  return intrinsic(cg, name, &a, 1);
}

/* A libm function of one argument (tanh, log1p: no LLVM intrinsic); on a
 * vector, one call per lane. */
static LLVMValueRef libm1(CG *cg, const char *f64name, LLVMValueRef a) {
  LLVMTypeRef ty_a = LLVMTypeOf(a);
  if (LLVMGetTypeKind(ty_a) == LLVMVectorTypeKind) {
    LLVMValueRef v = LLVMGetPoison(ty_a);
    for (unsigned l = 0; l < LLVMGetVectorSize(ty_a); l++) {
      LLVMValueRef lane = LLVMConstInt(LLVMInt32TypeInContext(cg->ctx), l, 0);
      LLVMValueRef e = libm1(cg, f64name, LLVMBuildExtractElement(cg->b, a, lane, ""));
      v = LLVMBuildInsertElement(cg->b, v, e, lane, "");
    }
    return v;
  }
  char name[32];
  snprintf(name, sizeof name, "%s%s", f64name, cg->g->dtype == DT_F32 ? "f" : "");
  LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, name);
  LLVMTypeRef ty = LLVMFunctionType(cg->T, &cg->T, 1, 0);
  if (!fn) {
    fn = LLVMAddFunction(cg->mod, name, ty);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(cg->ctx, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
  }
  return LLVMBuildCall2(cg->b, ty, fn, &a, 1, "");
}

/* ---- loops ----
 *
 * An Iter walks an index space. Small spaces are unrolled while the code is
 * generated: the C loop body runs once per index with constant indices, so
 * small tensors become straight-line code whose stack slots LLVM promotes
 * to registers. Larger or runtime-sized spaces become LLVM loops: the C
 * body runs once, between the loop header and latch. Either way a kernel is
 * written once:
 *
 *   Iter it;
 *   iter_shape(cg, &it, &n->shape);
 *   FOR_EACH(cg, it) { ... it.idx[d] ... }
 *
 * (No `break` or `continue` inside a FOR_EACH body.)
 */

/* Unroll a loop of at most UNROLL_TRIP iterations when the loops unrolled
 * around it leave at most UNROLL_LIMIT copies of its body. */
enum { UNROLL_TRIP = 16, UNROLL_LIMIT = 256 };

typedef struct Loop {
  LLVMBasicBlockRef header, exit;
  LLVMValueRef i;
} Loop;

static LLVMValueRef loop_begin(CG *cg, Loop *lp, LLVMValueRef count) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
  lp->header = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "loop");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "body");
  lp->exit = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "done");
  LLVMBuildBr(cg->b, lp->header);
  LLVMPositionBuilderAtEnd(cg->b, lp->header);
  lp->i = LLVMBuildPhi(cg->b, cg->i64, "i");
  if (cg->depth++ == 0) cg->outer_pre = pre;
  LLVMValueRef zero = ci(cg, 0);
  LLVMAddIncoming(lp->i, &zero, &pre, 1);
  LLVMValueRef more = LLVMBuildICmp(cg->b, LLVMIntSLT, lp->i, count, "");
  LLVMBuildCondBr(cg->b, more, body, lp->exit);
  LLVMPositionBuilderAtEnd(cg->b, body);
  return lp->i;
}

static void loop_end(CG *cg, Loop *lp) {
  cg->depth--;
  LLVMValueRef next = LLVMBuildNUWAdd(cg->b, lp->i, ci(cg, 1), "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
  LLVMBuildBr(cg->b, lp->header);
  LLVMAddIncoming(lp->i, &next, &latch, 1);
  LLVMPositionBuilderAtEnd(cg->b, lp->exit);
}

typedef struct Iter {
  Shape shape;        /* the index space */
  LLVMValueRef count; /* a runtime trip count (rank 1), or NULL */
  bool unrolled;
  int64_t k, total;   /* unrolled: the current flat index and the count */
  int64_t saved;      /* cg->unroll before this iter */
  int state;          /* 0 before the body, 1 in it */
  Loop loops[MAX_RANK];
  LLVMValueRef idx[MAX_RANK];
} Iter;

static void iter_setup(CG *cg, Iter *it, const Shape *s, LLVMValueRef count) {
  memset(it, 0, sizeof *it);
  it->shape = *s;
  it->count = count;
  if (count && LLVMIsAConstantInt(count)) {
    it->shape = shape1(LLVMConstIntGetSExtValue(count));
    it->count = NULL;
  }
  it->total = it->count ? -1 : shape_numel(&it->shape);
  it->unrolled = !it->count && (it->total <= 1 || (it->total <= UNROLL_TRIP && cg->unroll * it->total <= UNROLL_LIMIT));
}

/* every index of a static shape */
static void iter_shape(CG *cg, Iter *it, const Shape *s) { iter_setup(cg, it, s, NULL); }

/* 0 .. count-1 */
static void iter_range(CG *cg, Iter *it, LLVMValueRef count) {
  Shape one = shape1(1);
  iter_setup(cg, it, &one, count);
}

/* the rows of a batched node (n of them) or the single row of another */
static void iter_rows(CG *cg, Iter *it, const Node *n) { iter_range(cg, it, n->batched ? cg->n : ci(cg, 1)); }

static bool iter_next(CG *cg, Iter *it) {
  if (it->unrolled) {
    if (it->state == 0) {
      it->state = 1;
      it->saved = cg->unroll;
      cg->unroll *= it->total > 1 ? it->total : 1;
    } else {
      it->k++;
    }
    if (it->k >= it->total) {
      cg->unroll = it->saved;
      return false;
    }
    int64_t rest = it->k;
    for (int d = it->shape.rank - 1; d >= 0; d--) {
      it->idx[d] = ci(cg, rest % it->shape.dim[d]);
      rest /= it->shape.dim[d];
    }
    return true;
  }
  if (it->state == 0) {
    it->state = 1;
    for (int d = 0; d < it->shape.rank; d++)
      it->idx[d] = loop_begin(cg, &it->loops[d], it->count ? it->count : ci(cg, it->shape.dim[d]));
    return true;
  }
  for (int d = it->shape.rank - 1; d >= 0; d--) loop_end(cg, &it->loops[d]);
  return false;
}

#define FOR_EACH(cg, it) while (iter_next((cg), &(it)))

/* ---- element access ---- */

static LLVMValueRef linear_index(CG *cg, const Shape *s, LLVMValueRef *idx) {
  LLVMValueRef lin = ci(cg, 0);
  int64_t stride = 1;
  for (int d = s->rank - 1; d >= 0; d--) {
    lin = iadd(cg, lin, imul(cg, idx[d], ci(cg, stride)));
    stride *= s->dim[d];
  }
  return lin;
}

static LLVMValueRef elem_ptr(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef lin) {
  const Store *s = &cg->st[n->id];
  LLVMValueRef off = iadd(cg, lin, ci(cg, s->off));
  if (n->batched && s->row_stride) off = iadd(cg, off, imul(cg, row, ci(cg, s->row_stride)));
  return LLVMBuildInBoundsGEP2(cg->b, cg->T, s->base, &off, 1, "");
}

/* The cache entry of element lin of row `row` of n, or NULL when the
 * element is not a known constant position in straight-line code. */
static LLVMValueRef *cache_slot(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef lin, bool **dirty) {
  if (cg->depth != 0 || !LLVMIsAConstantInt(lin) || (n->batched && !LLVMIsAConstantInt(row))) return NULL;
  int64_t numel = shape_numel(&n->shape), rows = n->batched ? cg->max_batch : 1;
  int64_t r = n->batched ? LLVMConstIntGetSExtValue(row) : 0, e = LLVMConstIntGetSExtValue(lin);
  if (r < 0 || r >= rows || e < 0 || e >= numel) return NULL;
  if (!cg->cache[n->id]) {
    cg->cache[n->id] = nnc_xcalloc((size_t)(numel * rows), sizeof(LLVMValueRef));
    cg->dirty[n->id] = nnc_xcalloc((size_t)(numel * rows), sizeof(bool));
  }
  *dirty = &cg->dirty[n->id][r * numel + e];
  return &cg->cache[n->id][r * numel + e];
}

/* Store n's cached values that memory does not have yet: here in
 * straight-line code, or inside a loop at the end of the block before the
 * outermost loop (where they are all defined). */
static void flush(CG *cg, const Node *n) {
  if (!cg->cache[n->id]) return;
  LLVMBuilderRef b = cg->b;
  if (cg->depth > 0) {
    b = LLVMCreateBuilderInContext(cg->ctx);
    LLVMPositionBuilderBefore(b, LLVMGetBasicBlockTerminator(cg->outer_pre));
  }
  int64_t numel = shape_numel(&n->shape), rows = n->batched ? cg->max_batch : 1;
  const Store *st = &cg->st[n->id];
  for (int64_t k = 0; k < numel * rows; k++) {
    if (!cg->dirty[n->id][k]) continue;
    LLVMValueRef off = ci(cg, st->off + (k / numel) * st->row_stride + k % numel);
    LLVMBuildStore(b, cg->cache[n->id][k], LLVMBuildInBoundsGEP2(b, cg->T, st->base, &off, 1, ""));
    cg->dirty[n->id][k] = false;
  }
  if (b != cg->b) LLVMDisposeBuilder(b);
}

static LLVMValueRef mem_load(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef lin) {
  bool *dirty;
  LLVMValueRef *slot = cache_slot(cg, n, row, lin, &dirty);
  if (slot && *slot) return *slot;
  if (!slot) flush(cg, n);
  LLVMValueRef v = LLVMBuildLoad2(cg->b, cg->T, elem_ptr(cg, n, row, lin), "");
  if (slot) *slot = v;
  return v;
}

/* In straight-line code a store only records the value; memory gets it
 * when something reads the element where the value is not at hand. */
static void mem_store(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef lin, LLVMValueRef v) {
  bool *dirty;
  LLVMValueRef *slot = cache_slot(cg, n, row, lin, &dirty);
  /* the buffer is the function's result: it is written at once */
  if (slot && cg->st[n->id].base != cg->buf) {
    *slot = v;
    *dirty = true;
    return;
  }
  if (slot) {
    LLVMBuildStore(cg->b, v, elem_ptr(cg, n, row, lin));
    *slot = v;
    return;
  }
  flush(cg, n);
  LLVMBuildStore(cg->b, v, elem_ptr(cg, n, row, lin));
  if (cg->cache[n->id]) { /* what was known no longer is */
    int64_t len = shape_numel(&n->shape) * (n->batched ? cg->max_batch : 1);
    memset(cg->cache[n->id], 0, sizeof(LLVMValueRef) * (size_t)len);
  }
}

/* Drop what the cache knows of n (its memory is about to be written
 * directly). */
static void forget_node(CG *cg, const Node *n) {
  if (!cg->cache[n->id]) return;
  int64_t len = shape_numel(&n->shape) * (n->batched ? cg->max_batch : 1);
  memset(cg->cache[n->id], 0, sizeof(LLVMValueRef) * (size_t)len);
  memset(cg->dirty[n->id], 0, sizeof(bool) * (size_t)len);
}

static void forget_cache(CG *cg) {
  for (int i = 0; i < cg->g->len; i++) {
    free(cg->cache[i]);
    free(cg->dirty[i]);
    cg->cache[i] = NULL;
    cg->dirty[i] = NULL;
  }
}

/* Index of a broadcast operand of shape `from` for an element of `to`. */
static void broadcast_index(CG *cg, const Shape *from, const Shape *to, LLVMValueRef *idx,
                            LLVMValueRef *out) {
  for (int d = 0; d < from->rank; d++) {
    int j = to->rank - from->rank + d;
    out[d] = from->dim[d] == 1 ? ci(cg, 0) : idx[j];
  }
}

static LLVMValueRef load_elem(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx);

static bool is_elementwise(const Node *n) {
  return op_info[n->op].cls == OPC_UNARY || op_info[n->op].cls == OPC_BINARY;
}

/* Element idx of row `row` of an elementwise node, from its operands. */
static LLVMValueRef elem_value(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx) {
  if (op_info[n->op].cls == OPC_UNARY)
    return cg_scalar(cg, n->op, load_elem(cg, n->in[0], row, idx), NULL, n->attr.value);
  LLVMValueRef ia[MAX_RANK], ib[MAX_RANK];
  broadcast_index(cg, &n->in[0]->shape, &n->shape, idx, ia);
  broadcast_index(cg, &n->in[1]->shape, &n->shape, idx, ib);
  LLVMValueRef a = load_elem(cg, n->in[0], row, ia), b = load_elem(cg, n->in[1], row, ib);
  return cg_scalar(cg, n->op, a, b, n->attr.value);
}

static LLVMValueRef load_elem(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx) {
  const Store *s = &cg->st[n->id];
  LLVMValueRef sub[MAX_RANK];
  switch (s->kind) {
  case ST_CONST: case ST_VALUE:
    return s->value;
  case ST_INLINE:
    return elem_value(cg, n, row, idx);
  case ST_MEM:
    return mem_load(cg, n, row, linear_index(cg, &n->shape, idx));
  case ST_VIEW: {
    const Node *a = n->in[0];
    if (n->op == OP_TRANSPOSE) {
      sub[0] = idx[1];
      sub[1] = idx[0];
      return load_elem(cg, a, row, sub);
    }
    if (n->op == OP_BROADCAST) {
      broadcast_index(cg, &a->shape, &n->shape, idx, sub);
      return load_elem(cg, a, row, sub);
    }
    /* reshape: same elements, same order */
    LLVMValueRef lin = linear_index(cg, &n->shape, idx);
    if (cg->st[a->id].kind == ST_MEM) return mem_load(cg, a, row, lin);
    for (int d = a->shape.rank - 1; d >= 0; d--) {
      LLVMValueRef dim = ci(cg, a->shape.dim[d]);
      sub[d] = LLVMBuildURem(cg->b, lin, dim, "");
      lin = LLVMBuildUDiv(cg->b, lin, dim, "");
    }
    return load_elem(cg, a, row, sub);
  }
  case ST_NONE:
    break;
  }
  nnc_die("codegen: node %d (%s) has no storage", n->id, op_info[n->op].name);
}

static void store_elem(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx, LLVMValueRef v) {
  mem_store(cg, n, row, linear_index(cg, &n->shape, idx), v);
}

/* ---- scalar semantics (mirror interp.c's op_scalar) ---- */

static LLVMValueRef clamp_log(CG *cg, LLVMValueRef x) {
  LLVMValueRef l = intrinsic1(cg, "llvm.log", x);
  return sel(cg, fgt(cg, l, cT(cg, -100)), l, cT(cg, -100));
}

static LLVMValueRef power(CG *cg, LLVMValueRef x, double p) {
  if (p == 2) return b_fmul(cg, x, x);
  if (p == 1) return x;
  if (p == 3) return b_fmul(cg, b_fmul(cg, x, x), x);
  if (p == -1) return b_fdiv(cg, cT(cg, 1), x);
  if (p == 0.5) return intrinsic1(cg, "llvm.sqrt", x);
  LLVMValueRef args[2] = {x, cT(cg, p)};
  return intrinsic(cg, "llvm.pow", args, 2);
}

LLVMValueRef cg_scalar(CG *cg, Op op, LLVMValueRef a, LLVMValueRef b, double attr) {
  LLVMValueRef zero = cT(cg, 0), one = cT(cg, 1);
  switch (op) {
  case OP_NEG: return LLVMBuildFNeg(cg->b, a, "");
  case OP_RELU: return sel(cg, fgt(cg, a, zero), a, zero);
  case OP_SIGMOID: {
    LLVMValueRef e = intrinsic1(cg, "llvm.exp", LLVMBuildFNeg(cg->b, intrinsic1(cg, "llvm.fabs", a), ""));
    LLVMValueRef num = sel(cg, LLVMBuildFCmp(cg->b, LLVMRealOGE, a, zero, ""), one, e);
    return b_fdiv(cg, num, b_fadd(cg, one, e));
  }
  case OP_TANH: return libm1(cg, "tanh", a);
  case OP_EXP: return intrinsic1(cg, "llvm.exp", a);
  case OP_LOG: return intrinsic1(cg, "llvm.log", a);
  case OP_SQRT: return intrinsic1(cg, "llvm.sqrt", a);
  case OP_ABS: return intrinsic1(cg, "llvm.fabs", a);
  case OP_SOFTPLUS: {
    LLVMValueRef e = intrinsic1(cg, "llvm.exp", LLVMBuildFNeg(cg->b, intrinsic1(cg, "llvm.fabs", a), ""));
    return b_fadd(cg, sel(cg, fgt(cg, a, zero), a, zero), libm1(cg, "log1p", e));
  }
  case OP_LEAKY_RELU: return sel(cg, fgt(cg, a, zero), a, b_fmul(cg, cT(cg, attr), a));
  case OP_POW: return power(cg, a, attr);
  case OP_STEP: return sel(cg, fgt(cg, a, cT(cg, attr)), one, zero);
  case OP_SIGN:
    return sel(cg, fgt(cg, a, zero), one,
               sel(cg, LLVMBuildFCmp(cg->b, LLVMRealOLT, a, zero, ""), cT(cg, -1), zero));
  case OP_LEAKY_STEP: return sel(cg, fgt(cg, a, zero), one, cT(cg, attr));
  case OP_MAXC: return sel(cg, fgt(cg, a, cT(cg, attr)), a, cT(cg, attr));
  case OP_ADD: return b_fadd(cg, a, b);
  case OP_SUB: return b_fsub(cg, a, b);
  case OP_MUL: return b_fmul(cg, a, b);
  case OP_DIV: return b_fdiv(cg, a, b);
  case OP_BCE: {
    LLVMValueRef pos = b_fmul(cg, b, clamp_log(cg, a));
    LLVMValueRef neg = b_fmul(cg, b_fsub(cg, one, b), clamp_log(cg, b_fsub(cg, one, a)));
    return LLVMBuildFNeg(cg->b, b_fadd(cg, pos, neg), "");
  }
  case OP_INPUT: case OP_TARGET: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_INV_BATCH:
  case OP_SUM: case OP_MEAN: case OP_LOGSUMEXP: case OP_SOFTMAX: case OP_LOG_SOFTMAX:
  case OP_MATMUL: case OP_OUTER: case OP_TRANSPOSE: case OP_BROADCAST: case OP_RESHAPE:
  case OP_SUM_TO: case OP_BATCH_SUM: case OP_BATCH_MEAN: case OP_COUNT:
    break;
  }
  nnc_die("codegen: %s is not elementwise", op_info[op].name);
}

/* ---- kernels: one per op class ---- */

/* Name a computed value after its IR node, so the LLVM IR reads like
 * --emit opt (%d.linear1.W, %3, ...). */
static const char *llvm_name(CG *cg, const Node *n, char *buf, size_t len) {
  const char *label = cg->labels[n->id] + 1; /* without the % */
  snprintf(buf, len, "%s%s", label[0] >= '0' && label[0] <= '9' ? "v" : "", label);
  return buf;
}

void cg_name_value(CG *cg, LLVMValueRef v, const Node *n) {
  char name[128];
  if (!LLVMIsAInstruction(v)) return;
  llvm_name(cg, n, name, sizeof name);
  LLVMSetValueName2(v, name, strlen(name));
}

/* Would an Iter over `total` indices here be unrolled? */
static bool would_unroll(const CG *cg, int64_t total) {
  return total <= 1 || (total <= UNROLL_TRIP && cg->unroll * total <= UNROLL_LIMIT);
}

/* A running value (sum, max). When the loop that updates it is unrolled it
 * is a plain SSA value; otherwise a stack slot that LLVM turns into a phi. */
typedef struct Acc {
  LLVMValueRef slot; /* NULL: SSA */
  LLVMValueRef value;
} Acc;

static Acc acc_new(CG *cg, double start, bool unrolled) {
  Acc a = {NULL, cT(cg, start)};
  if (!unrolled) {
    a.slot = LLVMBuildAlloca(cg->alloc, cg->T, "acc");
    LLVMBuildStore(cg->b, a.value, a.slot);
  }
  return a;
}

static LLVMValueRef acc_get(CG *cg, Acc *a) {
  return a->slot ? LLVMBuildLoad2(cg->b, cg->T, a->slot, "") : a->value;
}

static void acc_set(CG *cg, Acc *a, LLVMValueRef v) {
  if (a->slot)
    LLVMBuildStore(cg->b, v, a->slot);
  else
    a->value = v;
}

static void acc_add(CG *cg, Acc *a, LLVMValueRef v) { acc_set(cg, a, facc(cg, acc_get(cg, a), v)); }

/* a = max(a, v); from -inf the first value is the max */
static void acc_max(CG *cg, Acc *a, LLVMValueRef v) {
  LLVMValueRef m = acc_get(cg, a);
  acc_set(cg, a, is_const_fp(m, -INFINITY) ? v : sel(cg, fgt(cg, v, m), v, m));
}

/* Elementwise ops, and views that must be materialized. */
static void emit_elementwise(CG *cg, const Node *n) {
  Iter rows, el;
  iter_rows(cg, &rows, n);
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0];
    iter_shape(cg, &el, &n->shape);
    FOR_EACH(cg, el) {
      LLVMValueRef v;
      if (is_elementwise(n)) {
        v = elem_value(cg, n, row, el.idx);
      } else {
        /* a view read through itself (its storage was switched to memory) */
        Store saved = cg->st[n->id];
        cg->st[n->id].kind = ST_VIEW;
        v = load_elem(cg, n, row, el.idx);
        cg->st[n->id] = saved;
      }
      cg_name_value(cg, v, n);
      store_elem(cg, n, row, el.idx, v);
    }
  }
}

/* sum, mean, logsumexp over one axis or all of them. */
static void emit_reduce(CG *cg, const Node *n) {
  const Node *a = n->in[0];
  bool all = n->attr.axis == AXIS_ALL;
  /* the reduced index space: every element, or the one axis */
  Shape red = all ? a->shape : shape1(a->shape.dim[n->attr.axis]);
  Iter rows, out, in;
  iter_rows(cg, &rows, n);
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0];
    iter_shape(cg, &out, &n->shape);
    FOR_EACH(cg, out) {
      LLVMValueRef idx[MAX_RANK];
      LLVMValueRef m = NULL, result;
      if (n->op == OP_LOGSUMEXP) {
        Acc mx = acc_new(cg, -INFINITY, would_unroll(cg, shape_numel(&red)));
        iter_shape(cg, &in, &red);
        FOR_EACH(cg, in) {
          for (int d = 0, j = 0; d < a->shape.rank; d++)
            idx[d] = all ? in.idx[d] : d == n->attr.axis ? in.idx[0] : out.idx[j++];
          acc_max(cg, &mx, load_elem(cg, a, row, idx));
        }
        m = acc_get(cg, &mx);
      }
      Acc sum = acc_new(cg, 0, would_unroll(cg, shape_numel(&red)));
      iter_shape(cg, &in, &red);
      FOR_EACH(cg, in) {
        for (int d = 0, j = 0; d < a->shape.rank; d++)
          idx[d] = all ? in.idx[d] : d == n->attr.axis ? in.idx[0] : out.idx[j++];
        LLVMValueRef v = load_elem(cg, a, row, idx);
        acc_add(cg, &sum, m ? intrinsic1(cg, "llvm.exp", b_fsub(cg, v, m)) : v);
      }
      result = acc_get(cg, &sum);
      if (n->op == OP_MEAN) result = b_fdiv(cg, result, cT(cg, (double)shape_numel(&red)));
      if (n->op == OP_LOGSUMEXP) {
        LLVMValueRef finite =
            LLVMBuildFCmp(cg->b, LLVMRealOLT, intrinsic1(cg, "llvm.fabs", m), cT(cg, INFINITY), "");
        result = sel(cg, finite, b_fadd(cg, m, intrinsic1(cg, "llvm.log", result)), m);
      }
      cg_name_value(cg, result, n);
      store_elem(cg, n, row, out.idx, result);
    }
  }
}

/* softmax and log_softmax along the last axis. */
static void emit_softmax(CG *cg, const Node *n) {
  const Node *a = n->in[0];
  int last = n->shape.rank - 1;
  Shape outer = n->shape;
  outer.rank = last;
  LLVMValueRef len = ci(cg, n->shape.dim[last]);
  Iter rows, ol, kl;
  iter_rows(cg, &rows, n);
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0];
    iter_shape(cg, &ol, &outer);
    FOR_EACH(cg, ol) {
      LLVMValueRef idx[MAX_RANK];
      for (int d = 0; d < last; d++) idx[d] = ol.idx[d];
      bool unrolled = would_unroll(cg, n->shape.dim[last]);
      Acc mx = acc_new(cg, -INFINITY, unrolled);
      iter_range(cg, &kl, len);
      FOR_EACH(cg, kl) {
        idx[last] = kl.idx[0];
        acc_max(cg, &mx, load_elem(cg, a, row, idx));
      }
      LLVMValueRef m = acc_get(cg, &mx);
      Acc sum = acc_new(cg, 0, unrolled);
      iter_range(cg, &kl, len);
      FOR_EACH(cg, kl) {
        idx[last] = kl.idx[0];
        acc_add(cg, &sum, intrinsic1(cg, "llvm.exp", b_fsub(cg, load_elem(cg, a, row, idx), m)));
      }
      LLVMValueRef s = acc_get(cg, &sum);
      LLVMValueRef logs = n->op == OP_LOG_SOFTMAX ? intrinsic1(cg, "llvm.log", s) : NULL;
      iter_range(cg, &kl, len);
      FOR_EACH(cg, kl) {
        idx[last] = kl.idx[0];
        LLVMValueRef z = b_fsub(cg, load_elem(cg, a, row, idx), m);
        LLVMValueRef r = n->op == OP_SOFTMAX ? b_fdiv(cg, intrinsic1(cg, "llvm.exp", z), s) : b_fsub(cg, z, logs);
        cg_name_value(cg, r, n);
        store_elem(cg, n, row, idx, r);
      }
    }
  }
}

static void emit_matmul(CG *cg, const Node *n) {
  const Node *A = n->in[0], *B = n->in[1];
  int64_t m = A->shape.rank == 2 ? A->shape.dim[0] : 1;
  int64_t k = A->shape.dim[A->shape.rank - 1];
  int64_t nn = B->shape.rank == 2 ? B->shape.dim[1] : 1;
  Shape out = shape2(m, nn);
  Iter rows, ij, q;
  iter_rows(cg, &rows, n);
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0];
    iter_shape(cg, &ij, &out);
    FOR_EACH(cg, ij) {
      LLVMValueRef i = ij.idx[0], j = ij.idx[1];
      Acc acc = acc_new(cg, 0, would_unroll(cg, k));
      iter_range(cg, &q, ci(cg, k));
      FOR_EACH(cg, q) {
        LLVMValueRef ia[2] = {A->shape.rank == 2 ? i : q.idx[0], q.idx[0]};
        LLVMValueRef ib[2] = {q.idx[0], j};
        acc_add(cg, &acc, b_fmul(cg, load_elem(cg, A, row, ia), load_elem(cg, B, row, ib)));
      }
      LLVMValueRef o[2];
      int r = 0;
      if (A->shape.rank == 2) o[r++] = i;
      if (B->shape.rank == 2) o[r++] = j;
      LLVMValueRef v = acc_get(cg, &acc);
      cg_name_value(cg, v, n);
      store_elem(cg, n, row, o, v);
    }
  }
}

static void emit_outer(CG *cg, const Node *n) {
  Iter rows, el;
  iter_rows(cg, &rows, n);
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0];
    iter_shape(cg, &el, &n->shape);
    FOR_EACH(cg, el) {
      LLVMValueRef v =
          b_fmul(cg, load_elem(cg, n->in[0], row, &el.idx[0]), load_elem(cg, n->in[1], row, &el.idx[1]));
      cg_name_value(cg, v, n);
      store_elem(cg, n, row, el.idx, v);
    }
  }
}

static void zero_node(CG *cg, const Node *n, LLVMValueRef row) {
  Iter el;
  iter_shape(cg, &el, &n->shape);
  FOR_EACH(cg, el) { store_elem(cg, n, row, el.idx, cT(cg, 0)); }
}

/* out[i] += v, for accumulations whose order follows the source */
static void add_into(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx, LLVMValueRef v) {
  LLVMValueRef lin = linear_index(cg, &n->shape, idx);
  mem_store(cg, n, row, lin, facc(cg, mem_load(cg, n, row, lin), v));
}

/* sum_to: add every element of the operand into its broadcast source. */
static void emit_sum_to(CG *cg, const Node *n) {
  const Node *a = n->in[0];
  Iter rows, el;
  iter_rows(cg, &rows, n);
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0];
    zero_node(cg, n, row);
    iter_shape(cg, &el, &a->shape);
    FOR_EACH(cg, el) {
      LLVMValueRef oi[MAX_RANK];
      broadcast_index(cg, &n->shape, &a->shape, el.idx, oi);
      add_into(cg, n, row, oi, load_elem(cg, a, row, el.idx));
    }
  }
}

/* batch_sum / batch_mean: sum the rows (a per-batch operand counts n times). */
static void emit_batch(CG *cg, const Node *n) {
  const Node *a = n->in[0];
  LLVMValueRef zero = ci(cg, 0);
  Iter el, rows;
  if (!a->batched) {
    iter_shape(cg, &el, &n->shape);
    FOR_EACH(cg, el) {
      LLVMValueRef v = load_elem(cg, a, zero, el.idx);
      if (n->op == OP_BATCH_SUM) v = b_fmul(cg, v, LLVMBuildSIToFP(cg->b, cg->n, cg->T, ""));
      store_elem(cg, n, zero, el.idx, v);
    }
    return;
  }
  zero_node(cg, n, zero);
  iter_range(cg, &rows, cg->n);
  FOR_EACH(cg, rows) {
    iter_shape(cg, &el, &n->shape);
    FOR_EACH(cg, el) { add_into(cg, n, zero, el.idx, load_elem(cg, a, rows.idx[0], el.idx)); }
  }
  if (n->op == OP_BATCH_MEAN) {
    iter_shape(cg, &el, &n->shape);
    FOR_EACH(cg, el) {
      LLVMValueRef lin = linear_index(cg, &n->shape, el.idx);
      mem_store(cg, n, zero, lin, b_fmul(cg, mem_load(cg, n, zero, lin), cg->inv_n));
    }
  }
}


/* ---- matrix products: register-blocked GEMM ----
 *
 * Large products run as C[M,N] = sum_k A(m,k) B(k,n) with B contiguous
 * along n (packed into the workspace when it is not): a block of MR rows x
 * NR columns of C stays in vector registers while k runs, each step
 * loading NR/VL vectors of B and broadcasting MR scalars of A into FMAs.
 * Columns past the last full block fall back to scalar code. Every C
 * element still sums over k in order, as the interpreter does.
 */

/* Rows of C per block; the columns are cg->gemm_nv vectors: 6 x 2 x 8
 * floats in 12 of AVX2's 16 registers, 6 x 4 x 16 in 24 of AVX-512's 32. */
enum { GEMM_MR = 6 };

/* How A(m, k) is read, per the IR pattern being computed. */
typedef enum AMode {
  A_ROWVEC,   /* A(m,k) = X[row m][k]            (X batched vector [K]) */
  A_MATRIX,   /* A(m,k) = X[row][m,k]            (one row of a batched matrix) */
  A_ROWS_T    /* A(m,k) = X[row k][m]            (batch_sum(outer(X, B))) */
} AMode;

typedef struct Gemm {
  LLVMValueRef M, K; /* i64, constant or n */
  int64_t N;
  const Node *A;
  AMode amode;
  LLVMValueRef row;  /* A_MATRIX: the row */
  LLVMValueRef B;    /* pointer to B(0,0); B(k,n) at B + k*ldb + n */
  int64_t ldb;
  LLVMValueRef C;    /* pointer to C(0,0); C(m,n) at C + m*ldc + n */
  int64_t ldc;
  const Node *g;     /* the node the GEMM computes */
  const Node *sink;  /* with an epilogue: the node stored instead (C is its memory) */
} Gemm;

static LLVMValueRef epilogue(CG *cg, const Gemm *gm, LLVMValueRef m, LLVMValueRef n, int lanes, LLVMValueRef acc);

static LLVMValueRef gemm_a(CG *cg, const Gemm *gm, LLVMValueRef m, LLVMValueRef k) {
  LLVMValueRef idx[2];
  switch (gm->amode) {
  case A_ROWVEC: idx[0] = k; return load_elem(cg, gm->A, m, idx);
  case A_MATRIX: idx[0] = m; idx[1] = k; return load_elem(cg, gm->A, gm->row, idx);
  case A_ROWS_T: idx[0] = m; return load_elem(cg, gm->A, k, idx);
  }
  return NULL;
}

static LLVMValueRef gep(CG *cg, LLVMValueRef base, LLVMValueRef off) {
  return LLVMBuildInBoundsGEP2(cg->b, cg->T, base, &off, 1, "");
}

static LLVMValueRef splat(CG *cg, LLVMValueRef x, int vl) {
  LLVMTypeRef vt = LLVMVectorType(cg->T, (unsigned)vl);
  LLVMValueRef v = LLVMBuildInsertElement(cg->b, LLVMGetUndef(vt), x, ci(cg, 0), "");
  LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(LLVMInt32TypeInContext(cg->ctx), (unsigned)vl));
  return LLVMBuildShuffleVector(cg->b, v, LLVMGetUndef(vt), zeros, "");
}

static LLVMValueRef vfma(CG *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c, LLVMTypeRef vt) {
  unsigned id = LLVMLookupIntrinsicID("llvm.fmuladd", 12);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, &vt, 1);
  LLVMTypeRef ty = LLVMIntrinsicGetType(cg->ctx, id, &vt, 1);
  LLVMValueRef args[3] = {a, b, c};
  return LLVMBuildCall2(cg->b, ty, fn, args, 3, "");
}

/* One MR x NR block of C at rows m0.., columns n0..: the microkernel. */
static void gemm_block(CG *cg, const Gemm *gm, LLVMValueRef m0, int mr, LLVMValueRef n0, int nv) {
  int vl = cg->vl;
  LLVMTypeRef vt = LLVMVectorType(cg->T, (unsigned)vl);
  LLVMValueRef acc[GEMM_MR][4];
  for (int i = 0; i < mr; i++)
    for (int v = 0; v < nv; v++) {
      acc[i][v] = LLVMBuildAlloca(cg->alloc, vt, "cblock");
      LLVMBuildStore(cg->b, LLVMConstNull(vt), acc[i][v]);
    }
  Loop kl;
  LLVMValueRef k = loop_begin(cg, &kl, gm->K);
  LLVMValueRef brow = iadd(cg, imul(cg, k, ci(cg, gm->ldb)), n0);
  LLVMValueRef b[4];
  for (int v = 0; v < nv; v++) {
    b[v] = LLVMBuildLoad2(cg->b, vt, gep(cg, gm->B, iadd(cg, brow, ci(cg, v * vl))), "b");
    LLVMSetAlignment(b[v], (unsigned)cg->L->elem_size);
  }
  for (int i = 0; i < mr; i++) {
    LLVMValueRef a = splat(cg, gemm_a(cg, gm, iadd(cg, m0, ci(cg, i)), k), vl);
    for (int v = 0; v < nv; v++) {
      LLVMValueRef c = LLVMBuildLoad2(cg->b, vt, acc[i][v], "");
      LLVMBuildStore(cg->b, vfma(cg, a, b[v], c, vt), acc[i][v]);
    }
  }
  loop_end(cg, &kl);
  for (int i = 0; i < mr; i++)
    for (int v = 0; v < nv; v++) {
      LLVMValueRef m = iadd(cg, m0, ci(cg, i)), n = iadd(cg, n0, ci(cg, v * vl));
      LLVMValueRef off = iadd(cg, imul(cg, m, ci(cg, gm->ldc)), n);
      LLVMValueRef val = LLVMBuildLoad2(cg->b, vt, acc[i][v], "");
      if (gm->sink) val = epilogue(cg, gm, m, n, vl, val);
      LLVMValueRef st = LLVMBuildStore(cg->b, val, gep(cg, gm->C, off));
      LLVMSetAlignment(st, (unsigned)cg->L->elem_size);
    }
}

/* Rows m0.. of C (mr at a time), every column. */
static void gemm_rows(CG *cg, const Gemm *gm, LLVMValueRef m0, int mr) {
  int nr = cg->gemm_nv * cg->vl;
  int64_t nfull = gm->N / nr, done = nfull * nr;
  if (nfull > 0) {
    Loop nl;
    LLVMValueRef nb = loop_begin(cg, &nl, ci(cg, nfull));
    gemm_block(cg, gm, m0, mr, imul(cg, nb, ci(cg, nr)), cg->gemm_nv);
    loop_end(cg, &nl);
  }
  if (gm->N - done >= cg->vl) {
    gemm_block(cg, gm, m0, mr, ci(cg, done), 1);
    done += cg->vl;
  }
  /* the last columns, one at a time */
  for (int i = 0; i < mr && done < gm->N; i++) {
    Loop jl, kl;
    LLVMValueRef m = iadd(cg, m0, ci(cg, i));
    LLVMValueRef j = iadd(cg, loop_begin(cg, &jl, ci(cg, gm->N - done)), ci(cg, done));
    Acc acc = acc_new(cg, 0, false);
    LLVMValueRef k = loop_begin(cg, &kl, gm->K);
    LLVMValueRef bv = LLVMBuildLoad2(cg->b, cg->T, gep(cg, gm->B, iadd(cg, imul(cg, k, ci(cg, gm->ldb)), j)), "");
    acc_add(cg, &acc, b_fmul(cg, gemm_a(cg, gm, m, k), bv));
    loop_end(cg, &kl);
    LLVMValueRef val = acc_get(cg, &acc);
    if (gm->sink) val = epilogue(cg, gm, m, j, 1, val);
    LLVMBuildStore(cg->b, val, gep(cg, gm->C, iadd(cg, imul(cg, m, ci(cg, gm->ldc)), j)));
    loop_end(cg, &jl);
  }
}

/* ---- GEMM epilogues ----
 *
 * A GEMM node g whose only reader is elementwise, and so on up to a node
 * that is stored (the sink: a layer's relu output, a relu-masked gradient,
 * an SGD update written in place), is computed with the sink's expression
 * applied to its accumulators: one pass instead of a GEMM writing g and a
 * loop reading it back (plan() finds these chains). The expression is
 * built by cg_scalar() on whole vectors, so its arithmetic is the one the
 * loop would have done, element by element.
 */

/* Ops an epilogue computes on vectors (no calls to libm). */
static bool epi_op(Op op) {
  return op == OP_NEG || op == OP_RELU || op == OP_STEP || op == OP_LEAKY_RELU || op == OP_LEAKY_STEP ||
         op == OP_MAXC || op == OP_SIGN || op == OP_ADD || op == OP_SUB || op == OP_MUL || op == OP_DIV;
}

/* How an operand read from memory lines up with g's elements: g is either
 * batched [N] (row m, element n) or one [M,N] matrix (element m*N + n). */
typedef enum EpiRead { EPI_NO, EPI_SAME, EPI_ROWVEC, EPI_SCALAR, EPI_ROWSCALAR } EpiRead;

static EpiRead epi_read(const CG *cg, const Node *x, const Node *g) {
  const Store *s = &cg->st[x->id];
  if (s->kind == ST_CONST || s->kind == ST_VALUE) return EPI_SCALAR;
  if (s->kind != ST_MEM) return EPI_NO;
  if (x->batched == g->batched && shape_eq(&x->shape, &g->shape) &&
      (!x->batched || s->row_stride == shape_numel(&x->shape)))
    return EPI_SAME;
  if (g->batched && !x->batched && x->shape.rank == 1 && x->shape.dim[0] == g->shape.dim[0]) return EPI_ROWVEC;
  if (shape_numel(&x->shape) == 1) return x->batched ? (g->batched ? EPI_ROWSCALAR : EPI_NO) : EPI_SCALAR;
  return EPI_NO;
}

static bool epi_ok(const CG *cg, const Node *x, const Node *g) {
  if (x == g) return true;
  if (cg->st[x->id].kind != ST_INLINE) return epi_read(cg, x, g) != EPI_NO;
  if (!is_elementwise(x) || !epi_op(x->op) || x->batched != g->batched || !shape_eq(&x->shape, &g->shape))
    return false;
  for (int k = 0; k < op_info[x->op].nin; k++)
    if (!epi_ok(cg, x->in[k], g)) return false;
  return true;
}

/* Stored operands of the epilogue: their cached values go to memory first. */
static void epi_flush(CG *cg, const Gemm *gm, const Node *x) {
  if (x == gm->g) return;
  if (x != gm->sink && cg->st[x->id].kind != ST_INLINE) {
    if (cg->st[x->id].kind == ST_MEM) flush(cg, x);
    return;
  }
  for (int k = 0; k < op_info[x->op].nin; k++) epi_flush(cg, gm, x->in[k]);
}

static LLVMValueRef epi_load(CG *cg, const Node *x, LLVMValueRef row, LLVMValueRef lin, int lanes) {
  LLVMValueRef ptr = elem_ptr(cg, x, row, lin);
  LLVMValueRef v = LLVMBuildLoad2(cg->b, lanes > 1 ? LLVMVectorType(cg->T, (unsigned)lanes) : cg->T, ptr, "");
  LLVMSetAlignment(v, (unsigned)cg->L->elem_size);
  return v;
}

static LLVMValueRef epi_value(CG *cg, const Gemm *gm, const Node *x, LLVMValueRef m, LLVMValueRef n, int lanes,
                              LLVMValueRef acc) {
  if (x == gm->g) return acc;
  const Store *s = &cg->st[x->id];
  if (x == gm->sink || s->kind == ST_INLINE) {
    LLVMValueRef a = epi_value(cg, gm, x->in[0], m, n, lanes, acc);
    LLVMValueRef b = op_info[x->op].nin > 1 ? epi_value(cg, gm, x->in[1], m, n, lanes, acc) : NULL;
    return cg_scalar(cg, x->op, a, b, x->attr.value);
  }
  const Node *g = gm->g;
  LLVMValueRef v = NULL;
  switch (epi_read(cg, x, g)) {
  case EPI_SAME:
    if (g->batched)
      return epi_load(cg, x, m, n, lanes);
    return epi_load(cg, x, ci(cg, 0), iadd(cg, imul(cg, m, ci(cg, g->shape.dim[1])), n), lanes);
  case EPI_ROWVEC: return epi_load(cg, x, ci(cg, 0), n, lanes);
  case EPI_SCALAR:
    v = s->kind == ST_MEM ? epi_load(cg, x, ci(cg, 0), ci(cg, 0), 1) : s->value;
    break;
  case EPI_ROWSCALAR: v = epi_load(cg, x, m, ci(cg, 0), 1); break;
  case EPI_NO: nnc_die("codegen: node %d cannot be read in a GEMM epilogue", x->id);
  }
  if (lanes > 1 && LLVMGetTypeKind(LLVMTypeOf(v)) != LLVMVectorTypeKind) v = splat(cg, v, lanes);
  return v;
}

/* The sink's value at C(m, n..n+lanes-1) from the accumulators `acc`. */
static LLVMValueRef epilogue(CG *cg, const Gemm *gm, LLVMValueRef m, LLVMValueRef n, int lanes, LLVMValueRef acc) {
  int saved = cg->lanes;
  cg->lanes = lanes;
  LLVMValueRef v = epi_value(cg, gm, gm->sink, m, n, lanes, acc);
  cg->lanes = saved;
  return v;
}

/* Where a GEMM node writes: its own memory, or its sink's (epilogue). */
static void gemm_target(CG *cg, Gemm *gm, const Node *n) {
  const Node *sink = cg->fused_into[n->id];
  const Store *s = &cg->st[(sink ? sink : n)->id];
  gm->g = n;
  gm->sink = sink;
  gm->C = gep(cg, s->base, ci(cg, s->off));
  if (sink) {
    epi_flush(cg, gm, sink);
    forget_node(cg, sink); /* the GEMM writes the sink's memory directly */
  } else {
    forget_node(cg, n); /* the GEMM writes memory directly */
  }
}

static void emit_gemm(CG *cg, const Gemm *gm) {
  Loop ml;
  LLVMValueRef blocks = LLVMBuildSDiv(cg->b, gm->M, ci(cg, GEMM_MR), "");
  LLVMValueRef mb = loop_begin(cg, &ml, blocks);
  gemm_rows(cg, gm, imul(cg, mb, ci(cg, GEMM_MR)), GEMM_MR);
  loop_end(cg, &ml);
  /* the last M % 6 rows as blocks of 4, 2 and 1 (one row alone is a chain
     of dependent FMAs, 4x slower per row than a block) */
  LLVMValueRef at = imul(cg, blocks, ci(cg, GEMM_MR));
  LLVMValueRef rest = LLVMBuildNSWSub(cg->b, gm->M, at, "");
  for (int mr = 4; mr >= 1; mr /= 2) {
    LLVMValueRef has = LLVMBuildICmp(cg->b, LLVMIntNE, LLVMBuildAnd(cg->b, rest, ci(cg, mr), ""), ci(cg, 0), "");
    LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "gemm_rest");
    LLVMBasicBlockRef after = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "gemm_rest_done");
    LLVMBuildCondBr(cg->b, has, then, after);
    LLVMPositionBuilderAtEnd(cg->b, then);
    gemm_rows(cg, gm, at, mr);
    LLVMBuildBr(cg->b, after);
    LLVMPositionBuilderAtEnd(cg->b, after);
    at = LLVMBuildSelect(cg->b, has, iadd(cg, at, ci(cg, mr)), at, "");
  }
}

/* v[0..vl-1] <- its transpose, by log2(vl) rounds of full-width
 * interleaves: out[2i] = lo(in[i], in[i+vl/2]), out[2i+1] = hi(...). */
static void transpose_block(CG *cg, LLVMValueRef *v) {
  int vl = cg->vl;
  LLVMTypeRef i32 = LLVMInt32TypeInContext(cg->ctx);
  LLVMValueRef lo[64], hi[64], tmp[64];
  for (int j = 0; j < vl / 2; j++) {
    lo[2 * j] = LLVMConstInt(i32, (unsigned)j, 0);
    lo[2 * j + 1] = LLVMConstInt(i32, (unsigned)(vl + j), 0);
    hi[2 * j] = LLVMConstInt(i32, (unsigned)(vl / 2 + j), 0);
    hi[2 * j + 1] = LLVMConstInt(i32, (unsigned)(vl + vl / 2 + j), 0);
  }
  LLVMValueRef mlo = LLVMConstVector(lo, (unsigned)vl), mhi = LLVMConstVector(hi, (unsigned)vl);
  for (int round = 1; round < vl; round *= 2) {
    for (int i = 0; i < vl / 2; i++) {
      tmp[2 * i] = LLVMBuildShuffleVector(cg->b, v[i], v[i + vl / 2], mlo, "");
      tmp[2 * i + 1] = LLVMBuildShuffleVector(cg->b, v[i], v[i + vl / 2], mhi, "");
    }
    for (int i = 0; i < vl; i++) v[i] = tmp[i];
  }
}

/* B(k, n) = src[k][n] (or src[n][k] with swap) packed K x N into the
 * workspace slot of `owner`. A transposed matrix in memory whose sides are
 * whole vectors goes through vl x vl register transposes. */
static LLVMValueRef pack_b(CG *cg, const Node *owner, const Node *src, int64_t K, int64_t N, bool swap) {
  LLVMValueRef pack_at = ci(cg, cg->pack_off[owner->id]);
  LLVMValueRef base = LLVMBuildInBoundsGEP2(cg->alloc, LLVMInt8TypeInContext(cg->ctx), cg->ws, &pack_at, 1, "pack");
  const Store *ss = &cg->st[src->id];
  int vl = cg->vl;
  if (swap && ss->kind == ST_MEM && !src->batched && K % vl == 0 && N % vl == 0 && vl <= 64) {
    flush(cg, src);
    LLVMTypeRef vt = LLVMVectorType(cg->T, (unsigned)vl);
    LLVMValueRef from = gep(cg, ss->base, ci(cg, ss->off));
    Loop nl, kl;
    LLVMValueRef n0 = imul(cg, loop_begin(cg, &nl, ci(cg, N / vl)), ci(cg, vl));
    LLVMValueRef k0 = imul(cg, loop_begin(cg, &kl, ci(cg, K / vl)), ci(cg, vl));
    LLVMValueRef v[64];
    for (int i = 0; i < vl; i++) { /* rows n0+i of src, columns k0.. */
      LLVMValueRef off = iadd(cg, imul(cg, iadd(cg, n0, ci(cg, i)), ci(cg, K)), k0);
      v[i] = LLVMBuildLoad2(cg->b, vt, gep(cg, from, off), "");
      LLVMSetAlignment(v[i], (unsigned)cg->L->elem_size);
    }
    transpose_block(cg, v);
    for (int i = 0; i < vl; i++) { /* rows k0+i of B, columns n0.. */
      LLVMValueRef off = iadd(cg, imul(cg, iadd(cg, k0, ci(cg, i)), ci(cg, N)), n0);
      LLVMValueRef st = LLVMBuildStore(cg->b, v[i], gep(cg, base, off));
      LLVMSetAlignment(st, (unsigned)cg->L->elem_size);
    }
    loop_end(cg, &kl);
    loop_end(cg, &nl);
    return base;
  }
  Iter it;
  Shape kn = shape2(K, N);
  iter_shape(cg, &it, &kn);
  FOR_EACH(cg, it) {
    LLVMValueRef idx[2] = {swap ? it.idx[1] : it.idx[0], swap ? it.idx[0] : it.idx[1]};
    LLVMValueRef v = load_elem(cg, src, ci(cg, 0), idx);
    LLVMBuildStore(cg->b, v, gep(cg, base, iadd(cg, imul(cg, it.idx[0], ci(cg, N)), it.idx[1])));
  }
  return base;
}

/* A uniform matrix node as a row-major pointer when it is in memory (or a
 * transpose of memory and `want_t`), else NULL. */
static LLVMValueRef direct_matrix(CG *cg, const Node *n, int64_t *ld) {
  const Store *s = &cg->st[n->id];
  if (n->batched || s->kind != ST_MEM || n->shape.rank != 2) return NULL;
  flush(cg, n); /* the GEMM reads memory, not the value cache */
  *ld = n->shape.dim[1];
  return gep(cg, s->base, ci(cg, s->off));
}

/* Is this product worth the GEMM path? */
static bool gemm_worth(const CG *cg, int64_t N, int64_t K) { return N >= 2 * cg->vl && K >= 4; }

/* matmul as GEMM when one side is a per-batch matrix and the other a
 * batched vector (layers), or per row for matrix products. */
static bool matmul_gemm_ok(const CG *cg, const Node *n) {
  const Node *L = n->in[0], *R = n->in[1];
  if (L->shape.rank == 2 && R->shape.rank == 1 && !L->batched && R->batched)
    return gemm_worth(cg, L->shape.dim[0], L->shape.dim[1]);
  if (L->shape.rank == 1 && R->shape.rank == 2 && L->batched && !R->batched)
    return gemm_worth(cg, R->shape.dim[1], R->shape.dim[0]);
  return false;
}

static bool try_gemm_matmul(CG *cg, const Node *n) {
  const Node *L = n->in[0], *R = n->in[1];
  Gemm gm = {0};
  int64_t ld;
  if (!matmul_gemm_ok(cg, n)) return false;
  if (L->shape.rank == 2 && R->shape.rank == 1 && !L->batched && R->batched) {
    /* y[r,i] = sum_q L[i,q] R[r,q]: B(q,i) = L[i,q] */
    int64_t m = L->shape.dim[0], k = L->shape.dim[1];
    if (!gemm_worth(cg, m, k)) return false;
    gm.M = cg->n, gm.K = ci(cg, k), gm.N = m;
    gm.A = R, gm.amode = A_ROWVEC;
    if (L->op == OP_TRANSPOSE && (gm.B = direct_matrix(cg, L->in[0], &ld)))
      gm.ldb = ld;
    else
      gm.B = pack_b(cg, n, L, k, m, true), gm.ldb = m;
  } else if (L->shape.rank == 1 && R->shape.rank == 2 && L->batched && !R->batched) {
    int64_t k = R->shape.dim[0], m = R->shape.dim[1];
    if (!gemm_worth(cg, m, k)) return false;
    gm.M = cg->n, gm.K = ci(cg, k), gm.N = m;
    gm.A = L, gm.amode = A_ROWVEC;
    if ((gm.B = direct_matrix(cg, R, &ld)))
      gm.ldb = ld;
    else
      gm.B = pack_b(cg, n, R, k, m, false), gm.ldb = m;
  } else {
    return false;
  }
  gemm_target(cg, &gm, n);
  gm.ldc = gm.N;
  emit_gemm(cg, &gm);
  return true;
}

/* batch_sum(outer(a, b)): C[i,j] = sum_r a[r,i] b[r,j], the weight
 * gradient of a layer, without the per-row outer products. */
static bool fused_outer(const CG *cg, const Node *n) {
  const Node *o = n->in[0];
  return n->op == OP_BATCH_SUM && o->op == OP_OUTER && o->batched && cg->st[o->id].kind == ST_INLINE;
}

static void emit_batch_outer(CG *cg, const Node *n) {
  const Node *o = n->in[0], *a = o->in[0], *b = o->in[1];
  int64_t m = a->shape.dim[0], nn = b->shape.dim[0];
  Gemm gm = {.M = ci(cg, m), .K = cg->n, .N = nn, .A = a, .amode = A_ROWS_T};
  const Store *bs = &cg->st[b->id];
  if (b->batched && bs->kind == ST_MEM) {
    flush(cg, b); /* the GEMM reads memory, not the value cache */
    gm.B = gep(cg, bs->base, ci(cg, bs->off));
    gm.ldb = bs->row_stride;
  } else {
    nnc_die("codegen: batch outer needs its right operand in memory");
  }
  gemm_target(cg, &gm, n);
  gm.ldc = nn;
  emit_gemm(cg, &gm);
}

static void emit_node(CG *cg, const Node *n) {
  switch (op_info[n->op].cls) {
  case OPC_LEAF:
    return;
  case OPC_UNARY: case OPC_BINARY: case OPC_TRANSPOSE: case OPC_BROADCAST: case OPC_RESHAPE:
    emit_elementwise(cg, n);
    return;
  case OPC_REDUCE:
    emit_reduce(cg, n);
    return;
  case OPC_LASTAXIS:
    emit_softmax(cg, n);
    return;
  case OPC_MATMUL:
    if (!try_gemm_matmul(cg, n)) emit_matmul(cg, n);
    return;
  case OPC_OUTER:
    emit_outer(cg, n);
    return;
  case OPC_SUM_TO:
    emit_sum_to(cg, n);
    return;
  case OPC_BATCH:
    if (fused_outer(cg, n))
      emit_batch_outer(cg, n);
    else
      emit_batch(cg, n);
    return;
  }
}

/* ---- storage ---- */

static bool is_view(const Node *n) {
  return n->op == OP_TRANSPOSE || n->op == OP_BROADCAST || n->op == OP_RESHAPE;
}

static int64_t node_bytes(const CG *cg, const Node *n) { return bytes_at(n, cg->max_batch, cg->L->elem_size); }

static void set_mem(CG *cg, const Node *n, LLVMValueRef base, int64_t off, int64_t row_stride) {
  cg->st[n->id] = (Store){.kind = ST_MEM, .base = base, .off = off, .row_stride = row_stride};
}

/* A computed node gets a stack slot when small, its workspace range
 * otherwise. */
static void place(CG *cg, const Node *n, bool materialize) {
  if (!materialize && is_view(n)) {
    cg->st[n->id].kind = ST_VIEW;
    return;
  }
  int64_t bytes = node_bytes(cg, n);
  int64_t numel = shape_numel(&n->shape);
  if (bytes <= SMALL_NODE_BYTES && cg->stack_bytes + bytes <= STACK_BUDGET) {
    LLVMTypeRef ty = LLVMArrayType2(cg->T, (uint64_t)(bytes / cg->L->elem_size));
    char name[128];
    LLVMValueRef slot = LLVMBuildAlloca(cg->alloc, ty, llvm_name(cg, n, name, sizeof name));
    LLVMSetAlignment(slot, 64);
    cg->stack_bytes += bytes;
    set_mem(cg, n, slot, 0, numel);
    return;
  }
  char name[128];
  LLVMValueRef off = ci(cg, cg->ws_off[n->id]);
  LLVMValueRef base = LLVMBuildInBoundsGEP2(cg->alloc, LLVMInt8TypeInContext(cg->ctx), cg->ws, &off, 1,
                                            llvm_name(cg, n, name, sizeof name));
  set_mem(cg, n, base, 0, numel);
}

/* Input/target leaf k's first column among the row's values. */
int64_t cg_leaf_column(const PtrVec *leaves, const Node *leaf) {
  int64_t col = 0;
  for (int i = 0; i < leaves->len; i++) {
    const Node *l = leaves->items[i];
    if (l == leaf) return col;
    col += shape_numel(&l->shape);
  }
  nnc_die("codegen: leaf not found");
}

int64_t cg_cols(const PtrVec *leaves) {
  int64_t c = 0;
  for (int i = 0; i < leaves->len; i++) c += shape_numel(&((Node *)leaves->items[i])->shape);
  return c;
}

/* Can elementwise node n be computed inside its one reader c? Only when c
 * reads each of n's elements once, at c's own row and index. */
static bool can_inline(const Node *n, const Node *c) {
  if (!is_elementwise(n) || n->batched != c->batched) return false;
  switch (op_info[c->op].cls) {
  case OPC_UNARY: case OPC_BINARY:
    return shape_eq(&n->shape, &c->shape);
  case OPC_REDUCE:
    return c->op != OP_LOGSUMEXP;
  case OPC_SUM_TO: case OPC_BATCH:
    return true;
  case OPC_LEAF: case OPC_LASTAXIS: case OPC_MATMUL: case OPC_OUTER: case OPC_TRANSPOSE:
  case OPC_BROADCAST: case OPC_RESHAPE:
    return false;
  }
  return false;
}

/* outer(a, b) whose only reader sums it over the batch: one GEMM. */
static bool outer_into_gemm(const CG *cg, const Node *n, const Node *c) {
  return n->op == OP_OUTER && c->op == OP_BATCH_SUM && n->batched && n->in[0]->batched &&
         n->in[1]->batched && cg->st[n->in[1]->id].kind == ST_MEM && gemm_worth(cg, n->shape.dim[1], 4);
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

/* GEMM epilogues: for each GEMM node with one reader, follow the inlined
 * elementwise readers up to the stored node they feed; when that node's
 * expression is all vector-friendly ops over values a GEMM block can read
 * at its own element, the GEMM computes it (see "GEMM epilogues"). */
static void plan_epilogues(CG *cg, const Node **reader, const int *users, const bool *root) {
  const Graph *g = cg->g;
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (!cg->need[i] || cg->given[i] || root[i] || users[i] != 1 || cg->st[i].kind != ST_MEM) continue;
    bool gemm = n->op == OP_MATMUL ? matmul_gemm_ok(cg, n) : n->op == OP_BATCH_SUM && fused_outer(cg, n);
    if (!gemm) continue;
    const Node *sink = reader[i];
    while (cg->st[sink->id].kind == ST_INLINE) sink = reader[sink->id];
    if (cg->st[sink->id].kind != ST_MEM || cg->given[sink->id] || !is_elementwise(sink) || !epi_op(sink->op) ||
        sink->batched != n->batched || !shape_eq(&sink->shape, &n->shape) || cg->epi_gemm[sink->id])
      continue;
    if (sink->batched && cg->st[sink->id].row_stride != shape_numel(&n->shape)) continue;
    bool ok = true;
    for (int k = 0; k < op_info[sink->op].nin; k++) ok = ok && epi_ok(cg, sink->in[k], n);
    if (!ok) continue;
    cg->fused_into[i] = sink;
    cg->epi_gemm[sink->id] = n;
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
    for (int k = 0; k < op_info[n->op].nin; k++) cg->need[n->in[k]->id] = true;
  }
  /* readers within this function */
  int *users = nnc_xcalloc((size_t)g->len, sizeof(int));
  const Node **reader = nnc_xcalloc((size_t)g->len, sizeof(Node *));
  for (int i = 0; i < g->len; i++) {
    if (!cg->need[i] || given[i]) continue;
    const Node *n = g->nodes[i];
    for (int k = 0; k < op_info[n->op].nin; k++) {
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
      else if (!root[i] && users[i] == 1 && outer_into_gemm(cg, n, reader[i]))
        cg->st[i].kind = ST_INLINE; /* emit_batch_outer computes it with its reader */
      else
        place(cg, n, root[i]);
      break;
    }
  }
  plan_epilogues(cg, reader, users, root);
  /* results that can be computed straight into the buffer */
  if (cg->kind == FN_BACKWARD || cg->kind == FN_GRAD_PART)
    for (int p = 0; p < g->params.len; p++) {
      const Node *d = g->grads[p];
      bool shared = false;
      for (int q = 0; q < p; q++) shared |= g->grads[q] == d;
      if (!shared && cg->st[d->id].kind == ST_MEM && cg->st[d->id].base != cg->gbuf &&
          op_info[d->op].cls != OPC_LEAF)
        set_mem(cg, d, cg->gbuf, cg->L->grad_off[p], 0);
    }
  if (cg->kind == FN_TRAIN_STEP || cg->kind == FN_UPDATE)
    for (int u = 0; u < g->nupdates; u++) {
      const Update *up = &g->updates[u];
      if (!update_in_place(cg, reader, up)) continue;
      const Node *t = up->target;
      set_mem(cg, up->value, cg->buf,
              t->op == OP_PARAM ? cg->L->param_off[t->param_index] : cg->L->state_off[t->state_index], 0);
    }
  free(root);
  free(users);
  free(reader);
}

/* ---- functions ---- */

static void add_attr(CG *cg, LLVMValueRef fn, unsigned idx, const char *name) {
  unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
  if (!kind) nnc_die("codegen: no attribute %s", name);
  LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(cg->ctx, kind, 0));
}

LLVMValueRef cg_declare(CG *cg, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int np,
                            const char *const *pnames, unsigned readonly_mask) {
  char full[256];
  char prefix[128];
  snprintf(full, sizeof full, "%s%s", codegen_prefix(cg->g, prefix, sizeof prefix), name);
  LLVMTypeRef ty = LLVMFunctionType(ret, params, (unsigned)np, 0);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, full, ty);
  add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  for (int i = 0; i < np; i++) {
    LLVMValueRef p = LLVMGetParam(fn, (unsigned)i);
    LLVMSetValueName2(p, pnames[i], strlen(pnames[i]));
    if (LLVMTypeOf(p) == cg->ptr) {
      add_attr(cg, fn, (unsigned)i + 1, "noalias");
      add_attr(cg, fn, (unsigned)i + 1, "nocapture");
      if (readonly_mask & (1u << i)) add_attr(cg, fn, (unsigned)i + 1, "readonly");
    }
  }
  return fn;
}

/* Start a function body: an entry block for stack slots, then the code. */
void cg_begin_body(CG *cg, LLVMValueRef fn) {
  cg->fn = fn;
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cg->ctx, fn, "start");
  LLVMPositionBuilderAtEnd(cg->alloc, entry);
  LLVMPositionBuilderAtEnd(cg->b, body);
  cg->stack_bytes = 0;
  cg->unroll = 1;
  cg->depth = 0;
  forget_cache(cg);
}

void cg_end_body(CG *cg) {
  /* the entry block falls through to the code once all slots exist */
  LLVMBuildBr(cg->alloc, LLVMGetNextBasicBlock(LLVMGetEntryBasicBlock(cg->fn)));
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
  iter_range(cg, &rows, per_row ? cg->n : ci(cg, 1));
  FOR_EACH(cg, rows) {
    LLVMValueRef row = rows.idx[0];
    iter_shape(cg, &el, &from->shape);
    FOR_EACH(cg, el) {
      LLVMValueRef v = load_elem(cg, from, row, el.idx);
      LLVMValueRef lin = iadd(cg, linear_index(cg, &from->shape, el.idx), ci(cg, off));
      if (per_row) lin = iadd(cg, lin, imul(cg, row, ci(cg, row_stride)));
      LLVMBuildStore(cg->b, v, LLVMBuildInBoundsGEP2(cg->b, cg->T, base, &lin, 1, ""));
    }
  }
}

static LLVMValueRef scalar_value(CG *cg, const Node *n) {
  LLVMValueRef idx[MAX_RANK] = {0};
  for (int d = 0; d < n->shape.rank; d++) idx[d] = ci(cg, 0);
  return load_elem(cg, n, ci(cg, 0), idx);
}

/* Is n's storage exactly base + off (computed in place)? */
static bool stored_at(const CG *cg, const Node *n, LLVMValueRef base, int64_t off) {
  const Store *s = &cg->st[n->id];
  return s->kind == ST_MEM && s->base == base && s->off == off && op_info[n->op].cls != OPC_LEAF;
}

static void store_updates(CG *cg) {
  const Graph *g = cg->g;
  for (int u = 0; u < g->nupdates; u++) {
    const Node *t = g->updates[u].target;
    int64_t off = t->op == OP_PARAM ? cg->L->param_off[t->param_index] : cg->L->state_off[t->state_index];
    if (!stored_at(cg, g->updates[u].value, cg->buf, off)) copy_out(cg, g->updates[u].value, cg->buf, off, 0, false);
  }
}

/* Few enough per-row values that copies of train_step are cheap. */
bool codegen_step_is_small(const Graph *g, int max_batch) { return graph_row_values(g) * max_batch <= 16384; }

static void build_function(CG *cg, FnKind kind) {
  const Graph *g = cg->g;
  LLVMTypeRef p = cg->ptr, I = cg->i64, V = LLVMVoidTypeInContext(cg->ctx);
  LLVMValueRef fn;
  cg->kind = kind;
  cg->x = cg->t = cg->y = cg->loss = NULL;
  LLVMValueRef module_ws = cg->ws;
  int nroots = 0;
  Node **roots = nnc_xcalloc((size_t)(g->params.len + g->nupdates + 4), sizeof(Node *));
  switch (kind) {
  case FN_FORWARD: {
    LLVMTypeRef ps[] = {p, p, p, I, p, p};
    const char *names[] = {"buf", "x", "t", "n", "y", "loss"};
    fn = cg_declare(cg, "forward", V, ps, 6, names, 0x6);
    cg_begin_body(cg, fn);
    cg->buf = LLVMGetParam(fn, 0), cg->x = LLVMGetParam(fn, 1), cg->t = LLVMGetParam(fn, 2);
    cg->y = LLVMGetParam(fn, 4), cg->loss = LLVMGetParam(fn, 5);
    set_rows(cg, LLVMGetParam(fn, 3));
    roots[nroots++] = g->output;
    roots[nroots++] = g->loss;
    break;
  }
  case FN_PREDICT: {
    LLVMTypeRef ps[] = {p, p, I, p};
    const char *names[] = {"buf", "x", "n", "y"};
    fn = cg_declare(cg, "predict", V, ps, 4, names, 0x2);
    cg_begin_body(cg, fn);
    cg->buf = LLVMGetParam(fn, 0), cg->x = LLVMGetParam(fn, 1), cg->y = LLVMGetParam(fn, 3);
    set_rows(cg, LLVMGetParam(fn, 2));
    roots[nroots++] = g->output;
    break;
  }
  case FN_BACKWARD: case FN_TRAIN_STEP: {
    LLVMTypeRef ps[] = {p, p, p, I};
    const char *names[] = {"buf", "x", "t", "n"};
    fn = cg_declare(cg, kind == FN_BACKWARD ? "backward" : "train_step", cg->T, ps, 4, names, 0x6);
    cg_begin_body(cg, fn);
    cg->buf = LLVMGetParam(fn, 0), cg->x = LLVMGetParam(fn, 1), cg->t = LLVMGetParam(fn, 2);
    set_rows(cg, LLVMGetParam(fn, 3));
    roots[nroots++] = g->batch_loss;
    if (kind == FN_BACKWARD)
      for (int i = 0; i < g->params.len; i++) roots[nroots++] = g->grads[i];
    else
      for (int u = 0; u < g->nupdates; u++) roots[nroots++] = g->updates[u].value;
    break;
  }
  case FN_GRAD_PART: {
    /* a shard of a batch: gradients of its n rows into grad (the buffer's
       layout), scaled by 1/total, the rows of the whole batch; its own
       workspace, so threads can run it side by side */
    LLVMTypeRef ps[] = {p, p, p, p, p, I, I};
    const char *names[] = {"buf", "grad", "ws", "x", "t", "n", "total"};
    fn = cg_declare(cg, "grad_part", cg->T, ps, 7, names, 0x19);
    cg_begin_body(cg, fn);
    cg->buf = LLVMGetParam(fn, 0), cg->gbuf = LLVMGetParam(fn, 1), cg->ws = LLVMGetParam(fn, 2);
    cg->x = LLVMGetParam(fn, 3), cg->t = LLVMGetParam(fn, 4);
    cg->n = LLVMGetParam(fn, 5);
    cg->inv_n = b_fdiv(cg, cT(cg, 1), LLVMBuildSIToFP(cg->b, LLVMGetParam(fn, 6), cg->T, ""));
    roots[nroots++] = g->batch_loss;
    for (int i = 0; i < g->params.len; i++) roots[nroots++] = g->grads[i];
    break;
  }
  case FN_UPDATE: {
    LLVMTypeRef ps[] = {p};
    const char *names[] = {"buf"};
    fn = cg_declare(cg, "update", V, ps, 1, names, 0);
    cg_begin_body(cg, fn);
    cg->buf = LLVMGetParam(fn, 0);
    set_rows(cg, ci(cg, 1));
    for (int u = 0; u < g->nupdates; u++) roots[nroots++] = g->updates[u].value;
    break;
  }
  case FN_TRAIN_EPOCH: case FN_COUNT: default:
    nnc_die("codegen: bad function kind");
  }
  if (kind != FN_GRAD_PART) cg->gbuf = cg->buf;
  plan(cg, roots, nroots, kind == FN_UPDATE);
  /* nodes stored in the buffer are inputs here (params, state, given
     gradients); everything else in the plan is computed, in order */
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (!cg->need[i] || op_info[n->op].cls == OPC_LEAF || cg->st[i].kind != ST_MEM) continue;
    if (cg->given[i]) continue; /* read from the buffer (update's gradients) */
    if (cg->fused_into[i]) continue; /* its GEMM runs at its sink */
    emit_node(cg, cg->epi_gemm[i] ? cg->epi_gemm[i] : n);
  }
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
  cg->ws = module_ws;
  free(roots);
  /* train_epoch calls train_step twice, for full batches (n a constant) and
     the last one. A small step is inlined at both, so the full batches run
     code specialized for their size; a large one is called, so its code
     exists once (compile time grows with every copy). */
  if (kind == FN_TRAIN_STEP)
    add_attr(cg, fn, LLVMAttributeFunctionIndex, codegen_step_is_small(g, cg->max_batch) ? "alwaysinline" : "noinline");
}

/* train_epoch: full batches with the row count a constant (so the inlined
 * train_step is specialized for it), then the last partial batch. */
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
  LLVMValueRef k = loop_begin(cg, &lp, full); /* always a real loop */
  LLVMValueRef first = imul(cg, k, ci(cg, B));
  LLVMValueRef xo = imul(cg, first, ci(cg, xc)), to = imul(cg, first, ci(cg, tc));
  LLVMValueRef args[4] = {buf, LLVMBuildInBoundsGEP2(cg->b, cg->T, x, &xo, 1, ""),
                          LLVMBuildInBoundsGEP2(cg->b, cg->T, t, &to, 1, ""), ci(cg, B)};
  LLVMValueRef l = LLVMBuildCall2(cg->b, step_ty, step, args, 4, "batch_loss");
  LLVMBuildStore(cg->b, b_fadd(cg, LLVMBuildLoad2(cg->b, cg->T, total, ""), b_fmul(cg, l, cT(cg, (double)B))), total);
  loop_end(cg, &lp);
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
                   b_fadd(cg, LLVMBuildLoad2(cg->b, cg->T, total, ""),
                        b_fmul(cg, l2, LLVMBuildSIToFP(cg->b, rest, cg->T, ""))),
                   total);
    LLVMBuildBr(cg->b, out);
    LLVMPositionBuilderAtEnd(cg->b, out);
  }
  LLVMBuildRet(cg->b, LLVMBuildLoad2(cg->b, cg->T, total, ""));
  cg_end_body(cg);
}

/* The workspace: a fixed 64-byte aligned range for every node too large
 * for the stack (ws_off, per node, else -1), then room to pack the matrix
 * operand of each matrix-vector product (pack_off). Returns its size. */
static int64_t plan_workspace(const Graph *g, const Layout *L, int max_batch, int64_t *ws_off,
                              int64_t *pack_off) {
  int64_t ws = 0;
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    ws_off[i] = -1;
    if (op_info[n->op].cls == OPC_LEAF) continue;
    int64_t bytes = bytes_at(n, max_batch, L->elem_size);
    if (bytes <= SMALL_NODE_BYTES) continue;
    ws_off[i] = ws;
    ws += (bytes + 63) / 64 * 64;
  }
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    pack_off[i] = -1;
    if (n->op != OP_MATMUL) continue;
    const Node *m = n->in[0]->shape.rank == 2 ? n->in[0] : n->in[1];
    if (m->shape.rank != 2 || m->batched) continue;
    pack_off[i] = ws;
    ws += (shape_numel(&m->shape) * L->elem_size + 63) / 64 * 64;
  }
  return ws ? ws : 64;
}

int64_t codegen_workspace_bytes(const Graph *g, const Layout *L, int max_batch) {
  int64_t *ws_off = nnc_xcalloc((size_t)g->len, sizeof(int64_t));
  int64_t *pack_off = nnc_xcalloc((size_t)g->len, sizeof(int64_t));
  int64_t ws = plan_workspace(g, L, max_batch, ws_off, pack_off);
  free(ws_off);
  free(pack_off);
  return ws;
}

const char *codegen_prefix(const Graph *g, char *buf, size_t n) {
  snprintf(buf, n, "nnc_%s_", g->model_name ? g->model_name : "model");
  return buf;
}

LLVMModuleRef codegen_module(LLVMContextRef ctx, const Graph *g, const Layout *layout, int max_batch,
                             unsigned fns, bool host, bool *registers_only) {
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
  cg.labels = graph_labels(g);
  cg.st = nnc_xcalloc((size_t)g->len, sizeof(Store));
  cg.need = nnc_xcalloc((size_t)g->len, 1);
  cg.given = nnc_xcalloc((size_t)g->len, 1);
  cg.cache = nnc_xcalloc((size_t)g->len, sizeof(LLVMValueRef *));
  cg.dirty = nnc_xcalloc((size_t)g->len, sizeof(bool *));
  cg.ws_off = nnc_xcalloc((size_t)g->len, sizeof(int64_t));
  cg.pack_off = nnc_xcalloc((size_t)g->len, sizeof(int64_t));
  cg.fused_into = nnc_xcalloc((size_t)g->len, sizeof(Node *));
  cg.epi_gemm = nnc_xcalloc((size_t)g->len, sizeof(Node *));
  int64_t ws = plan_workspace(g, layout, max_batch, cg.ws_off, cg.pack_off);
  LLVMTypeRef ws_ty = LLVMArrayType2(LLVMInt8TypeInContext(ctx), (uint64_t)ws);
  cg.ws = LLVMAddGlobal(cg.mod, ws_ty, "nnc.workspace");
  LLVMSetInitializer(cg.ws, LLVMConstNull(ws_ty));
  LLVMSetLinkage(cg.ws, LLVMInternalLinkage);
  LLVMSetAlignment(cg.ws, 64);
  /* vector width of the host: 512-bit with AVX-512, else 256 with AVX */
  char *features = LLVMGetHostCPUFeatures();
  int bits = strstr(features, "+avx512f") ? 512 : strstr(features, "+avx") ? 256 : 128;
  if (host) {
    char *triple = LLVMGetDefaultTargetTriple();
    cg.avx_lane_swap = strncmp(triple, "x86_64", 6) == 0 && bits >= 256;
    LLVMDisposeMessage(triple);
  }
  LLVMDisposeMessage(features);
  /* NNC_VECTOR_BITS=128|256|512: another machine's width, so tests check
     its code shapes here (LLVM splits or widens the vectors for the host) */
  const char *force = getenv("NNC_VECTOR_BITS");
  if (force && (atoi(force) == 128 || atoi(force) == 256 || atoi(force) == 512)) bits = atoi(force);
  cg.vl = bits / (8 * layout->elem_size);
  cg.gemm_nv = bits == 512 ? 4 : 2;
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
  if ((fns & CG_TRAIN_EPOCH) && !lanes[FN_TRAIN_EPOCH]) fns |= CG_TRAIN_STEP;
  for (int k = 0; k < FN_COUNT; k++) {
    if (!(fns & (1u << k))) continue;
    all_registers &= lanes[k] > 0;
    if (lanes[k])
      regstep_build(&cg, (FnKind)k, lanes[k], need[k]);
    else if (k == FN_TRAIN_EPOCH)
      build_train_epoch(&cg);
    else
      build_function(&cg, (FnKind)k);
    free(need[k]);
  }
  if (registers_only) *registers_only = all_registers;
  if ((fns & CG_TRAIN_EPOCH) && !lanes[FN_TRAIN_EPOCH] && !step_public) {
    char prefix[128], step[256];
    snprintf(step, sizeof step, "%strain_step", codegen_prefix(g, prefix, sizeof prefix));
    LLVMSetLinkage(LLVMGetNamedFunction(cg.mod, step), LLVMInternalLinkage);
  }
  LLVMDisposeBuilder(cg.b);
  LLVMDisposeBuilder(cg.alloc);
  forget_cache(&cg);
  free(cg.cache);
  free(cg.dirty);
  free(cg.st);
  free(cg.need);
  free(cg.given);
  free(cg.ws_off);
  free(cg.pack_off);
  free(cg.fused_into);
  free(cg.epi_gemm);
  return cg.mod;
}
