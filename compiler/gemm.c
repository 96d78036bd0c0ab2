/*
 * gemm.c - matrix products as register-blocked GEMMs, and the epilogues
 * computed on their accumulators (see gemm.h).
 *
 * Large products run as C[M,N] = sum_k A(m,k) B(k,n) with B contiguous
 * along n (packed into the workspace when it is not): a block of MR rows x
 * NR columns of C stays in vector registers while k runs, each step
 * loading NR/VL vectors of B and broadcasting MR scalars of A into FMAs.
 * Columns past the last full block fall back to scalar code. Every C
 * element still sums over k in order, as the interpreter does.
 */
#include "gemm.h"

#include <string.h>

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
  case A_ROWVEC: idx[0] = k; return cg_load_elem(cg, gm->A, m, idx);
  case A_MATRIX: idx[0] = m; idx[1] = k; return cg_load_elem(cg, gm->A, gm->row, idx);
  case A_ROWS_T: idx[0] = m; return cg_load_elem(cg, gm->A, k, idx);
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
  LLVMValueRef k = cg_loop_begin(cg, &kl, gm->K);
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
  cg_loop_end(cg, &kl);
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
    LLVMValueRef nb = cg_loop_begin(cg, &nl, ci(cg, nfull));
    gemm_block(cg, gm, m0, mr, imul(cg, nb, ci(cg, nr)), cg->gemm_nv);
    cg_loop_end(cg, &nl);
  }
  if (gm->N - done >= cg->vl) {
    gemm_block(cg, gm, m0, mr, ci(cg, done), 1);
    done += cg->vl;
  }
  /* the last columns, one at a time */
  for (int i = 0; i < mr && done < gm->N; i++) {
    Loop jl, kl;
    LLVMValueRef m = iadd(cg, m0, ci(cg, i));
    LLVMValueRef j = iadd(cg, cg_loop_begin(cg, &jl, ci(cg, gm->N - done)), ci(cg, done));
    Acc acc = cg_acc_new(cg, 0, false);
    LLVMValueRef k = cg_loop_begin(cg, &kl, gm->K);
    LLVMValueRef bv = LLVMBuildLoad2(cg->b, cg->T, gep(cg, gm->B, iadd(cg, imul(cg, k, ci(cg, gm->ldb)), j)), "");
    cg_acc_add(cg, &acc, b_fmul(cg, gemm_a(cg, gm, m, k), bv));
    cg_loop_end(cg, &kl);
    LLVMValueRef val = cg_acc_get(cg, &acc);
    if (gm->sink) val = epilogue(cg, gm, m, j, 1, val);
    LLVMBuildStore(cg->b, val, gep(cg, gm->C, iadd(cg, imul(cg, m, ci(cg, gm->ldc)), j)));
    cg_loop_end(cg, &jl);
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
    if (cg->st[x->id].kind == ST_MEM) cg_flush(cg, x);
    return;
  }
  for (int k = 0; k < op_info[x->op].nin; k++) epi_flush(cg, gm, x->in[k]);
}

static LLVMValueRef epi_load(CG *cg, const Node *x, LLVMValueRef row, LLVMValueRef lin, int lanes) {
  LLVMValueRef ptr = cg_elem_ptr(cg, x, row, lin);
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
    cg_forget_node(cg, sink); /* the GEMM writes the sink's memory directly */
  } else {
    cg_forget_node(cg, n); /* the GEMM writes memory directly */
  }
}

