/*
 * cgbase.c - what every part of the code generator builds with (see
 * cgbase.h): loops, element access through views and the value cache, the
 * scalar semantics of each elementwise op, accumulators, function frames.
 */
#include "cgbase.h"
#include "engine.h"

#include <llvm-c/DebugInfo.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- small builders ---- */

static bool is_const_fp(LLVMValueRef v, double c) {
  LLVMBool lost;
  return LLVMIsAConstantFP(v) && LLVMConstRealGetDouble(v, &lost) == c &&
         signbit(LLVMConstRealGetDouble(v, &lost)) == signbit(c);
}

/* An accumulation whose order does not matter (reductions). A sum that
 * starts at +0 starts at its first term instead: the same number (up to the
 * sign of a zero), and no `fadd 0.0, x` that LLVM may not remove. */
LLVMValueRef cg_facc(CG *cg, LLVMValueRef a, LLVMValueRef b) {
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

LLVMValueRef cg_intrinsic1(CG *cg, const char *name, LLVMValueRef a) {
  return intrinsic(cg, name, &a, 1);
}

LLVMValueRef cg_fmuladd(CG *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMTypeRef over = LLVMTypeOf(c); /* T, or a vector of T */
  unsigned id = LLVMLookupIntrinsicID("llvm.fmuladd", 12);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, &over, 1);
  LLVMValueRef args[3] = {a, b, c};
  return LLVMBuildCall2(cg->b, LLVMIntrinsicGetType(cg->ctx, id, &over, 1), fn, args, 3, "");
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

/* ---- loops (see cgbase.h) ---- */

/* Unroll a loop of at most UNROLL_TRIP iterations when the loops unrolled
 * around it leave at most UNROLL_LIMIT copies of its body. */
enum { UNROLL_TRIP = 16, UNROLL_LIMIT = 256 };
/* update_part leaves the tensors that are unrolled, not in vectors, to one part */
_Static_assert((int)ENGINE_SLICE_MIN == (int)UNROLL_TRIP, "engine_slice's whole tensors are those cg_would_unroll unrolls");

LLVMValueRef cg_loop_begin(CG *cg, Loop *lp, LLVMValueRef count) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
  lp->header = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "loop");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "body");
  lp->exit = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "done");
  LLVMBuildBr(cg->b, lp->header);
  LLVMPositionBuilderAtEnd(cg->b, lp->header);
  lp->i = LLVMBuildPhi(cg->b, cg->i64, "i");
  if (cg->depth++ == 0) cg->outer_pre = pre;
  lp->outer_body_unrolled = cg->body_unrolled;
  cg->body_unrolled = false;
  LLVMValueRef zero = ci(cg, 0);
  LLVMAddIncoming(lp->i, &zero, &pre, 1);
  LLVMValueRef more = LLVMBuildICmp(cg->b, LLVMIntSLT, lp->i, count, "");
  LLVMBuildCondBr(cg->b, more, body, lp->exit);
  LLVMPositionBuilderAtEnd(cg->b, body);
  return lp->i;
}

/* The loop metadata that keeps LLVM's loop vectorizer off a loop, so that
 * it does not even look at it: !{self, !{"llvm.loop.vectorize.enable",
 * i1 0}}, self-referential as a loop ID must be. */
static LLVMValueRef no_vectorize_md(CG *cg) {
  LLVMMetadataRef off[2] = {LLVMMDStringInContext2(cg->ctx, "llvm.loop.vectorize.enable", 26),
                            LLVMValueAsMetadata(LLVMConstInt(LLVMInt1TypeInContext(cg->ctx), 0, 0))};
  LLVMMetadataRef self = LLVMTemporaryMDNode(cg->ctx, NULL, 0);
  LLVMMetadataRef ops[2] = {self, LLVMMDNodeInContext2(cg->ctx, off, 2)};
  LLVMMetadataRef id = LLVMMDNodeInContext2(cg->ctx, ops, 2);
  LLVMMetadataReplaceAllUsesWith(self, id); /* also disposes the temporary */
  return LLVMMetadataAsValue(cg->ctx, id);
}

static void loop_end(CG *cg, Loop *lp, bool no_vectorize) {
  cg->depth--;
  LLVMValueRef next = LLVMBuildNUWAdd(cg->b, lp->i, ci(cg, 1), "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
  LLVMValueRef br = LLVMBuildBr(cg->b, lp->header);
  /* A row loop around unrolled code (a softmax over 10 classes, say) is
     kept from the loop vectorizer: it would turn each unrolled access
     into a strided gather or scatter, with the body written three times
     (16 wide, 8 wide, scalar), for three times the machine code and
     compile time and no measurable speed; asked for width 1 only, it
     still weighed interleaving them, a fifth of W2's optimization time.
     A vector loop (cg_vec_each) is vector code already. */
  if (cg->body_unrolled || no_vectorize)
    LLVMSetMetadata(br, LLVMGetMDKindIDInContext(cg->ctx, "llvm.loop", 9), no_vectorize_md(cg));
  cg->body_unrolled = lp->outer_body_unrolled || cg->body_unrolled;
  LLVMAddIncoming(lp->i, &next, &latch, 1);
  LLVMPositionBuilderAtEnd(cg->b, lp->exit);
}

void cg_loop_end(CG *cg, Loop *lp) { loop_end(cg, lp, false); }

void cg_vec_loop_end(CG *cg, Loop *lp) { loop_end(cg, lp, true); }

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
void cg_iter_shape(CG *cg, Iter *it, const Shape *s) { iter_setup(cg, it, s, NULL); }

/* the same, as loops */
void cg_iter_loop(CG *cg, Iter *it, const Shape *s) {
  iter_setup(cg, it, s, NULL);
  it->unrolled = false;
}

/* 0 .. count-1 */
void cg_iter_range(CG *cg, Iter *it, LLVMValueRef count) {
  Shape one = shape1(1);
  iter_setup(cg, it, &one, count);
}

/* the rows of a batched node (n of them) or the single row of another */
void cg_iter_rows(CG *cg, Iter *it, const Node *n) { cg_iter_range(cg, it, n->batched ? cg->n : ci(cg, 1)); }

bool cg_iter_next(CG *cg, Iter *it) {
  if (it->unrolled) {
    if (it->state == 0) {
      it->state = 1;
      it->saved = cg->unroll;
      cg->unroll *= it->total > 1 ? it->total : 1;
      if (it->total > 1) cg->body_unrolled = true;
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
      it->idx[d] = cg_loop_begin(cg, &it->loops[d], it->count ? it->count : ci(cg, it->shape.dim[d]));
    return true;
  }
  for (int d = it->shape.rank - 1; d >= 0; d--) cg_loop_end(cg, &it->loops[d]);
  return false;
}

/* ---- element access ---- */

LLVMValueRef cg_linear_index(CG *cg, const Shape *s, LLVMValueRef *idx) {
  LLVMValueRef lin = ci(cg, 0);
  int64_t stride = 1;
  for (int d = s->rank - 1; d >= 0; d--) {
    lin = iadd(cg, lin, imul(cg, idx[d], ci(cg, stride)));
    stride *= s->dim[d];
  }
  return lin;
}

LLVMValueRef cg_elem_ptr(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef lin) {
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
void cg_flush(CG *cg, const Node *n) {
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

/* Whether n is one value that no code of this function writes: a scalar
 * leaf (a learning rate, a step count) that no update targets. */
static bool read_only_scalar(const CG *cg, const Node *n) {
  if (op_info[n->op].cls != OPC_LEAF || n->batched || shape_numel(&n->shape) != 1) return false;
  const Store *s = &cg->st[n->id];
  if (s->kind != ST_MEM || !s->base || LLVMIsAInstruction(s->base)) return false;
  for (int u = 0; u < cg->g->nupdates; u++)
    if (cg->g->updates[u].target == n) return false;
  return true;
}

/* ---- vector loops (see cgbase.h) ---- */

/* Does index v move with the vector lanes (is it computed from vidx)?
 * Index arithmetic is adds and multiplies of loop indices and constants. */
static bool moves_with(LLVMValueRef v, LLVMValueRef vidx, int depth) {
  if (v == vidx) return true;
  if (depth > 24 || !LLVMIsAInstruction(v) || LLVMIsAPHINode(v)) return false;
  for (int i = 0, n = LLVMGetNumOperands(v); i < n; i++)
    if (moves_with(LLVMGetOperand(v, (unsigned)i), vidx, depth + 1)) return true;
  return false;
}

static LLVMTypeRef vec_type(const CG *cg) { return LLVMVectorType(cg->T, (unsigned)cg->vl); }

LLVMValueRef cg_splat_i32(CG *cg, LLVMValueRef v) {
  LLVMTypeRef i32 = LLVMInt32TypeInContext(cg->ctx), vi = LLVMVectorType(i32, (unsigned)cg->vl);
  LLVMValueRef e = LLVMBuildInsertElement(cg->b, LLVMGetPoison(vi), LLVMBuildTrunc(cg->b, v, i32, ""), ci(cg, 0), "");
  return LLVMBuildShuffleVector(cg->b, e, LLVMGetPoison(vi), LLVMConstNull(vi), "");
}

LLVMValueRef cg_lane_ids(CG *cg, LLVMValueRef base) {
  LLVMTypeRef i32 = LLVMInt32TypeInContext(cg->ctx);
  LLVMValueRef lane[64];
  for (int l = 0; l < cg->vl; l++) lane[l] = LLVMConstInt(i32, (unsigned)l, 0);
  return LLVMBuildAdd(cg->b, cg_splat_i32(cg, base), LLVMConstVector(lane, (unsigned)cg->vl), "");
}

LLVMValueRef cg_splat(CG *cg, LLVMValueRef x) {
  LLVMTypeRef vt = vec_type(cg);
  LLVMValueRef v = LLVMBuildInsertElement(cg->b, LLVMGetPoison(vt), x, ci(cg, 0), "");
  LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(LLVMInt32TypeInContext(cg->ctx), (unsigned)cg->vl));
  return LLVMBuildShuffleVector(cg->b, v, LLVMGetPoison(vt), zeros, "");
}

/* llvm.masked.load / llvm.masked.store of a vector at p under cg->vmask */
static LLVMValueRef masked_call(CG *cg, const char *name, LLVMValueRef *args, int nargs) {
  LLVMTypeRef over[2] = {vec_type(cg), cg->ptr};
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, over, 2);
  return LLVMBuildCall2(cg->b, LLVMIntrinsicGetType(cg->ctx, id, over, 2), fn, args, (unsigned)nargs, "");
}

static LLVMValueRef vec_load(CG *cg, LLVMValueRef p) {
  LLVMValueRef align = LLVMConstInt(LLVMInt32TypeInContext(cg->ctx), (unsigned)cg->L->elem_size, 0);
  if (cg->vmask) return masked_call(cg, "llvm.masked.load", (LLVMValueRef[]){p, align, cg->vmask, LLVMConstNull(vec_type(cg))}, 4);
  LLVMValueRef v = LLVMBuildLoad2(cg->b, vec_type(cg), p, "");
  LLVMSetAlignment(v, (unsigned)cg->L->elem_size);
  return v;
}

static void vec_store(CG *cg, LLVMValueRef v, LLVMValueRef p) {
  LLVMValueRef align = LLVMConstInt(LLVMInt32TypeInContext(cg->ctx), (unsigned)cg->L->elem_size, 0);
  if (cg->vmask) {
    masked_call(cg, "llvm.masked.store", (LLVMValueRef[]){v, p, align, cg->vmask}, 4);
    return;
  }
  LLVMSetAlignment(LLVMBuildStore(cg->b, v, p), (unsigned)cg->L->elem_size);
}

/* The axes of `from` that a broadcast to `to` maps the trailing k axes of
 * `to` to, as a count of trailing axes of `from` (0: none move with the
 * lanes), or -1 when the lanes would not follow its memory. */
static int broadcast_axes(const Shape *from, const Shape *to, int k) {
  int off = to->rank - from->rank, missing = 0;
  bool ones = true, same = true;
  for (int j = to->rank - k; j < to->rank; j++) {
    int d = j - off;
    if (d < 0) {
      missing++;
      same &= to->dim[j] == 1;
      continue;
    }
    ones &= from->dim[d] == 1;
    same &= from->dim[d] == to->dim[j];
  }
  if (ones) return 0;
  /* the lanes run along the last axis: a last axis of 1 would pin them */
  if (!same || from->dim[from->rank - 1] == 1) return -1;
  return k - missing;
}

/* Is n a slice of memory along its first axis (a run of its elements:
 * a row of channel_moments' [2, C])? */
static bool block_slice(const CG *cg, const Node *n) {
  return n->op == OP_SLICE && n->attr.axis == 0 && cg->st[n->id].kind == ST_VIEW &&
         cg->st[n->in[0]->id].kind == ST_MEM;
}

bool cg_vec_ok(const CG *cg, const Node *n, int k) {
  if (k == 0) return true;
  const Store *s = &cg->st[n->id];
  switch (s->kind) {
  case ST_CONST: case ST_VALUE: case ST_MEM:
    return true;
  case ST_INLINE:
    return cg_vec_elem_ok(cg, n, k);
  case ST_VIEW: {
    const Node *a = n->in[0];
    if (n->op == OP_BROADCAST) {
      int ka = broadcast_axes(&a->shape, &n->shape, k);
      return ka >= 0 && cg_vec_ok(cg, a, ka);
    }
    if (n->op == OP_DROPOUT) return cg_vec_ok(cg, a, k);
    if (n->op == OP_IF_TRAINING) return cg_vec_ok(cg, n->in[cg_evaluation(cg) ? 1 : 0], k);
    if (n->op == OP_RESHAPE) return cg->st[a->id].kind == ST_MEM || block_slice(cg, a);
    /* a slice along an axis the lanes do not run over */
    if (n->op == OP_SLICE) return n->attr.axis < n->shape.rank - k && cg_vec_ok(cg, a, k);
    return false; /* transpose, concat */
  }
  case ST_NONE:
    break;
  }
  return false;
}

bool cg_vec_elem_ok(const CG *cg, const Node *n, int k) {
  if (!is_elementwise(n)) return false;
  if (op_info[n->op].cls == OPC_UNARY) return cg_vec_ok(cg, n->in[0], k);
  for (int i = 0; i < 2; i++) {
    int ka = broadcast_axes(&n->in[i]->shape, &n->shape, k);
    if (ka < 0 || !cg_vec_ok(cg, n->in[i], ka)) return false;
  }
  return true;
}

/* Loops of fewer elements stay scalar. */
enum { VEC_MIN = 4 };

int cg_vec_axes(CG *cg, const Node *n, const Shape *s, VecOk *ok, void *ctx) {
  if (!cg->vec_loops || cg->vl < 2 || cg->lanes > 1 || cg->vidx || cg_would_unroll(cg, shape_numel(s))) return 0;
  int64_t m = 1;
  int best = 0;
  for (int k = 1; k <= s->rank; k++) {
    m *= s->dim[s->rank - k];
    if (m >= VEC_MIN && ok(cg, n, k, ctx)) best = k;
  }
  return best;
}

/* The mask of a last partial vector: its first `tail` lanes on. */
static LLVMValueRef tail_mask(CG *cg, int64_t tail) {
  LLVMValueRef on[64];
  for (int l = 0; l < cg->vl; l++) on[l] = LLVMConstInt(cg->i1, l < tail, 0);
  return LLVMConstVector(on, (unsigned)cg->vl);
}

LLVMValueRef cg_slice_last(CG *cg) {
  return LLVMBuildICmp(cg->b, LLVMIntEQ, cg->slice_part, LLVMBuildNSWSub(cg->b, cg->slice_parts, ci(cg, 1), ""), "last");
}

void cg_slice_bounds(CG *cg, int64_t n, int64_t unit, int64_t end, LLVMValueRef last, LLVMValueRef *lo,
                     LLVMValueRef *hi) {
  int64_t line = 64 / cg->L->elem_size, lines = n <= ENGINE_SLICE_MIN ? 0 : n / line;
  LLVMValueRef part = cg->slice_part, parts = cg->slice_parts;
  *lo = imul(cg, LLVMBuildSDiv(cg->b, imul(cg, ci(cg, lines), part), parts, ""), ci(cg, unit));
  LLVMValueRef next = LLVMBuildSDiv(cg->b, imul(cg, ci(cg, lines), iadd(cg, part, ci(cg, 1))), parts, "");
  *hi = LLVMBuildSelect(cg->b, last, ci(cg, end), imul(cg, next, ci(cg, unit)), "");
  /* the tail call (part == parts) writes the scalar states alone */
  *hi = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, part, parts, ""), *hi, *lo, "");
}