static void emit_gemm(CG *cg, const Gemm *gm) {
  Loop ml;
  LLVMValueRef blocks = LLVMBuildSDiv(cg->b, gm->M, ci(cg, GEMM_MR), "");
  LLVMValueRef mb = cg_loop_begin(cg, &ml, blocks);
  gemm_rows(cg, gm, imul(cg, mb, ci(cg, GEMM_MR)), GEMM_MR);
  cg_loop_end(cg, &ml);
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
    cg_flush(cg, src);
    LLVMTypeRef vt = LLVMVectorType(cg->T, (unsigned)vl);
    LLVMValueRef from = gep(cg, ss->base, ci(cg, ss->off));
    Loop nl, kl;
    LLVMValueRef n0 = imul(cg, cg_loop_begin(cg, &nl, ci(cg, N / vl)), ci(cg, vl));
    LLVMValueRef k0 = imul(cg, cg_loop_begin(cg, &kl, ci(cg, K / vl)), ci(cg, vl));
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
    cg_loop_end(cg, &kl);
    cg_loop_end(cg, &nl);
    return base;
  }
  Iter it;
  Shape kn = shape2(K, N);
  cg_iter_shape(cg, &it, &kn);
  FOR_EACH(cg, it) {
    LLVMValueRef idx[2] = {swap ? it.idx[1] : it.idx[0], swap ? it.idx[0] : it.idx[1]};
    LLVMValueRef v = cg_load_elem(cg, src, ci(cg, 0), idx);
    LLVMBuildStore(cg->b, v, gep(cg, base, iadd(cg, imul(cg, it.idx[0], ci(cg, N)), it.idx[1])));
  }
  return base;
}

/* A uniform matrix node as a row-major pointer when it is in memory (or a
 * transpose of memory and `want_t`), else NULL. */
static LLVMValueRef direct_matrix(CG *cg, const Node *n, int64_t *ld) {
  const Store *s = &cg->st[n->id];
  if (n->batched || s->kind != ST_MEM || n->shape.rank != 2) return NULL;
  cg_flush(cg, n); /* the GEMM reads memory, not the value cache */
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

bool gemm_try_matmul(CG *cg, const Node *n) {
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
bool gemm_batch_outer_ok(const CG *cg, const Node *n) {
  const Node *o = n->in[0];
  return n->op == OP_BATCH_SUM && o->op == OP_OUTER && o->batched && cg->st[o->id].kind == ST_INLINE;
}

void gemm_batch_outer(CG *cg, const Node *n) {
  const Node *o = n->in[0], *a = o->in[0], *b = o->in[1];
  int64_t m = a->shape.dim[0], nn = b->shape.dim[0];
  Gemm gm = {.M = ci(cg, m), .K = cg->n, .N = nn, .A = a, .amode = A_ROWS_T};
  const Store *bs = &cg->st[b->id];
  if (b->batched && bs->kind == ST_MEM) {
    cg_flush(cg, b); /* the GEMM reads memory, not the value cache */
    gm.B = gep(cg, bs->base, ci(cg, bs->off));
    gm.ldb = bs->row_stride;
  } else {
    nnc_die("codegen: batch outer needs its right operand in memory");
  }
  gemm_target(cg, &gm, n);
  gm.ldc = nn;
  emit_gemm(cg, &gm);
}

/* outer(a, b) whose only reader sums it over the batch: one GEMM. */
bool gemm_outer_ok(const CG *cg, const Node *n, const Node *c) {
  return n->op == OP_OUTER && c->op == OP_BATCH_SUM && n->batched && n->in[0]->batched &&
         n->in[1]->batched && cg->st[n->in[1]->id].kind == ST_MEM && gemm_worth(cg, n->shape.dim[1], 4);
}

/* GEMM epilogues: for each GEMM node with one reader, follow the inlined
 * elementwise readers up to the stored node they feed; when that node's
 * expression is all vector-friendly ops over values a GEMM block can read
 * at its own element, the GEMM computes it (see "GEMM epilogues"). */
void gemm_plan_epilogues(CG *cg, const Node **reader, const int *users, const bool *root) {
  const Graph *g = cg->g;
  for (int i = 0; i < g->len; i++) {
    const Node *n = g->nodes[i];
    if (!cg->need[i] || cg->given[i] || root[i] || users[i] != 1 || cg->st[i].kind != ST_MEM) continue;
    bool gemm = n->op == OP_MATMUL ? matmul_gemm_ok(cg, n) : n->op == OP_BATCH_SUM && gemm_batch_outer_ok(cg, n);
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