/* update_part's vector loop: the vectors of its slice of a whole tensor
 * (engine_slice: whole 64-byte lines, the last part to the end with the
 * masked tail), as cg_vec_each computes them, so every element gets the
 * same bits as in update. */
static void vec_each_slice(CG *cg, const Shape *s, int k, VecBody *body, void *ctx) {
  int64_t m = shape_numel(s), line = 64 / cg->L->elem_size;
  if (k != s->rank || line % cg->vl != 0) { /* not one contiguous run of vectors */
    cg->slice_failed = true;
    return;
  }
  int64_t full = m / cg->vl, tail = m % cg->vl;
  LLVMValueRef last = cg_slice_last(cg), lo, hi;
  cg_slice_bounds(cg, m, line / cg->vl, full, last, &lo, &hi);
  LLVMValueRef idx[MAX_RANK];
  for (int d = 0; d < s->rank; d++) idx[d] = ci(cg, 0);
  int lanes = cg->lanes;
  cg->lanes = cg->vl;
  Loop lp;
  LLVMValueRef i = cg_loop_begin(cg, &lp, LLVMBuildNSWSub(cg->b, hi, lo, ""));
  idx[s->rank - 1] = cg->vidx = imul(cg, iadd(cg, i, lo), ci(cg, cg->vl));
  body(cg, idx, ctx);
  loop_end(cg, &lp, true);
  if (tail) { /* a loop of one trip in the last part, none in the others */
    Loop lt;
    LLVMValueRef j = cg_loop_begin(cg, &lt, LLVMBuildSelect(cg->b, last, ci(cg, 1), ci(cg, 0), ""));
    cg->vmask = tail_mask(cg, tail);
    idx[s->rank - 1] = cg->vidx = iadd(cg, j, ci(cg, full * cg->vl));
    body(cg, idx, ctx);
    cg->vmask = NULL;
    loop_end(cg, &lt, true);
  }
  cg->vidx = NULL;
  cg->lanes = lanes;
}

void cg_vec_each(CG *cg, const Shape *s, int k, VecBody *body, void *ctx) {
  if (cg->slice_part) {
    vec_each_slice(cg, s, k, body, ctx);
    return;
  }
  Shape outer = *s;
  outer.rank = s->rank - k;
  int64_t m = 1;
  for (int d = outer.rank; d < s->rank; d++) m *= s->dim[d];
  int64_t full = m / cg->vl, tail = m % cg->vl;
  Iter it;
  cg_iter_shape(cg, &it, &outer);
  FOR_EACH(cg, it) {
    LLVMValueRef idx[MAX_RANK];
    for (int d = 0; d < s->rank; d++) idx[d] = d < outer.rank ? it.idx[d] : ci(cg, 0);
    int lanes = cg->lanes;
    cg->lanes = cg->vl;
    if (full > 1) {
      Loop lp;
      LLVMValueRef i = cg_loop_begin(cg, &lp, ci(cg, full));
      idx[s->rank - 1] = cg->vidx = imul(cg, i, ci(cg, cg->vl));
      body(cg, idx, ctx);
      loop_end(cg, &lp, true);
    } else if (full == 1) {
      /* a value, not a constant, so that loads can tell it moves */
      idx[s->rank - 1] = cg->vidx = LLVMBuildFreeze(cg->b, ci(cg, 0), "");
      body(cg, idx, ctx);
    }
    if (tail) {
      cg->vmask = tail_mask(cg, tail);
      idx[s->rank - 1] = cg->vidx = LLVMBuildFreeze(cg->b, ci(cg, full * cg->vl), "");
      body(cg, idx, ctx);
      cg->vmask = NULL;
    }
    cg->vidx = NULL;
    cg->lanes = lanes;
  }
}

LLVMValueRef cg_vec_load(CG *cg, LLVMValueRef p) {
  return cg->lanes > 1 ? vec_load(cg, p) : LLVMBuildLoad2(cg->b, cg->T, p, "");
}

void cg_vec_store(CG *cg, LLVMValueRef v, LLVMValueRef p) {
  if (cg->lanes > 1)
    vec_store(cg, v, p);
  else
    LLVMBuildStore(cg->b, v, p);
}

void cg_vec_range(CG *cg, LLVMValueRef count, VecRangeBody *body, void *ctx) {
  if (!cg->vec_loops || cg->vl < 2 || cg->lanes > 1 || cg->vidx) {
    Loop lp;
    LLVMValueRef i = cg_loop_begin(cg, &lp, count);
    body(cg, i, ctx);
    cg_loop_end(cg, &lp);
    return;
  }
  int lanes = cg->lanes;
  cg->lanes = cg->vl;
  LLVMValueRef vl = ci(cg, cg->vl);
  bool known = LLVMIsAConstantInt(count);
  int64_t c = known ? LLVMConstIntGetSExtValue(count) : -1;
  if (!known || c >= cg->vl) { /* the full vectors */
    LLVMValueRef full = known ? ci(cg, c / cg->vl) : LLVMBuildUDiv(cg->b, count, vl, "");
    if (known && c / cg->vl == 1) {
      body(cg, ci(cg, 0), ctx);
    } else {
      Loop lp;
      LLVMValueRef i = cg_loop_begin(cg, &lp, full);
      body(cg, imul(cg, i, vl), ctx);
      loop_end(cg, &lp, true);
    }
  }
  if (!known || c % cg->vl) { /* the rest, under a mask of its lanes */
    LLVMValueRef at = known ? ci(cg, c / cg->vl * cg->vl) : LLVMBuildAnd(cg->b, count, ci(cg, -(int64_t)cg->vl), "");
    LLVMValueRef rest = cg_splat_i32(cg, LLVMBuildNSWSub(cg->b, count, at, ""));
    cg->vmask = LLVMBuildICmp(cg->b, LLVMIntULT, cg_lane_ids(cg, ci(cg, 0)), rest, "tail");
    body(cg, at, ctx);
    cg->vmask = NULL;
  }
  cg->lanes = lanes;
}

/* Loops of fewer elements sum in scalars. */
enum { VEC_SUM_MIN = 16 };

bool cg_vec_reduce_ok(const CG *cg, int64_t m) {
  return cg->vl >= 2 && cg->lanes <= 1 && !cg->vidx && m >= VEC_SUM_MIN && !cg_would_unroll(cg, m);
}

bool cg_vec_sum_ok(CG *cg, const Node *a, int k) {
  if (k < 1) return false;
  int64_t m = 1;
  for (int d = a->shape.rank - k; d < a->shape.rank; d++) m *= a->shape.dim[d];
  return cg_vec_reduce_ok(cg, m) && cg_vec_ok(cg, a, k);
}

LLVMValueRef cg_vec_reduce(CG *cg, int64_t m, VecTerm *term, void *ctx) {
  int64_t full = m / cg->vl, tail = m % cg->vl;
  LLVMTypeRef vt = vec_type(cg);
  int lanes = cg->lanes;
  cg->lanes = cg->vl;
  LLVMValueRef none = cT(cg, -0.0); /* x + -0 is x, a -0 sum stays -0 */
  LLVMValueRef slot = LLVMBuildAlloca(cg->alloc, vt, "vsum");
  LLVMBuildStore(cg->b, none, slot);
  Loop lp;
  for (int part = 0; part < 2; part++) {
    if (part == 0 && full == 0) continue;
    if (part == 1 && tail == 0) break;
    if (part == 0 && full > 1) {
      cg->vidx = imul(cg, cg_loop_begin(cg, &lp, ci(cg, full)), ci(cg, cg->vl));
    } else {
      if (part == 1) cg->vmask = tail_mask(cg, tail);
      /* a value, not a constant, so that loads can tell it moves */
      cg->vidx = LLVMBuildFreeze(cg->b, ci(cg, part ? full * cg->vl : 0), "");
    }
    LLVMValueRef v = term(cg, cg->vidx, ctx);
    if (cg->vmask) v = sel(cg, cg->vmask, v, none);
    LLVMBuildStore(cg->b, b_fadd(cg, LLVMBuildLoad2(cg->b, vt, slot, ""), v), slot);
    cg->vmask = NULL;
    if (part == 0 && full > 1) loop_end(cg, &lp, true);
  }
  cg->vidx = NULL;
  /* the lanes added in halves: lane l and lane l + w/2, down to one */
  LLVMValueRef acc = LLVMBuildLoad2(cg->b, vt, slot, "");
  LLVMTypeRef i32 = LLVMInt32TypeInContext(cg->ctx);
  for (int w = cg->vl; w > 1; w /= 2) {
    LLVMValueRef lo[32], hi[32];
    for (int l = 0; l < w / 2; l++) lo[l] = LLVMConstInt(i32, (unsigned)l, 0), hi[l] = LLVMConstInt(i32, (unsigned)(l + w / 2), 0);
    LLVMValueRef a0 = LLVMBuildShuffleVector(cg->b, acc, LLVMGetPoison(LLVMTypeOf(acc)), LLVMConstVector(lo, (unsigned)(w / 2)), "");
    LLVMValueRef a1 = LLVMBuildShuffleVector(cg->b, acc, LLVMGetPoison(LLVMTypeOf(acc)), LLVMConstVector(hi, (unsigned)(w / 2)), "");
    cg->lanes = w / 2;
    acc = b_fadd(cg, a0, a1);
  }
  cg->lanes = lanes;
  return LLVMBuildExtractElement(cg->b, acc, ci(cg, 0), "");
}

typedef struct SumTerm {
  const Node *a;
  LLVMValueRef row, *idx;
} SumTerm;

static LLVMValueRef sum_term(CG *cg, LLVMValueRef at, void *p) {
  SumTerm *t = p;
  t->idx[t->a->shape.rank - 1] = at;
  return cg_load_elem(cg, t->a, t->row, t->idx);
}

LLVMValueRef cg_vec_sum(CG *cg, const Node *a, LLVMValueRef row, LLVMValueRef *lead, int k) {
  const Shape *s = &a->shape;
  int64_t m = 1;
  for (int d = s->rank - k; d < s->rank; d++) m *= s->dim[d];
  LLVMValueRef idx[MAX_RANK];
  for (int d = 0; d < s->rank; d++) idx[d] = d < s->rank - k ? lead[d] : ci(cg, 0);
  return cg_vec_reduce(cg, m, sum_term, &(SumTerm){a, row, idx});
}

/* Is n a parameter's gradient that update_part reads as the sum of the
 * buffer's and grad2's (cg->slice_grad)? */
bool cg_summed_grad(const CG *cg, const Node *n) {
  if (!cg->slice_grad || cg->st[n->id].base != cg->buf) return false;
  for (int i = 0; i < cg->g->params.len; i++)
    if (cg->g->grads[i] == n) return true;
  return false;
}

/* buf's element + grad2's (a vector's lanes when vec): the threads' sum
 * of two gradients, computed where update_part reads it, in the order
 * parallel.c adds them. */
static LLVMValueRef summed_grad_load(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef lin, bool vec) {
  LLVMValueRef p = cg_elem_ptr(cg, n, row, lin);
  LLVMValueRef off = iadd(cg, lin, ci(cg, cg->st[n->id].off));
  LLVMValueRef q = LLVMBuildInBoundsGEP2(cg->b, cg->T, cg->slice_grad, &off, 1, "");
  LLVMValueRef a = vec ? vec_load(cg, p) : LLVMBuildLoad2(cg->b, cg->T, p, "");
  LLVMValueRef b = vec ? vec_load(cg, q) : LLVMBuildLoad2(cg->b, cg->T, q, "");
  return LLVMBuildFAdd(cg->b, a, b, "grad_sum");
}

/* Is n written at a parameter's place in the buffer? */
static bool at_param(const CG *cg, const Node *n) {
  if (cg->st[n->id].base != cg->buf) return false;
  for (int i = 0; i < cg->g->params.len; i++)
    if (cg->st[n->id].off == cg->L->param_off[i]) return true;
  return false;
}

/* update_part's store of a whole vector of a parameter: when its nt
 * argument asks, non-temporal, to memory, the line dropped from every
 * core's cache. Every thread's next shard reads every parameter, so a
 * core's cache holds each line of them when another core updates it: an
 * ordinary store first waits for that copy to be invalidated, which on
 * the Zen 4 VM took W2's slices 75 to 95 us at moments when the vCPUs
 * were far apart (for 6 us on one core); the shards then read the lines
 * from memory. parallel.c chooses by measuring both (par_choose_drop).
 * The vectors are aligned: tensors start on 64-byte lines, slices are
 * whole lines. */
void cg_store_nontemporal(CG *cg, LLVMValueRef v, LLVMValueRef p) {
  LLVMValueRef st = LLVMBuildStore(cg->b, v, p);
  LLVMSetAlignment(st, (unsigned)(cg->vl * cg->L->elem_size));
  LLVMMetadataRef one = LLVMValueAsMetadata(LLVMConstInt(LLVMInt32TypeInContext(cg->ctx), 1, 0));
  LLVMSetMetadata(st, LLVMGetMDKindIDInContext(cg->ctx, "nontemporal", 11),
                  LLVMMetadataAsValue(cg->ctx, LLVMMDNodeInContext2(cg->ctx, &one, 1)));
}

static void param_store(CG *cg, LLVMValueRef v, LLVMValueRef p) {
  LLVMBasicBlockRef nt = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "store_nt");
  LLVMBasicBlockRef plain = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "store");
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "stored");
  LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntNE, cg->slice_nt, ci(cg, 0), ""), nt, plain);
  LLVMPositionBuilderAtEnd(cg->b, nt);
  cg_store_nontemporal(cg, v, p);
  LLVMBuildBr(cg->b, join);
  LLVMPositionBuilderAtEnd(cg->b, plain);
  vec_store(cg, v, p);
  LLVMBuildBr(cg->b, join);
  LLVMPositionBuilderAtEnd(cg->b, join);
}

LLVMValueRef cg_mem_load(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef lin) {
  if (cg->vidx && cg_summed_grad(cg, n) && moves_with(lin, cg->vidx, 0)) return summed_grad_load(cg, n, row, lin, true);
  if (cg->vidx) {
    if (moves_with(lin, cg->vidx, 0)) {
      cg_flush(cg, n);
      return vec_load(cg, cg_elem_ptr(cg, n, row, lin));
    }
    /* the same element in every lane */
    LLVMValueRef vidx = cg->vidx;
    int lanes = cg->lanes;
    cg->vidx = NULL;
    cg->lanes = 1;
    LLVMValueRef v = cg_mem_load(cg, n, row, lin);
    cg->vidx = vidx;
    cg->lanes = lanes;
    return cg_splat(cg, v);
  }
  bool *dirty;
  LLVMValueRef *slot = cache_slot(cg, n, row, lin, &dirty);
  if (slot && *slot) return *slot;
  if (!slot && cg->depth > 0 && read_only_scalar(cg, n)) {
    /* loaded once before the loops: inside them a store to the same
       buffer would make LLVM load it again on every iteration (it cannot
       tell that the store does not alias it), which keeps an update's
       loop from being vectorized */
    LLVMBuilderRef b = LLVMCreateBuilderInContext(cg->ctx);
    LLVMPositionBuilderBefore(b, LLVMGetBasicBlockTerminator(cg->outer_pre));
    LLVMValueRef off = ci(cg, cg->st[n->id].off);
    LLVMValueRef v = LLVMBuildLoad2(b, cg->T, LLVMBuildInBoundsGEP2(b, cg->T, cg->st[n->id].base, &off, 1, ""), "");
    LLVMDisposeBuilder(b);
    return v;
  }
  if (!slot) cg_flush(cg, n);
  LLVMValueRef v = cg_summed_grad(cg, n) ? summed_grad_load(cg, n, row, lin, false)
                                      : LLVMBuildLoad2(cg->b, cg->T, cg_elem_ptr(cg, n, row, lin), "");
  if (slot) *slot = v;
  return v;
}

/* In straight-line code a store only records the value; memory gets it
 * when something reads the element where the value is not at hand. */
void cg_mem_store(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef lin, LLVMValueRef v) {
  if (cg->vidx) {
    if (!moves_with(lin, cg->vidx, 0)) nnc_die("codegen: a vector store to one element of node %d", n->id);
    cg_flush(cg, n);
    if (cg->slice_part && !cg->vmask && at_param(cg, n))
      param_store(cg, v, cg_elem_ptr(cg, n, row, lin));
    else
      vec_store(cg, v, cg_elem_ptr(cg, n, row, lin));
    cg_forget_node(cg, n);
    return;
  }
  bool *dirty;
  LLVMValueRef *slot = cache_slot(cg, n, row, lin, &dirty);
  /* the buffer and the gradients are the function's results (grad_part
     writes its gradients elsewhere than the buffer): written at once */
  if (slot && cg->st[n->id].base != cg->buf && cg->st[n->id].base != cg->gbuf) {
    *slot = v;
    *dirty = true;
    return;
  }
  if (slot) {
    LLVMBuildStore(cg->b, v, cg_elem_ptr(cg, n, row, lin));
    *slot = v;
    return;
  }
  cg_flush(cg, n);
  LLVMBuildStore(cg->b, v, cg_elem_ptr(cg, n, row, lin));
  if (cg->cache[n->id]) { /* what was known no longer is */
    int64_t len = shape_numel(&n->shape) * (n->batched ? cg->max_batch : 1);
    memset(cg->cache[n->id], 0, sizeof(LLVMValueRef) * (size_t)len);
  }
}

/* Drop what the cache knows of n (its memory is about to be written
 * directly). */
void cg_forget_node(CG *cg, const Node *n) {
  if (!cg->cache[n->id]) return;
  int64_t len = shape_numel(&n->shape) * (n->batched ? cg->max_batch : 1);
  memset(cg->cache[n->id], 0, sizeof(LLVMValueRef) * (size_t)len);
  memset(cg->dirty[n->id], 0, sizeof(bool) * (size_t)len);
}

void cg_forget_cache(CG *cg) {
  for (int i = 0; i < cg->g->len; i++) {
    free(cg->cache[i]);
    free(cg->dirty[i]);
    cg->cache[i] = NULL;
    cg->dirty[i] = NULL;
  }
}

/* Index of a broadcast operand of shape `from` for an element of `to`. */
void cg_broadcast_index(CG *cg, const Shape *from, const Shape *to, LLVMValueRef *idx, LLVMValueRef *out) {
  for (int d = 0; d < from->rank; d++) {
    int j = to->rank - from->rank + d;
    out[d] = from->dim[d] == 1 ? ci(cg, 0) : idx[j];
  }
}

/* Element idx of row `row` of an elementwise node, from its operands. */
LLVMValueRef cg_elem_value(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx) {
  if (op_info[n->op].cls == OPC_UNARY)
    return cg_scalar(cg, n->op, cg_load_elem(cg, n->in[0], row, idx), NULL, n->attr.value);
  LLVMValueRef ia[MAX_RANK], ib[MAX_RANK];
  cg_broadcast_index(cg, &n->in[0]->shape, &n->shape, idx, ia);
  cg_broadcast_index(cg, &n->in[1]->shape, &n->shape, idx, ib);
  LLVMValueRef a = cg_load_elem(cg, n->in[0], row, ia), b = cg_load_elem(cg, n->in[1], row, ib);
  return cg_scalar(cg, n->op, a, b, n->attr.value);
}

/* Element idx of a slice (its operand's, shifted along the axis) or of a
 * concat (the first operand's below its length on the axis, else the
 * second's): both operands are read at indices in their bounds, and the
 * right value is selected. */
static LLVMValueRef concat_or_slice_elem(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx) {
  int axis = n->attr.axis, rank = n->shape.rank;
  LLVMValueRef ia[MAX_RANK], ib[MAX_RANK];
  for (int d = 0; d < rank; d++) ia[d] = ib[d] = idx[d];
  if (n->op == OP_SLICE) {
    ia[axis] = iadd(cg, idx[axis], ci(cg, (int64_t)n->attr.value));
    return cg_load_elem(cg, n->in[0], row, ia);
  }
  int64_t len = n->in[0]->shape.dim[axis];
  LLVMValueRef first = LLVMBuildICmp(cg->b, LLVMIntSLT, idx[axis], ci(cg, len), "");
  ia[axis] = sel(cg, first, idx[axis], ci(cg, 0));
  ib[axis] = sel(cg, first, ci(cg, 0), LLVMBuildSub(cg->b, idx[axis], ci(cg, len), ""));
  LLVMValueRef a = cg_load_elem(cg, n->in[0], row, ia), b = cg_load_elem(cg, n->in[1], row, ib);
  return sel(cg, first, a, b);
}

LLVMValueRef cg_load_elem(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx) {
  const Store *s = &cg->st[n->id];
  LLVMValueRef sub[MAX_RANK];
  switch (s->kind) {
  case ST_CONST: case ST_VALUE:
    return cg->vidx ? cg_splat(cg, s->value) : s->value;
  case ST_INLINE:
    return cg_elem_value(cg, n, row, idx);
  case ST_MEM:
    return cg_mem_load(cg, n, row, cg_linear_index(cg, &n->shape, idx));
  case ST_VIEW: {
    const Node *a = n->in[0];
    if (n->op == OP_TRANSPOSE) {
      sub[0] = idx[1];
      sub[1] = idx[0];
      return cg_load_elem(cg, a, row, sub);
    }
    if (n->op == OP_BROADCAST) {
      cg_broadcast_index(cg, &a->shape, &n->shape, idx, sub);
      return cg_load_elem(cg, a, row, sub);
    }
    if (n->op == OP_SLICE || n->op == OP_CONCAT) return concat_or_slice_elem(cg, n, row, idx);
    if (n->op == OP_DROPOUT) return cg_load_elem(cg, a, row, idx); /* evaluation: the identity */
    if (n->op == OP_IF_TRAINING) return cg_load_elem(cg, n->in[cg_evaluation(cg) ? 1 : 0], row, idx);
    /* reshape: same elements, same order */
    LLVMValueRef lin = cg_linear_index(cg, &n->shape, idx);
    if (cg->st[a->id].kind == ST_MEM) return cg_mem_load(cg, a, row, lin);
    if (block_slice(cg, a)) {
      int64_t inner = shape_numel(&a->shape) / a->shape.dim[0];
      return cg_mem_load(cg, a->in[0], row, iadd(cg, lin, ci(cg, (int64_t)a->attr.value * inner)));
    }
    for (int d = a->shape.rank - 1; d >= 0; d--) {
      LLVMValueRef dim = ci(cg, a->shape.dim[d]);
      sub[d] = LLVMBuildURem(cg->b, lin, dim, "");
      lin = LLVMBuildUDiv(cg->b, lin, dim, "");
    }
    return cg_load_elem(cg, a, row, sub);
  }
  case ST_NONE:
    break;
  }
  nnc_die("codegen: node %d (%s) has no storage", n->id, op_info[n->op].name);
}

void cg_store_elem(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx, LLVMValueRef v) {
  cg_mem_store(cg, n, row, cg_linear_index(cg, &n->shape, idx), v);
}

/* ---- scalar semantics (mirror interp.c's op_scalar) ---- */

static LLVMValueRef clamp_log(CG *cg, LLVMValueRef x) {
  LLVMValueRef l = cg_intrinsic1(cg, "llvm.log", x);
  return sel(cg, fgt(cg, l, cT(cg, -100)), l, cT(cg, -100));
}

static LLVMValueRef power(CG *cg, LLVMValueRef x, double p) {
  if (p == 2) return b_fmul(cg, x, x);
  if (p == 1) return x;
  if (p == 3) return b_fmul(cg, b_fmul(cg, x, x), x);
  if (p == -1) return b_fdiv(cg, cT(cg, 1), x);
  if (p == 0.5) return cg_intrinsic1(cg, "llvm.sqrt", x);
  LLVMValueRef args[2] = {x, cT(cg, p)};
  return intrinsic(cg, "llvm.pow", args, 2);
}

static LLVMValueRef is_nan(CG *cg, LLVMValueRef x) { return LLVMBuildFCmp(cg->b, LLVMRealUNO, x, x, ""); }

LLVMValueRef cg_scalar(CG *cg, Op op, LLVMValueRef a, LLVMValueRef b, double attr) {
  LLVMValueRef zero = cT(cg, 0), one = cT(cg, 1);
  switch (op) {
  case OP_NEG: return LLVMBuildFNeg(cg->b, a, "");
  case OP_RELU: /* a NaN passes, as PyTorch's relu; written as x86's max(0, a), which returns its second
                   operand for a NaN and on a tie, so that it stays one instruction (a -0 input stays -0) */
    return sel(cg, LLVMBuildFCmp(cg->b, LLVMRealOLT, a, zero, ""), zero, a);
  case OP_SIGMOID: {
    LLVMValueRef e = cg_intrinsic1(cg, "llvm.exp", LLVMBuildFNeg(cg->b, cg_intrinsic1(cg, "llvm.fabs", a), ""));
    LLVMValueRef num = sel(cg, LLVMBuildFCmp(cg->b, LLVMRealOGE, a, zero, ""), one, e);
    return b_fdiv(cg, num, b_fadd(cg, one, e));
  }
  case OP_TANH: return libm1(cg, "tanh", a);
  case OP_EXP: return cg_intrinsic1(cg, "llvm.exp", a);
  case OP_LOG: return cg_intrinsic1(cg, "llvm.log", a);
  case OP_SQRT: return cg_intrinsic1(cg, "llvm.sqrt", a);
  case OP_ABS: return cg_intrinsic1(cg, "llvm.fabs", a);
  case OP_SOFTPLUS: {
    LLVMValueRef e = cg_intrinsic1(cg, "llvm.exp", LLVMBuildFNeg(cg->b, cg_intrinsic1(cg, "llvm.fabs", a), ""));
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
  case OP_MAX: return sel(cg, LLVMBuildOr(cg->b, fgt(cg, a, b), is_nan(cg, a), ""), a, b);
  case OP_MIN: return sel(cg, LLVMBuildOr(cg->b, fgt(cg, b, a), is_nan(cg, a), ""), a, b);
  case OP_MAX_SHARE:
    return sel(cg, fgt(cg, a, b), one, sel(cg, LLVMBuildFCmp(cg->b, LLVMRealOEQ, a, b, ""), cT(cg, 0.5), zero));
  case OP_KEEP_POS: return sel(cg, fgt(cg, a, zero), b, zero);
  case OP_KEEP_NONPOS: return sel(cg, fgt(cg, a, zero), zero, b);
  case OP_INPUT: case OP_TARGET: case OP_PARAM: case OP_STATE: case OP_CONST: case OP_INV_BATCH:
  case OP_SUM: case OP_MEAN: case OP_LOGSUMEXP: case OP_SOFTMAX: case OP_LOG_SOFTMAX:
  case OP_MATMUL: case OP_OUTER: case OP_TRANSPOSE: case OP_BROADCAST: case OP_RESHAPE:
  case OP_SUM_TO: case OP_CONCAT: case OP_SLICE: case OP_DROPOUT: case OP_IF_TRAINING: case OP_GATHER:
  case OP_SCATTER_ADD: case OP_BATCH_SUM: case OP_BATCH_MEAN: case OP_COUNT:
  case OP_CONV: case OP_CONV_DX: case OP_CONV_DW: case OP_MAX_POOL: case OP_MAX_POOL_DX: case OP_AVG_POOL:
  case OP_AVG_POOL_DX: case OP_CHANNEL_MOMENTS:
    break;
  }
  nnc_die("codegen: %s is not elementwise", op_info[op].name);
}

/* Name a computed value after its IR node, so the LLVM IR reads like
 * --emit opt (%d.linear1.W, %3, ...). */
const char *cg_llvm_name(CG *cg, const Node *n, char *buf, size_t len) {
  const char *label = cg->labels[n->id] + 1; /* without the % */
  snprintf(buf, len, "%s%s", label[0] >= '0' && label[0] <= '9' ? "v" : "", label);
  return buf;
}

void cg_name_value(CG *cg, LLVMValueRef v, const Node *n) {
  char name[128];
  if (!LLVMIsAInstruction(v)) return;
  cg_llvm_name(cg, n, name, sizeof name);
  LLVMSetValueName2(v, name, strlen(name));
}

/* Would an Iter over `total` indices here be unrolled? */
bool cg_would_unroll(const CG *cg, int64_t total) {
  return total <= 1 || (total <= UNROLL_TRIP && cg->unroll * total <= UNROLL_LIMIT);
}

bool cg_would_unroll2(const CG *cg, int64_t outer, int64_t inner) {
  return cg_would_unroll(cg, outer) && (inner <= 1 || (inner <= UNROLL_TRIP && cg->unroll * outer * inner <= UNROLL_LIMIT));
}

bool cg_loop_outside(const CG *cg, int64_t outer, int64_t inner) {
  return outer > 1 && inner > 1 && outer * inner > UNROLL_TRIP && inner <= UNROLL_TRIP && cg_would_unroll(cg, outer) &&
         cg->unroll * outer * inner <= UNROLL_LIMIT;
}

Acc cg_acc_new(CG *cg, double start, bool unrolled) {
  Acc a = {NULL, cT(cg, start)};
  if (!unrolled) {
    a.slot = LLVMBuildAlloca(cg->alloc, cg->T, "acc");
    LLVMBuildStore(cg->b, a.value, a.slot);
  }
  return a;
}

LLVMValueRef cg_acc_get(CG *cg, Acc *a) {
  return a->slot ? LLVMBuildLoad2(cg->b, cg->T, a->slot, "") : a->value;
}

static void acc_set(CG *cg, Acc *a, LLVMValueRef v) {
  if (a->slot)
    LLVMBuildStore(cg->b, v, a->slot);
  else
    a->value = v;
}

void cg_acc_add(CG *cg, Acc *a, LLVMValueRef v) { acc_set(cg, a, cg_facc(cg, cg_acc_get(cg, a), v)); }

/* a = max(a, v); from -inf the first value is the max */
void cg_acc_max(CG *cg, Acc *a, LLVMValueRef v) {
  LLVMValueRef m = cg_acc_get(cg, a);
  acc_set(cg, a, is_const_fp(m, -INFINITY) ? v : sel(cg, fgt(cg, v, m), v, m));
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

/* ---- functions ---- */

void cg_add_attr(CG *cg, LLVMValueRef fn, unsigned idx, const char *name) {
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
  cg_add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  for (int i = 0; i < np; i++) {
    LLVMValueRef p = LLVMGetParam(fn, (unsigned)i);
    LLVMSetValueName2(p, pnames[i], strlen(pnames[i]));
    if (LLVMTypeOf(p) == cg->ptr) {
      cg_add_attr(cg, fn, (unsigned)i + 1, "noalias");
      cg_add_attr(cg, fn, (unsigned)i + 1, "nocapture");
      if (readonly_mask & (1u << i)) cg_add_attr(cg, fn, (unsigned)i + 1, "readonly");
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
  cg_forget_cache(cg);
}

void cg_end_body(CG *cg) {
  /* the entry block falls through to the code once all slots exist */
  LLVMBuildBr(cg->alloc, LLVMGetNextBasicBlock(LLVMGetEntryBasicBlock(cg->fn)));
}

const char *codegen_prefix(const Graph *g, char *buf, size_t n) {
  snprintf(buf, n, "nnc_%s_", g->model_name ? g->model_name : "model");
  return buf;
}
