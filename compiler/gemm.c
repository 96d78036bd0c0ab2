/*
 * gemm.c - matrix products as calls of one packed, cache-blocked GEMM
 * kernel per module, and the epilogues computed on its accumulators (see
 * gemm.h).
 *
 * A product C[M,N] = A[M,K] B[K,N] (A and B any strides, C rows of ldc)
 * is a call of the module's macro-kernel, written once whatever the sizes,
 * which are its arguments. It runs BLIS's loops, with A read in place:
 *
 *   for jc in 0..N by NC
 *     for pc in 0..K by KB                        (KB: the caller's k-block)
 *       pack B[pc.., jc..] into NR-wide micro-panels: B~, zero padded
 *       for ic in 0..M by MC                      rows of A: L2
 *         for jr in 0..nc by NR                   a micro-panel of B~: L1
 *           for ir in ic..ic+mc by MR
 *             micro-kernel: C[ir.., jc+jr..] (+)= A[ir.., pc..] B~[.., jr..]
 *
 * The micro-kernel keeps an MR x NR tile of C in vector registers (6 rows
 * x 2 vectors, 12 of AVX2's 16 registers; 6 x 4, 24 of AVX-512's 32)
 * while k runs: each step loads NR/VL vectors of B~ and broadcasts MR
 * scalars of A into FMAs. The k-blocks of one tile go through C: the first
 * starts at zero, the others load what the one before stored; every C
 * element sums over k in order, as the interpreter does. Edge tiles
 * store through masks, B~'s padding zero; an edge tile of fewer rows
 * (whole width) runs a k loop of its rows' FMAs only, and an edge panel's
 * k loop computes only the vectors its columns need (one loop for each
 * count of either), its missing rows reading row 0 again.
 *
 * An epilogue (the expression the GEMM's readers make of its result, see
 * "GEMM epilogues") is a small kernel of its own that the last k-block of
 * a tile calls on the sums the micro-kernel left in a tile buffer: the
 * micro-kernel, its k loop the costly code to compile, is the same for
 * every GEMM and every model. The epilogue's operands come in a context
 * array the caller fills; constants are part of the kernel.
 */
#include "gemm.h"

#include "channel.h"
#include "optstep.h"
#include "window.h"
#include "fork.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows of a micro-kernel tile; its columns are cg->gemm_nv vectors. */
enum { GEMM_MR = 6 };
/* Cache blocking (elements): the B~ panel of KC x NC stays in L2/L3, a
 * micro-panel KC x NR in L1, MC rows of A's KC columns in L2. KC (gemm.h) is the
 * same for every target so that the workspace does not depend on it. */
enum { GEMM_NC = 4096, GEMM_MC_BYTES = 512 * 1024, GEMM_SMALL_BYTES = 512 * 1024 };
/* The widest NR of any target (4 vectors of 16 floats): scratch is sized
 * for it. */
enum { GEMM_NR_MAX = 64 };
/* The k-block of a transposed product (see "Transposed products"): its
 * packed x^T block, KC_T x NR, stays in L1. */
enum { GEMM_KC_T = 128 };
/* A layer's transposed product runs all of K in one k-block when its
 * packed x^T (K x NR) is at most this (a quarter of a 1 MiB L2) and its
 * rows are many (see "Transposed products"). */
enum { GEMM_WHOLE_K_BYTES = 256 * 1024, GEMM_WHOLE_K_ROWS = GEMM_NR_MAX };

/* The micro-kernel's flags: load C first (a k-block after the first);
 * the last k-block (compute the epilogue). */
enum { UK_LOADC = 1, UK_LAST = 2 };

const char *const gemm_fixed_kernel_names[GEMM_FIXED_KERNELS] = {"nnc.gemm.pack_b", "nnc.gemm.ukr", "nnc.gemm",
                                                                  "nnc.gemm.im2col", "nnc.gemm.col2im",
                                                                  "nnc.gemm.max_pool2", "nnc.gemm.max_pool2_dx",
                                                                  "nnc.channel.moments", "nnc.channel.sum",
                                                                  "nnc.channel.affine", "nnc.opt.adam",
                                                                  "nnc.gemm.epi_relu_bias",
                                                                  "nnc.gemm.epi_bias", "nnc.gemm.epi_relu_mask",
                                                                  "nnc.gemm.epi_relu_channel",
                                                                  "nnc.gemm.epi_relu_affine"};
/* The keys (epi_walk) of the fixed epilogues, from GEMM_FIXED_EPI on:
 * relu(x W + b), x W + b, keep_pos(h, dy W^T), relu(conv(x, W) + b),
 * relu(conv(x, W) * a + b) (batch_norm with running statistics).
 * Each was a kernel in every module that has it, its optimization and
 * machine code about 14 M instructions (fashion_cnn has three of the
 * five, lenet5 and W2 each three of their four or five, fashion_bn all
 * three of its). */
static const char *const fixed_epi_keys[GEMM_FIXED_KERNELS - GEMM_FIXED_EPI] = {
    "relu[0x0p+0](add[0x0p+0](acc,r))", "add[0x0p+0](acc,r)", "keep_pos[0x0p+0](S,acc)",
    "relu[0x0p+0](add[0x0p+0](acc,c))", "relu[0x0p+0](add[0x0p+0](mul[0x0p+0](acc,c),c))"};
enum { K_PACK = GEMM_PACK, K_UKR = GEMM_UKR, K_GEMM = GEMM_MACRO };

/* The packer's parameters. */
enum { P_DST, P_DESC, P_K0, P_KC, P_N0, P_NC, P_COUNT };

/* An epilogue's kernels (below). */
typedef struct EpiKernels {
  char *key;
  LLVMValueRef epi;
} EpiKernels;

/* The module's kernels: made at the first GEMM, shared by its functions. */
struct GemmKernels {
  LLVMValueRef gemm, pack, ukr;
  /* window.c's fixed kernels from GEMM_IM2COL on, once made or declared */
  LLVMValueRef win[GEMM_FIXED_KERNELS - GEMM_IM2COL];
  LLVMTypeRef gemm_ty, pack_ty, ukr_ty, epi_ty, win_ty, pool_ty, ch_ty, aff_ty, adam_ty;
  int nepi, nown; /* the epilogues used, and those made here */
  EpiKernels *epi;
};

/* ---- small builders ---- */

static LLVMValueRef gep(CG *cg, LLVMValueRef base, LLVMValueRef off) {
  return LLVMBuildInBoundsGEP2(cg->b, cg->T, base, &off, 1, "");
}

static LLVMValueRef gep_i64(CG *cg, LLVMValueRef base, int64_t i) {
  LLVMValueRef off = ci(cg, i);
  return LLVMBuildInBoundsGEP2(cg->b, cg->i64, base, &off, 1, "");
}

static LLVMTypeRef vec_type(CG *cg) { return LLVMVectorType(cg->T, (unsigned)cg->vl); }

static LLVMValueRef load_al(CG *cg, LLVMTypeRef ty, LLVMValueRef ptr, unsigned align) {
  LLVMValueRef v = LLVMBuildLoad2(cg->b, ty, ptr, "");
  LLVMSetAlignment(v, align);
  return v;
}

static void store_al(CG *cg, LLVMValueRef v, LLVMValueRef ptr, unsigned align) {
  LLVMSetAlignment(LLVMBuildStore(cg->b, v, ptr), align);
}

static unsigned es(const CG *cg) { return (unsigned)cg->L->elem_size; }

static LLVMValueRef imin(CG *cg, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, a, b, ""), a, b, "");
}

static LLVMValueRef isub(CG *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWSub(cg->b, a, b, ""); }

static LLVMValueRef icmp(CG *cg, LLVMIntPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildICmp(cg->b, p, a, b, "");
}

/* ceil(x / b) for x >= 0 */
static LLVMValueRef blocks_of(CG *cg, LLVMValueRef x, int64_t b) {
  return LLVMBuildSDiv(cg->b, iadd(cg, x, ci(cg, b - 1)), ci(cg, b), "");
}

static LLVMValueRef splat(CG *cg, LLVMValueRef x, int vl) {
  LLVMTypeRef vt = LLVMVectorType(cg->T, (unsigned)vl);
  LLVMValueRef v = LLVMBuildInsertElement(cg->b, LLVMGetUndef(vt), x, ci(cg, 0), "");
  LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(LLVMInt32TypeInContext(cg->ctx), (unsigned)vl));
  return LLVMBuildShuffleVector(cg->b, v, LLVMGetUndef(vt), zeros, "");
}


/* A hint that the line at p will be read (or written) soon, into L1
 * (locality 3) or L2 (2). */
static void prefetch_to(CG *cg, LLVMValueRef p, bool write, int locality) {
  LLVMTypeRef i32 = LLVMInt32TypeInContext(cg->ctx);
  unsigned id = LLVMLookupIntrinsicID("llvm.prefetch", 13);
  LLVMTypeRef over = cg->ptr;
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, &over, 1);
  LLVMValueRef args[4] = {p, LLVMConstInt(i32, write, 0), LLVMConstInt(i32, (unsigned)locality, 0), LLVMConstInt(i32, 1, 0)};
  LLVMBuildCall2(cg->b, LLVMIntrinsicGetType(cg->ctx, id, &over, 1), fn, args, 4, "");
}

static void prefetch(CG *cg, LLVMValueRef p, bool write) { prefetch_to(cg, p, write, 3); }

/* Lanes l with l < limit (an i64), as a vector of i1. */
static LLVMValueRef lane_mask(CG *cg, LLVMValueRef limit) {
  return LLVMBuildICmp(cg->b, LLVMIntSLT, cg_lane_ids(cg, ci(cg, 0)), cg_splat_i32(cg, limit), "");
}

static LLVMValueRef masked_load(CG *cg, LLVMValueRef ptr, LLVMValueRef mask) {
  LLVMTypeRef vt = vec_type(cg);
  LLVMTypeRef over[2] = {vt, cg->ptr};
  unsigned id = LLVMLookupIntrinsicID("llvm.masked.load", 16);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, over, 2);
  LLVMTypeRef ty = LLVMIntrinsicGetType(cg->ctx, id, over, 2);
  LLVMValueRef args[4] = {ptr, LLVMConstInt(LLVMInt32TypeInContext(cg->ctx), es(cg), 0), mask, LLVMConstNull(vt)};
  return LLVMBuildCall2(cg->b, ty, fn, args, 4, "");
}

static void masked_store(CG *cg, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef mask) {
  LLVMTypeRef over[2] = {vec_type(cg), cg->ptr};
  unsigned id = LLVMLookupIntrinsicID("llvm.masked.store", 17);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, over, 2);
  LLVMTypeRef ty = LLVMIntrinsicGetType(cg->ctx, id, over, 2);
  LLVMValueRef args[4] = {v, ptr, LLVMConstInt(LLVMInt32TypeInContext(cg->ctx), es(cg), 0), mask};
  LLVMBuildCall2(cg->b, ty, fn, args, 4, "");
}

/* if (cond) { then } else { other }: blocks to fill, joined at *join. */
static void branch(CG *cg, LLVMValueRef cond, LLVMBasicBlockRef *then, LLVMBasicBlockRef *other,
                   LLVMBasicBlockRef *join) {
  *then = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "then");
  *other = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "else");
  *join = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "join");
  LLVMBuildCondBr(cg->b, cond, *then, *other);
  LLVMPositionBuilderAtEnd(cg->b, *then);
}

static void go_to(CG *cg, LLVMBasicBlockRef to, LLVMBasicBlockRef at) {
  LLVMBuildBr(cg->b, to);
  if (at) LLVMPositionBuilderAtEnd(cg->b, at);
}

/* ---- kernel functions ----
 *
 * Kernels are built in the middle of another function's body: its builders,
 * loop depth and lanes are put aside and restored. */

typedef struct KernelScope {
  LLVMBuilderRef b, alloc;
  LLVMValueRef fn;
  int depth, lanes;
  int64_t unroll;
  LLVMBasicBlockRef outer_pre;
} KernelScope;

static LLVMValueRef kernel_begin(CG *cg, KernelScope *ks, const char *name, LLVMTypeRef ty) {
  *ks = (KernelScope){cg->b, cg->alloc, cg->fn, cg->depth, cg->lanes, cg->unroll, cg->outer_pre};
  LLVMValueRef fn = LLVMAddFunction(cg->mod, name, ty);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  cg_add_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind");
  cg_add_attr(cg, fn, LLVMAttributeFunctionIndex, "noinline");
  cg->b = LLVMCreateBuilderInContext(cg->ctx);
  cg->alloc = LLVMCreateBuilderInContext(cg->ctx);
  cg->fn = fn;
  cg->depth = 0;
  cg->lanes = 1;
  cg->unroll = 1;
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry");
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cg->ctx, fn, "start");
  LLVMPositionBuilderAtEnd(cg->alloc, entry);
  LLVMPositionBuilderAtEnd(cg->b, body);
  return fn;
}

static void kernel_end(CG *cg, KernelScope *ks) {
  LLVMBuildRetVoid(cg->b);
  LLVMBuildBr(cg->alloc, LLVMGetNextBasicBlock(LLVMGetEntryBasicBlock(cg->fn)));
  LLVMDisposeBuilder(cg->b);
  LLVMDisposeBuilder(cg->alloc);
  cg->b = ks->b, cg->alloc = ks->alloc, cg->fn = ks->fn, cg->depth = ks->depth, cg->lanes = ks->lanes;
  cg->unroll = ks->unroll, cg->outer_pre = ks->outer_pre;
}

static void noalias_param(CG *cg, LLVMValueRef fn, unsigned i, bool readonly) {
  cg_add_attr(cg, fn, i + 1, "noalias");
  cg_add_attr(cg, fn, i + 1, "nocapture");
  if (readonly) cg_add_attr(cg, fn, i + 1, "readonly");
}

/* The k-block of a GEMM: KC, or all of K in one when an epilogue reads the
 * memory it writes (a k-block's partial sums would overwrite what a later
 * block's epilogue reads). */
static int64_t kc_of(const CG *cg) { (void)cg; return GEMM_KC; }

static int64_t mc_of(const CG *cg) {
  int64_t mc = GEMM_MC_BYTES / (kc_of(cg) * cg->L->elem_size);
  return mc / GEMM_MR * GEMM_MR;
}

static int64_t nr_of(const CG *cg) { return (int64_t)cg->vl * cg->gemm_nv; }

/* ---- packing B ----
 *
 * void pack(T *dst, const GemmBDesc *desc, i64 k0, i64 kc, i64 n0, i64 nc)
 * B(k0.., n0..) -> dst as ceil(nc / NR) micro-panels of kc x NR, each k's
 * NR values contiguous, columns past nc zero. desc = {B, rs, cs}: B(k, n)
 * at B + k*rs + n*cs. Rows contiguous along n are copied by vectors;
 * columns contiguous along k (a transposed matrix) go through VL x VL
 * register transposes, a partial panel's too (a weight gradient's 25 or
 * 800 columns of a convolution's taps); anything else element by
 * element. */

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

/* One micro-panel whose rows are contiguous: vector copies (masked for a
 * partial panel of w columns). */
static void pack_rows(CG *cg, LLVMValueRef out, LLVMValueRef src, LLVMValueRef rs, LLVMValueRef kc, LLVMValueRef w) {
  int vl = cg->vl, nv = cg->gemm_nv;
  LLVMTypeRef vt = vec_type(cg);
  LLVMBasicBlockRef full, part, join;
  branch(cg, icmp(cg, LLVMIntEQ, w, ci(cg, nr_of(cg))), &full, &part, &join);
  for (int masked = 0; masked < 2; masked++) {
    LLVMValueRef mask[4] = {0};
    if (masked)
      for (int v = 0; v < nv; v++) mask[v] = lane_mask(cg, isub(cg, w, ci(cg, v * vl)));
    Loop kl;
    LLVMValueRef k = cg_loop_begin(cg, &kl, kc);
    LLVMValueRef row = gep(cg, src, imul(cg, k, rs)), o = gep(cg, out, imul(cg, k, ci(cg, nr_of(cg))));
    for (int v = 0; v < nv; v++) {
      LLVMValueRef p = gep(cg, row, ci(cg, v * vl));
      LLVMValueRef x = masked ? masked_load(cg, p, mask[v]) : load_al(cg, vt, p, es(cg));
      store_al(cg, x, gep(cg, o, ci(cg, v * vl)), es(cg));
    }
    cg_loop_end(cg, &kl);
    go_to(cg, join, masked ? NULL : part);
  }
  LLVMPositionBuilderAtEnd(cg->b, join);
}

/* One micro-panel whose columns are contiguous (B(k, n) = src[n*cs +
 * k]): VL x VL blocks through register transposes, the last kc % VL rows
 * element by element. A partial panel (w: its columns, NULL when full)
 * loads its columns j < w only, through masks of all or no lanes, and
 * its other columns are zero. */
static void pack_cols(CG *cg, LLVMValueRef out, LLVMValueRef src, LLVMValueRef cs, LLVMValueRef kc, LLVMValueRef w) {
  int vl = cg->vl, nv = cg->gemm_nv;
  int64_t nr = nr_of(cg);
  LLVMTypeRef vt = vec_type(cg);
  Loop bl, vloop, kl, jl;
  LLVMValueRef nblk = LLVMBuildSDiv(cg->b, kc, ci(cg, vl), "");
  LLVMValueRef k0 = imul(cg, cg_loop_begin(cg, &bl, nblk), ci(cg, vl));
  LLVMValueRef n0 = imul(cg, cg_loop_begin(cg, &vloop, ci(cg, nv)), ci(cg, vl));
  LLVMValueRef x[64];
  LLVMValueRef all = lane_mask(cg, ci(cg, vl)), none = LLVMConstNull(LLVMTypeOf(all));
  for (int j = 0; j < vl; j++) { /* column n0 + j, rows k0.. */
    LLVMValueRef n = iadd(cg, n0, ci(cg, j));
    if (w) n = imin(cg, n, isub(cg, w, ci(cg, 1))); /* a column inside, for the address */
    LLVMValueRef p = gep(cg, src, iadd(cg, imul(cg, n, cs), k0));
    x[j] = w ? masked_load(cg, p, sel(cg, icmp(cg, LLVMIntSLT, iadd(cg, n0, ci(cg, j)), w), all, none))
             : load_al(cg, vt, p, es(cg));
  }
  transpose_block(cg, x);
  for (int i = 0; i < vl; i++)
    store_al(cg, x[i], gep(cg, out, iadd(cg, imul(cg, iadd(cg, k0, ci(cg, i)), ci(cg, nr)), n0)), es(cg));
  cg_loop_end(cg, &vloop);
  cg_loop_end(cg, &bl);
  LLVMValueRef done = imul(cg, nblk, ci(cg, vl));
  LLVMValueRef k = iadd(cg, cg_loop_begin(cg, &kl, isub(cg, kc, done)), done);
  LLVMValueRef j = cg_loop_begin(cg, &jl, ci(cg, nr));
  LLVMValueRef n = w ? imin(cg, j, isub(cg, w, ci(cg, 1))) : j;
  LLVMValueRef e = load_al(cg, cg->T, gep(cg, src, iadd(cg, imul(cg, n, cs), k)), es(cg));
  if (w) e = sel(cg, icmp(cg, LLVMIntSLT, j, w), e, LLVMConstNull(cg->T));
  store_al(cg, e, gep(cg, out, iadd(cg, imul(cg, k, ci(cg, nr)), j)), es(cg));
  cg_loop_end(cg, &jl);
  cg_loop_end(cg, &kl);
}

/* Any strides, element by element; columns w.. of a partial panel zero. */
static void pack_any(CG *cg, LLVMValueRef out, LLVMValueRef src, LLVMValueRef rs, LLVMValueRef cs, LLVMValueRef kc,
                     LLVMValueRef w) {
  int64_t nr = nr_of(cg);
  Loop kl, jl;
  LLVMValueRef k = cg_loop_begin(cg, &kl, kc);
  for (int v = 0; v < cg->gemm_nv; v++)
    store_al(cg, LLVMConstNull(vec_type(cg)), gep(cg, out, iadd(cg, imul(cg, k, ci(cg, nr)), ci(cg, v * cg->vl))), es(cg));
  cg_loop_end(cg, &kl);
  LLVMValueRef j = cg_loop_begin(cg, &jl, w);
  k = cg_loop_begin(cg, &kl, kc);
  LLVMValueRef x = load_al(cg, cg->T, gep(cg, src, iadd(cg, imul(cg, k, rs), imul(cg, j, cs))), es(cg));
  store_al(cg, x, gep(cg, out, iadd(cg, imul(cg, k, ci(cg, nr)), j)), es(cg));
  cg_loop_end(cg, &kl);
  cg_loop_end(cg, &jl);
}

static LLVMValueRef build_pack(CG *cg, LLVMTypeRef ty) {
  KernelScope ks;
  LLVMValueRef fn = kernel_begin(cg, &ks, gemm_fixed_kernel_names[K_PACK], ty);
  noalias_param(cg, fn, P_DST, false);
  noalias_param(cg, fn, P_DESC, true);
  LLVMValueRef desc = LLVMGetParam(fn, P_DESC);
  LLVMValueRef B = load_al(cg, cg->ptr, desc, 8);
  LLVMValueRef rs = load_al(cg, cg->i64, gep_i64(cg, desc, 1), 8), cs = load_al(cg, cg->i64, gep_i64(cg, desc, 2), 8);
  LLVMValueRef kc = LLVMGetParam(fn, P_KC), nc = LLVMGetParam(fn, P_NC);
  LLVMValueRef src0 = gep(cg, B, iadd(cg, imul(cg, LLVMGetParam(fn, P_K0), rs), imul(cg, LLVMGetParam(fn, P_N0), cs)));
  int64_t nr = nr_of(cg);
  Loop pl;
  LLVMValueRef j0 = imul(cg, cg_loop_begin(cg, &pl, blocks_of(cg, nc, nr)), ci(cg, nr));
  LLVMValueRef w = imin(cg, ci(cg, nr), isub(cg, nc, j0));
  LLVMValueRef out = gep(cg, LLVMGetParam(fn, P_DST), imul(cg, j0, kc));
  LLVMValueRef src = gep(cg, src0, imul(cg, j0, cs));
  LLVMBasicBlockRef rows, other, join, cols, any, join2;
  branch(cg, icmp(cg, LLVMIntEQ, cs, ci(cg, 1)), &rows, &other, &join);
  pack_rows(cg, out, src, rs, kc, w);
  go_to(cg, join, other);
  LLVMBasicBlockRef full, part, join3;
  branch(cg, icmp(cg, LLVMIntEQ, rs, ci(cg, 1)), &cols, &any, &join2);
  branch(cg, icmp(cg, LLVMIntEQ, w, ci(cg, nr)), &full, &part, &join3);
  pack_cols(cg, out, src, cs, kc, NULL);
  go_to(cg, join3, part);
  pack_cols(cg, out, src, cs, kc, w);
  go_to(cg, join3, join3);
  go_to(cg, join2, any);
  pack_any(cg, out, src, rs, cs, kc, w);
  go_to(cg, join2, join2);
  go_to(cg, join, join);
  cg_loop_end(cg, &pl);
  kernel_end(cg, &ks);
  return fn;
}

/* ---- GEMM epilogues ----
 *
 * A GEMM node g whose only reader is elementwise, and so on up to a node
 * that is stored (the sink: a layer's relu output, a relu-masked gradient,
 * an SGD update written in place), is computed with the sink's expression
 * applied to its accumulators: one pass instead of a GEMM writing g and a
 * loop reading it back (gemm_plan_epilogues finds these chains). The
 * expression is built by cg_scalar() on whole vectors, so its arithmetic
 * is the one the loop would have done, element by element.
 *
 * The micro-kernel of an epilogue is shared by every GEMM whose epilogue
 * has the same key: its ops and constants, and how each stored operand is
 * read (below); the operands' addresses and strides are the call's. */

/* Ops an epilogue computes on vectors (no calls to libm). */
static bool epi_op(Op op) {
  return op == OP_NEG || op == OP_RELU || op == OP_STEP || op == OP_LEAKY_RELU || op == OP_LEAKY_STEP ||
         op == OP_MAXC || op == OP_SIGN || op == OP_ADD || op == OP_SUB || op == OP_MUL || op == OP_DIV ||
         op == OP_KEEP_POS;
}

/* How an operand read from memory lines up with g's elements: g is either
 * batched [N] (row m, element n) or one [M,N] matrix (element m*N + n), or
 * a convolution, whose GEMMs run per row of the batch (gm->row): element
 * (m, n) is channel m, position n of that row. */
typedef enum EpiRead { EPI_NO, EPI_SAME, EPI_ROWVEC, EPI_SCALAR, EPI_ROWSCALAR, EPI_CHANNEL } EpiRead;

/* A convolution's operands: its own shape, a value per channel ([K, 1, 1],
 * a bias) or a scalar, in memory or seen through reshapes. */
static EpiRead epi_read_conv(const CG *cg, const Node *x, const Node *g) {
  const Store *s = &cg->st[cg_stored(cg, x)->id];
  if (s->kind == ST_CONST || s->kind == ST_VALUE) return EPI_SCALAR;
  if (s->kind != ST_MEM) return EPI_NO;
  int64_t numel = shape_numel(&x->shape);
  if (x->batched) return shape_eq(&x->shape, &g->shape) && s->row_stride == numel ? EPI_SAME : EPI_NO;
  if (numel == 1) return EPI_SCALAR;
  if (x->shape.rank == g->shape.rank && x->shape.dim[0] == g->shape.dim[0] && numel == x->shape.dim[0])
    return EPI_CHANNEL;
  return EPI_NO;
}

static EpiRead epi_read(const CG *cg, const Node *x, const Node *g) {
  if (g->op == OP_CONV) return epi_read_conv(cg, x, g);
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
    x = cg_stored(cg, x);
    if (cg->st[x->id].kind == ST_MEM) cg_flush(cg, x);
    return;
  }
  for (int k = 0; k < op_info[x->op].nin; k++) epi_flush(cg, gm, x->in[k]);
}

/* The epilogue's expression is walked twice, always in the same order:
 * for its key, and at the call (each stored operand's address and stride
 * into the next slots of the context). The key alone defines the
 * kernel's code (epi_code reads it back): its ops and their attributes,
 * its constants, how each stored operand is read and the slots it takes.
 *   key  := "acc" | OP "[" ATTR "](" key ["," key] ")" | CONST | READ
 * (ATTR and CONST in C's %a, READ one of v S r s R c: a value, and
 * EpiRead's SAME, ROWVEC, SCALAR, ROWSCALAR, CHANNEL). */
typedef enum EpiPass { EPI_KEY, EPI_ARGS } EpiPass;

typedef struct EpiWalk {
  EpiPass pass;
  StrBuf key;
  LLVMValueRef ctx; /* the context array, filled */
  int slot;         /* its next slot */
} EpiWalk;

static void slot_store(CG *cg, EpiWalk *w, LLVMValueRef v) {
  store_al(cg, v, gep_i64(cg, w->ctx, w->slot++), LLVMTypeOf(v) == cg->T ? es(cg) : 8);
}

static void epi_walk(CG *cg, EpiWalk *w, const Gemm *gm, const Node *x) {
  if (x == gm->g) {
    if (w->pass == EPI_KEY) sb_puts(&w->key, "acc");
    return;
  }
  const Store *s = &cg->st[x->id];
  if (x == gm->sink || s->kind == ST_INLINE) {
    if (w->pass == EPI_KEY) sb_printf(&w->key, "%s[%a](", op_info[x->op].name, x->attr.value);
    epi_walk(cg, w, gm, x->in[0]);
    if (op_info[x->op].nin > 1) {
      if (w->pass == EPI_KEY) sb_putc(&w->key, ',');
      epi_walk(cg, w, gm, x->in[1]);
    }
    if (w->pass == EPI_KEY) sb_putc(&w->key, ')');
    return;
  }
  const Node *g = gm->g;
  EpiRead how = epi_read(cg, x, g);
  if (how == EPI_NO) nnc_die("codegen: node %d cannot be read in a GEMM epilogue", x->id);
  x = cg_stored(cg, x);
  s = &cg->st[x->id];
  if (s->kind == ST_CONST) { /* part of the kernel */
    if (w->pass == EPI_KEY) sb_printf(&w->key, "%a", x->attr.value);
    return;
  }
  if (w->pass == EPI_KEY) {
    sb_printf(&w->key, "%c", s->kind == ST_VALUE ? 'v' : "?SrsRc"[how]);
    w->slot += s->kind != ST_VALUE && (how == EPI_SAME || how == EPI_ROWSCALAR) ? 2 : 1;
    return;
  }
  if (s->kind == ST_VALUE) {
    slot_store(cg, w, s->value);
    return;
  }
  slot_store(cg, w, cg_elem_ptr(cg, x, gm->row && x->batched ? gm->row : ci(cg, 0), ci(cg, 0)));
  int64_t ld = gm->row ? shape_numel(&g->shape) / g->shape.dim[0] : x->batched ? s->row_stride : g->shape.dim[1];
  if (how == EPI_SAME) slot_store(cg, w, ci(cg, ld));
  if (how == EPI_ROWSCALAR) slot_store(cg, w, ci(cg, s->row_stride));
}

/* The kernel's side: a key read back at p, the context's slots read in
 * the order the call filled them, the values of tile element (m,
 * n..n+VL-1) computed. */
typedef struct EpiCode {
  const char *p;
  LLVMValueRef ctx;
  int slot;
  LLVMValueRef acc, m, n, mask;
} EpiCode;

/* Slot j of the context as a value of type ty. */
static LLVMValueRef slot_load(CG *cg, EpiCode *w, LLVMTypeRef ty) {
  return load_al(cg, ty, gep_i64(cg, w->ctx, w->slot++), ty == cg->T ? es(cg) : 8);
}

/* A vector of operand elements at p (masked in edge tiles). */
static LLVMValueRef epi_vec(CG *cg, EpiCode *w, LLVMValueRef p) {
  return w->mask ? masked_load(cg, p, w->mask) : load_al(cg, vec_type(cg), p, es(cg));
}

static Op op_named(const char *name, size_t len) {
  for (int op = 0; op < OP_COUNT; op++)
    if (strlen(op_info[op].name) == len && strncmp(op_info[op].name, name, len) == 0) return (Op)op;
  nnc_die("codegen: no op '%.*s' in a GEMM epilogue's key", (int)len, name);
}

static LLVMValueRef epi_code(CG *cg, EpiCode *w) {
  const char *p = w->p;
  if (strncmp(p, "acc", 3) == 0 && p[3] != '[') {
    w->p += 3;
    return w->acc;
  }
  if (*p && strchr("vSrsRc", *p) && (p[1] == ',' || p[1] == ')' || !p[1])) { /* a stored operand */
    w->p++;
    if (*p == 'v') return splat(cg, slot_load(cg, w, cg->T), cg->vl);
    LLVMValueRef at = slot_load(cg, w, cg->ptr);
    switch (*p) {
    case 'S': {
      LLVMValueRef ld = slot_load(cg, w, cg->i64);
      return epi_vec(cg, w, gep(cg, at, iadd(cg, imul(cg, w->m, ld), w->n)));
    }
    case 'r': return epi_vec(cg, w, gep(cg, at, w->n));
    case 'c': return splat(cg, load_al(cg, cg->T, gep(cg, at, w->m), es(cg)), cg->vl);
    case 's': return splat(cg, load_al(cg, cg->T, at, es(cg)), cg->vl);
    default: { /* 'R' */
      LLVMValueRef stride = slot_load(cg, w, cg->i64);
      return splat(cg, load_al(cg, cg->T, gep(cg, at, imul(cg, w->m, stride)), es(cg)), cg->vl);
    }
    }
  }
  const char *open = strchr(p, '[');
  const char *name_end = p;
  while (*name_end == '_' || (*name_end >= 'a' && *name_end <= 'z') || (*name_end >= '0' && *name_end <= '9'))
    name_end++;
  if (open && open == name_end && name_end > p && !(*p >= '0' && *p <= '9')) { /* OP[ATTR](a[,b]) */
    Op op = op_named(p, (size_t)(name_end - p));
    char *end;
    double attr = strtod(open + 1, &end);
    w->p = end + 2; /* "](" */
    LLVMValueRef a = epi_code(cg, w), b = NULL;
    if (*w->p == ',') {
      w->p++;
      b = epi_code(cg, w);
    }
    w->p++; /* ")" */
    return cg_scalar(cg, op, a, b, attr);
  }
  char *end; /* a constant */
  double v = strtod(p, &end);
  w->p = end;
  return splat(cg, LLVMConstReal(cg->T, v), cg->vl);
}

/* The sink's value at C(m, n..n+VL-1) from the accumulators `acc`, by the
 * epilogue's key. */
static LLVMValueRef epilogue(CG *cg, const char *key, LLVMValueRef ctx, LLVMValueRef acc, LLVMValueRef m,
                             LLVMValueRef n, LLVMValueRef mask) {
  EpiCode w = {.p = key, .ctx = ctx, .acc = acc, .m = m, .n = n, .mask = mask};
  cg->lanes = cg->vl;
  LLVMValueRef v = epi_code(cg, &w);
  cg->lanes = 1;
  return v;
}

/* ---- micro-kernels ----
 *
 * The module's micro-kernel computes any tile, full or at an edge:
 *   void ukr(i64 kc, T *a, i64 rsa, i64 csa, T *bp, T *c, i64 ldc, T *out,
 *            i64 ldo, i64 mr, i64 nr, i64 flags, T *pf, i64 pfs, i64 pfn,
 *            i64 *roff, i64 *koff)
 * rows i < mr, columns j < nr of C + c's offset: starting from c (UK_LOADC)
 * or zero, stored at out. a = &A(m0, k0), bp a micro-panel of B~. Step
 * k < pfn also fetches NR elements at pf + k*pfs into L2 (the next
 * panel's rows of B when the macro-kernel packs a panel at a time).
 * With koff (not null) A is indexed: A(m0 + i, k0 + k) at a + roff[i] +
 * koff[k] (offsets in elements; rsa and csa unused), a convolution's
 * windows read straight from its (padded) image ("Implicit im2col").
 *
 * An epilogue's kernel runs on a tile's last k-block, whose sums the
 * micro-kernel left in a tile buffer of NR columns:
 *   void epi(T *tile, T *c, i64 ldc, i64 m0, i64 n0, i64 mr, i64 nr, i64 *ctx)
 * (m0, n0: the tile's place in C, where the epilogue reads its operands.)
 * Through memory, not registers: the tile buffer stays in L1, and the
 * micro-kernel is then one for every GEMM, prebuilt (kernels.h). */
enum { U_KC, U_A, U_RSA, U_CSA, U_BP, U_C, U_LDC, U_OUT, U_LDO, U_MR, U_NR, U_FLAGS, U_PF, U_PFS, U_PFN, U_ROFF, U_KOFF,
       U_COUNT };
enum { T_TILE, T_C, T_LDC, T_M0, T_N0, T_MR, T_NR, T_CTX, T_COUNT };

typedef struct Tile {
  LLVMValueRef v[GEMM_MR][4];
} Tile;

/* The lanes of an edge tile: rows i < mr, columns < nr; a missing row's
 * mask is all false, and its address row 0's. */
static void edge_masks(CG *cg, LLVMValueRef mr, LLVMValueRef nr, LLVMValueRef mask[GEMM_MR][4], LLVMValueRef *row) {
  LLVMValueRef lanes[4];
  for (int v = 0; v < cg->gemm_nv; v++) lanes[v] = lane_mask(cg, isub(cg, nr, ci(cg, v * cg->vl)));
  LLVMValueRef none = LLVMConstNull(LLVMTypeOf(lanes[0]));
  for (int i = 0; i < GEMM_MR; i++) {
    LLVMValueRef has = icmp(cg, LLVMIntSLT, ci(cg, i), mr);
    row[i] = LLVMBuildSelect(cg->b, has, ci(cg, i), ci(cg, 0), "");
    for (int v = 0; v < cg->gemm_nv; v++) mask[i][v] = LLVMBuildSelect(cg->b, has, lanes[v], none, "");
  }
}

static LLVMValueRef tile_ptr(CG *cg, LLVMValueRef c, LLVMValueRef ld, LLVMValueRef row, int v) {
  return gep(cg, c, iadd(cg, imul(cg, row, ld), ci(cg, v * cg->vl)));
}

/* The tile at c (edge: mr x nr of it, through masks). */
static void load_tile(CG *cg, LLVMValueRef c, LLVMValueRef ld, LLVMValueRef mr, LLVMValueRef nr, Tile *t) {
  LLVMValueRef mask[GEMM_MR][4] = {{0}}, row[GEMM_MR];
  if (mr) edge_masks(cg, mr, nr, mask, row);
  for (int i = 0; i < GEMM_MR; i++)
    for (int v = 0; v < cg->gemm_nv; v++) {
      LLVMValueRef p = tile_ptr(cg, c, ld, mr ? row[i] : ci(cg, i), v);
      t->v[i][v] = mr ? masked_load(cg, p, mask[i][v]) : load_al(cg, vec_type(cg), p, es(cg));
    }
}

static void store_tile(CG *cg, LLVMValueRef c, LLVMValueRef ld, LLVMValueRef mr, LLVMValueRef nr, const Tile *t) {
  LLVMValueRef mask[GEMM_MR][4] = {{0}}, row[GEMM_MR];
  if (mr) edge_masks(cg, mr, nr, mask, row);
  for (int i = 0; i < GEMM_MR; i++)
    for (int v = 0; v < cg->gemm_nv; v++) {
      LLVMValueRef p = tile_ptr(cg, c, ld, mr ? row[i] : ci(cg, i), v);
      if (mr)
        masked_store(cg, t->v[i][v], p, mask[i][v]);
      else
        store_al(cg, t->v[i][v], p, es(cg));
    }
}

/* The cache lines of a full tile at c, for writing: the loads of its
 * stores (and of an epilogue that reads what it writes, the SGD step)
 * run while the k loop does. */
static void prefetch_tile(CG *cg, LLVMValueRef c, LLVMValueRef ld) {
  for (int i = 0; i < GEMM_MR; i++)
    for (int j = 0; j < nr_of(cg); j += 64 / (int)es(cg))
      prefetch(cg, gep(cg, c, iadd(cg, imul(cg, ci(cg, i), ld), ci(cg, j))), true);
}

static void add_incoming(CG *cg, Tile *phi, const Tile *from, LLVMBasicBlockRef bb) {
  for (int i = 0; i < GEMM_MR; i++)
    for (int v = 0; v < cg->gemm_nv; v++) {
      LLVMValueRef x = from->v[i][v];
      LLVMAddIncoming(phi->v[i][v], &x, &bb, 1);
    }
}

static void tile_phis(CG *cg, Tile *t) {
  for (int i = 0; i < GEMM_MR; i++)
    for (int v = 0; v < cg->gemm_nv; v++) t->v[i][v] = LLVMBuildPhi(cg->b, vec_type(cg), "acc");
}

/* if (cond) *t = then's tile else other's: the two fill their blocks. */
typedef void TileFn(CG *cg, void *arg, Tile *t);

static void tile_if(CG *cg, LLVMValueRef cond, TileFn *then_fn, void *then_arg, TileFn *else_fn, void *else_arg,
                    Tile *t) {
  LLVMBasicBlockRef th, el, join;
  Tile a, b;
  branch(cg, cond, &th, &el, &join);
  then_fn(cg, then_arg, &a);
  LLVMBasicBlockRef th_end = LLVMGetInsertBlock(cg->b);
  go_to(cg, join, el);
  else_fn(cg, else_arg, &b);
  LLVMBasicBlockRef el_end = LLVMGetInsertBlock(cg->b);
  go_to(cg, join, join);
  tile_phis(cg, t);
  add_incoming(cg, t, &a, th_end);
  add_incoming(cg, t, &b, el_end);
}

static void zero_tile(CG *cg, void *arg, Tile *t) {
  (void)arg;
  for (int i = 0; i < GEMM_MR; i++)
    for (int v = 0; v < cg->gemm_nv; v++) t->v[i][v] = LLVMConstNull(vec_type(cg));
}

typedef struct TileAt {
  LLVMValueRef c, ld, mr, nr; /* mr NULL: a full tile */
} TileAt;

static void load_at(CG *cg, void *arg, Tile *t) {
  TileAt *at = arg;
  load_tile(cg, at->c, at->ld, at->mr, at->nr, t);
}

/* The k loop: acc += A(i, k) B~(k, :) for k < kc, the accumulators as
 * phis; rows i >= mr (when mr is given) read row 0. Only the first mru
 * rows and the first nvu vectors of each row: an edge tile's rows and an
 * edge panel's columns past them are never stored, and keep init. */
static void k_loop(CG *cg, LLVMValueRef kc, LLVMValueRef a, LLVMValueRef rsa, LLVMValueRef csa, LLVMValueRef bp,
                   LLVMValueRef mr, int mru, int nvu, const LLVMValueRef *pf, const LLVMValueRef *ix,
                   const Tile *init, Tile *out) {
  int nv = cg->gemm_nv, vl = cg->vl;
  LLVMTypeRef vt = vec_type(cg);
  LLVMValueRef arow[GEMM_MR];
  for (int i = 0; i < mru; i++) {
    LLVMValueRef r = mr ? LLVMBuildSelect(cg->b, icmp(cg, LLVMIntSLT, ci(cg, i), mr), ci(cg, i), ci(cg, 0), "") : ci(cg, i);
    arow[i] = gep(cg, a, ix ? load_al(cg, cg->i64, LLVMBuildInBoundsGEP2(cg->b, cg->i64, ix[0], &r, 1, ""), 8)
                            : imul(cg, r, rsa));
  }
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
  char name[24] = "k"; /* k_2rows: the loop of an edge tile's first 2 rows */
  if (mru < GEMM_MR) snprintf(name, sizeof name, "k_%drows", mru);
  LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, name);
  LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "k_done");
  LLVMBuildCondBr(cg->b, icmp(cg, LLVMIntSGT, kc, ci(cg, 0)), body, done);
  LLVMPositionBuilderAtEnd(cg->b, body);
  LLVMValueRef k = LLVMBuildPhi(cg->b, cg->i64, "k");
  Tile acc, next;
  tile_phis(cg, &acc);
  /* row k of pf[0] (rows pf[1] apart), for k < pf[2]: NR columns into L2 */
  LLVMBasicBlockRef pth, pel, pjoin;
  branch(cg, icmp(cg, LLVMIntSLT, k, pf[2]), &pth, &pel, &pjoin);
  LLVMValueRef prow = gep(cg, pf[0], imul(cg, k, pf[1]));
  for (int64_t j = 0; j < nr_of(cg); j += 64 / (int64_t)es(cg)) prefetch_to(cg, gep(cg, prow, ci(cg, j)), false, 2);
  go_to(cg, pjoin, pel);
  go_to(cg, pjoin, pjoin);
  LLVMValueRef bk = gep(cg, bp, imul(cg, k, ci(cg, nr_of(cg))));
  LLVMValueRef koff = ix ? load_al(cg, cg->i64, LLVMBuildInBoundsGEP2(cg->b, cg->i64, ix[1], &k, 1, ""), 8)
                         : imul(cg, k, csa);
  LLVMValueRef b[4];
  for (int v = 0; v < nvu; v++) b[v] = load_al(cg, vt, gep(cg, bk, ci(cg, v * vl)), es(cg));
  for (int i = 0; i < GEMM_MR; i++) {
    LLVMValueRef x = i < mru ? splat(cg, load_al(cg, cg->T, gep(cg, arow[i], koff), es(cg)), vl) : NULL;
    for (int v = 0; v < nv; v++)
      next.v[i][v] = i < mru && v < nvu ? cg_fmuladd(cg, x, b[v], acc.v[i][v]) : acc.v[i][v];
  }
  LLVMValueRef k1 = LLVMBuildNUWAdd(cg->b, k, ci(cg, 1), "");
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
  LLVMBuildCondBr(cg->b, icmp(cg, LLVMIntSLT, k1, kc), body, done);
  LLVMValueRef zero = ci(cg, 0);
  LLVMAddIncoming(k, &zero, &pre, 1);
  LLVMAddIncoming(k, &k1, &latch, 1);
  add_incoming(cg, &acc, init, pre);
  add_incoming(cg, &acc, &next, latch);
  LLVMPositionBuilderAtEnd(cg->b, done);
  tile_phis(cg, out);
  add_incoming(cg, out, init, pre);
  add_incoming(cg, out, &next, latch);
}

/* The k loop of a tile whose columns nr (an edge panel's) need only nvu
 * of its vectors, or more: one loop for each count, so that a narrow
 * edge panel (the last 4 of a convolution's 196 positions, the last 36
 * of a batch of 100) runs the FMAs of its own vectors only. */
typedef struct KLoop {
  LLVMValueRef kc, a, rsa, csa, bp, mr, nr, pf[3];
  const LLVMValueRef *ix; /* indexed A: {roff, koff}, or NULL */
  const Tile *init;
  int nvu, mru;
} KLoop;

static void k_loop_leaf(CG *cg, void *arg, Tile *t) {
  KLoop *kl = arg;
  k_loop(cg, kl->kc, kl->a, kl->rsa, kl->csa, kl->bp, kl->mr, GEMM_MR, kl->nvu, kl->pf, kl->ix, kl->init, t);
}

static void k_loop_of(CG *cg, void *arg, Tile *t) {
  KLoop *kl = arg;
  if (kl->nvu == cg->gemm_nv) {
    k_loop_leaf(cg, kl, t);
    return;
  }
  KLoop wider = *kl;
  wider.nvu++;
  LLVMValueRef fits = icmp(cg, LLVMIntSLE, kl->nr, ci(cg, (int64_t)kl->nvu * cg->vl));
  tile_if(cg, fits, k_loop_leaf, kl, k_loop_of, &wider, t);
}

/* The k loop of a whole-width tile of mr < MR rows (the last rows of A):
 * one loop for each count, with the FMAs of its own rows only. The
 * half-batch shard of a thread (grad_part, 32 rows) ends in a tile of 2
 * rows, which the loop of all MR rows computed at the cost of a full one. */
static void k_loop_rows_leaf(CG *cg, void *arg, Tile *t) {
  KLoop *kl = arg;
  k_loop(cg, kl->kc, kl->a, kl->rsa, kl->csa, kl->bp, NULL, kl->mru, cg->gemm_nv, kl->pf, kl->ix, kl->init, t);
}

static void k_loop_rows(CG *cg, void *arg, Tile *t) {
  KLoop *kl = arg;
  if (kl->mru == GEMM_MR - 1) {
    k_loop_rows_leaf(cg, kl, t);
    return;
  }
  KLoop taller = *kl;
  taller.mru++;
  LLVMValueRef fits = icmp(cg, LLVMIntSLE, kl->mr, ci(cg, kl->mru));
  tile_if(cg, fits, k_loop_rows_leaf, kl, k_loop_rows, &taller, t);
}

static void k_loop_full(CG *cg, void *arg, Tile *t) {
  KLoop *kl = arg;
  k_loop(cg, kl->kc, kl->a, kl->rsa, kl->csa, kl->bp, NULL, GEMM_MR, cg->gemm_nv, kl->pf, kl->ix, kl->init, t);
}

static void k_loop_edge(CG *cg, void *arg, Tile *t) {
  KLoop *kl = arg, rows = *kl;
  rows.mru = 1;
  tile_if(cg, icmp(cg, LLVMIntEQ, kl->nr, ci(cg, nr_of(cg))), k_loop_rows, &rows, k_loop_of, kl, t);
}

/* A tile's k loops: a full tile's first, the others only for edge tiles:
 * of fewer rows (whole width), or of fewer columns (an edge panel's). */
static void k_loops(CG *cg, void *arg, Tile *acc) {
  KLoop *kl = arg;
  LLVMValueRef full = LLVMBuildAnd(cg->b, icmp(cg, LLVMIntEQ, kl->mr, ci(cg, GEMM_MR)),
                                   icmp(cg, LLVMIntEQ, kl->nr, ci(cg, nr_of(cg))), "full");
  tile_if(cg, full, k_loop_full, kl, k_loop_edge, kl, acc);
}

static LLVMValueRef flag_set(CG *cg, LLVMValueRef flags, int bit) {
  return icmp(cg, LLVMIntNE, LLVMBuildAnd(cg->b, flags, ci(cg, bit), ""), ci(cg, 0));
}

static LLVMValueRef build_ukr(CG *cg) {
  KernelScope ks;
  LLVMValueRef fn = kernel_begin(cg, &ks, gemm_fixed_kernel_names[K_UKR], cg->gemm->ukr_ty);
  noalias_param(cg, fn, U_A, true);
  noalias_param(cg, fn, U_BP, true);
  noalias_param(cg, fn, U_ROFF, true);
  noalias_param(cg, fn, U_KOFF, true);
  LLVMValueRef P[U_COUNT];
  for (int i = 0; i < U_COUNT; i++) P[i] = LLVMGetParam(fn, (unsigned)i);
  LLVMValueRef full = LLVMBuildAnd(cg->b, icmp(cg, LLVMIntEQ, P[U_MR], ci(cg, GEMM_MR)),
                                   icmp(cg, LLVMIntEQ, P[U_NR], ci(cg, nr_of(cg))), "full");
  TileAt whole = {P[U_C], P[U_LDC], NULL, NULL}, edge = {P[U_C], P[U_LDC], P[U_MR], P[U_NR]};
  Tile init, acc;
  LLVMBasicBlockRef th, el, join;
  branch(cg, flag_set(cg, P[U_FLAGS], UK_LOADC), &th, &el, &join);
  Tile loaded, zero;
  tile_if(cg, full, load_at, &whole, load_at, &edge, &loaded);
  LLVMBasicBlockRef th_end = LLVMGetInsertBlock(cg->b);
  go_to(cg, join, el);
  zero_tile(cg, NULL, &zero);
  go_to(cg, join, join);
  tile_phis(cg, &init);
  add_incoming(cg, &init, &loaded, th_end);
  add_incoming(cg, &init, &zero, el);
  /* A strided or indexed (koff not null): the k loops of each */
  LLVMValueRef ix[2] = {P[U_ROFF], P[U_KOFF]};
  KLoop strided = {P[U_KC], P[U_A], P[U_RSA], P[U_CSA], P[U_BP], P[U_MR], P[U_NR], {P[U_PF], P[U_PFS], P[U_PFN]},
                   NULL, &init, 1};
  KLoop indexed = strided;
  indexed.ix = ix;
  LLVMValueRef is_ix = icmp(cg, LLVMIntNE, LLVMBuildPtrToInt(cg->b, P[U_KOFF], cg->i64, ""), ci(cg, 0));
  tile_if(cg, is_ix, k_loops, &indexed, k_loops, &strided, &acc);
  branch(cg, full, &th, &el, &join);
  store_tile(cg, P[U_OUT], P[U_LDO], NULL, NULL, &acc);
  go_to(cg, join, el);
  store_tile(cg, P[U_OUT], P[U_LDO], P[U_MR], P[U_NR], &acc);
  go_to(cg, join, join);
  kernel_end(cg, &ks);
  return fn;
}

/* The epilogue of a tile from its sums in a tile buffer, row by row: a
 * full tile's rows as whole vectors, an edge tile's through masks. */
static LLVMValueRef build_epi(CG *cg, const char *key, const char *name) {
  KernelScope ks;
  LLVMValueRef fn = kernel_begin(cg, &ks, name, cg->gemm->epi_ty);
  noalias_param(cg, fn, T_TILE, true);
  noalias_param(cg, fn, T_CTX, true);
  LLVMValueRef P[T_COUNT];
  for (int i = 0; i < T_COUNT; i++) P[i] = LLVMGetParam(fn, (unsigned)i);
  LLVMValueRef full = LLVMBuildAnd(cg->b, icmp(cg, LLVMIntEQ, P[T_MR], ci(cg, GEMM_MR)),
                                   icmp(cg, LLVMIntEQ, P[T_NR], ci(cg, nr_of(cg))), "full");
  LLVMBasicBlockRef th, el, join;
  branch(cg, full, &th, &el, &join);
  Loop rl;
  LLVMValueRef r = cg_loop_begin(cg, &rl, ci(cg, GEMM_MR));
  for (int v = 0; v < cg->gemm_nv; v++) {
    LLVMValueRef at = iadd(cg, imul(cg, r, ci(cg, nr_of(cg))), ci(cg, v * cg->vl));
    LLVMValueRef acc = load_al(cg, vec_type(cg), gep(cg, P[T_TILE], at), (unsigned)cg->vl * es(cg));
    LLVMSetValueName2(acc, "acc", 3);
    LLVMValueRef x = epilogue(cg, key, P[T_CTX], acc, iadd(cg, P[T_M0], r), iadd(cg, P[T_N0], ci(cg, v * cg->vl)), NULL);
    store_al(cg, x, tile_ptr(cg, P[T_C], P[T_LDC], r, v), es(cg));
  }
  cg_loop_end(cg, &rl);
  go_to(cg, join, el);
  Loop il, vl;
  LLVMValueRef i = cg_loop_begin(cg, &il, P[T_MR]);
  LLVMValueRef col = imul(cg, cg_loop_begin(cg, &vl, blocks_of(cg, P[T_NR], cg->vl)), ci(cg, cg->vl));
  LLVMValueRef mask = lane_mask(cg, isub(cg, P[T_NR], col));
  LLVMValueRef acc = masked_load(cg, gep(cg, P[T_TILE], iadd(cg, imul(cg, i, ci(cg, nr_of(cg))), col)), mask);
  LLVMValueRef x = epilogue(cg, key, P[T_CTX], acc, iadd(cg, P[T_M0], i), iadd(cg, P[T_N0], col), mask);
  masked_store(cg, x, gep(cg, P[T_C], iadd(cg, imul(cg, i, P[T_LDC]), col)), mask);
  cg_loop_end(cg, &vl);
  cg_loop_end(cg, &il);
  go_to(cg, join, join);
  kernel_end(cg, &ks);
  return fn;
}

/* ---- the macro-kernel ----
 *
 * void gemm(i64 M, i64 N, i64 K, T *A, i64 rsa, i64 csa, pack, void *bdesc,
 *           T *C, i64 ldc, epi, i64 *ctx, T *ws, i64 kb, i64 add, i64 *roff,
 *           i64 *koff, i64 trans, i64 i0, i64 i1, i64 j0, i64 j1)
 * pack(ws, bdesc, ...) makes B~ (nnc.gemm.pack_b); ws holds kb x
 * round_up(min(N, NC), NR) elements. A null pack: B is B~ already
 * (gemm_pack_all, N <= NC), k-block pc at B + pc*round_up(N, NR). epi is
 * an epilogue's kernel, or null. add != 0: C += A B (the first k-block
 * loads C too). koff not null: A is indexed, A(m, k) at A + roff[m] +
 * koff[k] (the micro-kernel's, "Implicit im2col").
 *
 * trans != 0: the product is stored transposed, C(m, n) at C + n*ldc + m
 * (one k-block, kb >= K, and add = 0): a layer's product x W^T computed
 * as W x^T, with W read in place as A and only the batch's x^T packed
 * (see "Transposed products"). Each tile's sums go to the tile buffer,
 * are transposed there, and the epilogue (or a copy) runs on the
 * transpose as an edge tile of up to NR rows and MR columns. */
enum {
  G_M, G_N, G_K, G_A, G_RSA, G_CSA, G_PACK, G_BDESC, G_C, G_LDC, G_EPI, G_CTX, G_WS, G_KB, G_ADD, G_ROFF, G_KOFF, G_TRANS,
  G_I0, G_I1, G_J0, G_J1, /* the part computed: rows [i0, i1), columns [j0, j1) */
  G_COUNT
};

/* The next row tile's kc columns of A (read in place: a transposed
 * product's matrix, in short runs of its rows that the hardware does not
 * fetch ahead), fetched while this tile's k loop runs: the first KC_T of
 * them only, when K runs in one block (the hardware fetches the rest of a
 * row ahead as the k loop sweeps it; all of it into L1 would evict x^T). */
static void prefetch_a(CG *cg, LLVMValueRef a, LLVMValueRef rsa, LLVMValueRef csa, LLVMValueRef kc, LLVMValueRef is_ix) {
  Loop il, jl;
  int64_t line = 64 / (int64_t)es(cg);
  /* a convolution's columns (rsa 1: a tile's rows share lines, a line a
     k) or its image (indexed) are not rows along k: the fetches below
     would not be its lines */
  LLVMValueRef no = LLVMBuildOr(cg->b, icmp(cg, LLVMIntEQ, rsa, ci(cg, 1)), is_ix, "");
  LLVMValueRef rows = LLVMBuildSelect(cg->b, no, ci(cg, 0), ci(cg, GEMM_MR), "");
  LLVMValueRef i = cg_loop_begin(cg, &il, rows);
  LLVMValueRef row = gep(cg, a, imul(cg, iadd(cg, i, ci(cg, GEMM_MR)), rsa));
  LLVMValueRef j = imul(cg, cg_loop_begin(cg, &jl, blocks_of(cg, imin(cg, kc, ci(cg, GEMM_KC_T)), line)), ci(cg, line));
  prefetch(cg, gep(cg, row, imul(cg, j, csa)), false);
  cg_loop_end(cg, &jl);
  cg_loop_end(cg, &il);
}

/* The tile buffer's sums (mr x nr, rows of NR) transposed into tt (nr x
 * mr, rows of NR). */
static void transpose_tile(CG *cg, LLVMValueRef tile, LLVMValueRef tt, LLVMValueRef mr, LLVMValueRef nr) {
  int vl = cg->vl;
  if (vl >= GEMM_MR) {
    /* the buffer's columns below nr, VL at a time through register
       transposes (rows past MR undefined): tt's columns past mr and rows
       past nr hold what the epilogue never reads */
    LLVMTypeRef vt = vec_type(cg);
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "tt_done");
    for (int64_t r0 = 0; r0 < nr_of(cg); r0 += vl) {
      if (r0 > 0) { /* an edge panel's tile: only the vectors it has */
        LLVMBasicBlockRef more = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "tt_more");
        LLVMBuildCondBr(cg->b, icmp(cg, LLVMIntSLT, ci(cg, r0), nr), more, done);
        LLVMPositionBuilderAtEnd(cg->b, more);
      }
      LLVMValueRef v[64];
      for (int i = 0; i < vl; i++)
        v[i] = i < GEMM_MR ? load_al(cg, vt, gep(cg, tile, ci(cg, i * nr_of(cg) + r0)), es(cg)) : LLVMGetUndef(vt);
      transpose_block(cg, v);
      for (int i = 0; i < vl; i++) store_al(cg, v[i], gep(cg, tt, ci(cg, (r0 + i) * nr_of(cg))), es(cg));
    }
    go_to(cg, done, done);
    return;
  }
  Loop il, rl;
  LLVMValueRef i = cg_loop_begin(cg, &il, mr);
  LLVMValueRef r = cg_loop_begin(cg, &rl, nr);
  LLVMValueRef x = load_al(cg, cg->T, gep(cg, tile, iadd(cg, imul(cg, i, ci(cg, nr_of(cg))), r)), es(cg));
  store_al(cg, x, gep(cg, tt, iadd(cg, imul(cg, r, ci(cg, nr_of(cg))), i)), es(cg));
  cg_loop_end(cg, &rl);
  cg_loop_end(cg, &il);
}

/* A transposed product's tile (rows m0.. of C', columns n0..): the
 * micro-kernel into the tile buffer, then, NR of its rows at a time (all
 * of them unless NR < MR: f64 in 128-bit vectors), their transpose into
 * tt and the epilogue from tt, or a copy, into C at C + n0*ldc + m0. On
 * a k-block before the last, the micro-kernel's partial sums in the
 * scratch, as without trans. */
static void call_tile_trans(CG *cg, LLVMValueRef *P, LLVMValueRef tile, LLVMValueRef tt, LLVMValueRef *u,
                            LLVMValueRef m0, LLVMValueRef n0) {
  GemmKernels *gk = cg->gemm;
  int64_t nr = nr_of(cg);
  LLVMBasicBlockRef th, el, join, last, more, end;
  branch(cg, flag_set(cg, u[U_FLAGS], UK_LAST), &last, &more, &end);
  LLVMValueRef t[U_COUNT];
  memcpy(t, u, sizeof t);
  t[U_OUT] = tile, t[U_LDO] = ci(cg, nr);
  LLVMBuildCall2(cg->b, gk->ukr_ty, gk->ukr, t, U_COUNT, "");
  Loop hl;
  LLVMValueRef c0 = imul(cg, cg_loop_begin(cg, &hl, blocks_of(cg, u[U_MR], nr)), ci(cg, nr));
  LLVMValueRef w = imin(cg, ci(cg, nr), isub(cg, u[U_MR], c0));
  transpose_tile(cg, gep(cg, tile, imul(cg, c0, ci(cg, nr))), tt, w, u[U_NR]);
  LLVMValueRef m = iadd(cg, m0, c0);
  LLVMValueRef c = gep(cg, P[G_C], iadd(cg, imul(cg, n0, P[G_LDC]), m));
  LLVMValueRef has_epi = icmp(cg, LLVMIntNE, LLVMBuildPtrToInt(cg->b, P[G_EPI], cg->i64, ""), ci(cg, 0));
  branch(cg, has_epi, &th, &el, &join);
  LLVMValueRef x[T_COUNT] = {tt, c, P[G_LDC], n0, m, u[U_NR], w, P[G_CTX]};
  LLVMBuildCall2(cg->b, gk->epi_ty, P[G_EPI], x, T_COUNT, "");
  go_to(cg, join, el);
  Loop rl, vl;
  LLVMValueRef r = cg_loop_begin(cg, &rl, u[U_NR]);
  LLVMValueRef col = imul(cg, cg_loop_begin(cg, &vl, blocks_of(cg, w, cg->vl)), ci(cg, cg->vl));
  LLVMValueRef mask = lane_mask(cg, isub(cg, w, col));
  LLVMValueRef v = masked_load(cg, gep(cg, tt, iadd(cg, imul(cg, r, ci(cg, nr)), col)), mask);
  masked_store(cg, v, gep(cg, c, iadd(cg, imul(cg, r, P[G_LDC]), col)), mask);
  cg_loop_end(cg, &vl);
  cg_loop_end(cg, &rl);
  go_to(cg, join, join);
  cg_loop_end(cg, &hl);
  go_to(cg, end, more);
  LLVMBuildCall2(cg->b, gk->ukr_ty, gk->ukr, u, U_COUNT, "");
  go_to(cg, end, end);
}

/* One tile: the micro-kernel into C, or on the last k-block of an
 * epilogue into the tile buffer, then the epilogue from there into C. */
static void call_tile(CG *cg, LLVMValueRef *P, LLVMValueRef tile, LLVMValueRef *u, LLVMValueRef m0, LLVMValueRef n0) {
  GemmKernels *gk = cg->gemm;
  LLVMValueRef has_epi = icmp(cg, LLVMIntNE, LLVMBuildPtrToInt(cg->b, P[G_EPI], cg->i64, ""), ci(cg, 0));
  LLVMBasicBlockRef th, el, join;
  branch(cg, LLVMBuildAnd(cg->b, has_epi, flag_set(cg, u[U_FLAGS], UK_LAST), ""), &th, &el, &join);
  /* the tile of C, which the epilogue writes (and the SGD step reads),
     is fetched while the k loop runs (past an edge tile it fetches lines
     the tile does not write: a prefetch never faults) */
  prefetch_tile(cg, u[U_C], u[U_LDC]);
  LLVMValueRef t[U_COUNT];
  memcpy(t, u, sizeof t);
  t[U_OUT] = tile, t[U_LDO] = ci(cg, nr_of(cg));
  LLVMBuildCall2(cg->b, gk->ukr_ty, gk->ukr, t, U_COUNT, "");
  LLVMValueRef x[T_COUNT] = {tile, u[U_C], u[U_LDC], m0, n0, u[U_MR], u[U_NR], P[G_CTX]};
  LLVMBuildCall2(cg->b, gk->epi_ty, P[G_EPI], x, T_COUNT, "");
  go_to(cg, join, el);
  LLVMBuildCall2(cg->b, gk->ukr_ty, gk->ukr, u, U_COUNT, "");
  go_to(cg, join, join);
}

static LLVMValueRef build_gemm(CG *cg) {
  GemmKernels *gk = cg->gemm;
  KernelScope ks;
  LLVMValueRef fn = kernel_begin(cg, &ks, gemm_fixed_kernel_names[K_GEMM], gk->gemm_ty);
  LLVMValueRef P[G_COUNT];
  for (int i = 0; i < G_COUNT; i++) P[i] = LLVMGetParam(fn, (unsigned)i);
  int64_t nr = nr_of(cg), mc_max = mc_of(cg);
  LLVMValueRef N = P[G_N], K = P[G_K], kb = P[G_KB];
  LLVMValueRef tile = LLVMBuildAlloca(cg->alloc, LLVMArrayType2(cg->T, (uint64_t)(GEMM_MR * nr)), "tile");
  LLVMSetAlignment(tile, 64);
  LLVMValueRef tt = LLVMBuildAlloca(cg->alloc, LLVMArrayType2(cg->T, (uint64_t)(nr * nr)), "tile_t");
  LLVMSetAlignment(tt, 64);
  LLVMValueRef trans = icmp(cg, LLVMIntNE, P[G_TRANS], ci(cg, 0));
  /* after B~: a transposed product's partial sums, M x ncp */
  LLVMValueRef ncp = imul(cg, blocks_of(cg, imin(cg, N, ci(cg, GEMM_NC)), nr), ci(cg, nr));
  LLVMValueRef S = gep(cg, P[G_WS], imul(cg, kb, ncp));
  Loop jl, kl, il, rl, ml;
  LLVMValueRef j0 = P[G_J0], j1 = P[G_J1];
  LLVMValueRef jc = iadd(cg, j0, imul(cg, cg_loop_begin(cg, &jl, blocks_of(cg, isub(cg, j1, j0), GEMM_NC)), ci(cg, GEMM_NC)));
  LLVMValueRef nc = imin(cg, ci(cg, GEMM_NC), isub(cg, j1, jc));
  /* at least one k-block: K = 0 (no rows) still computes the epilogue */
  LLVMValueRef nkb = LLVMBuildSDiv(cg->b, iadd(cg, K, isub(cg, kb, ci(cg, 1))), kb, "");
  nkb = LLVMBuildSelect(cg->b, icmp(cg, LLVMIntSGT, nkb, ci(cg, 0)), nkb, ci(cg, 1), "");
  LLVMValueRef pc = imul(cg, cg_loop_begin(cg, &kl, nkb), kb);
  LLVMValueRef kc = imin(cg, kb, isub(cg, K, pc));
  LLVMValueRef bsrc = load_al(cg, cg->ptr, P[G_BDESC], 8);
  LLVMValueRef brs = load_al(cg, cg->i64, gep_i64(cg, P[G_BDESC], 1), 8), bcs = load_al(cg, cg->i64, gep_i64(cg, P[G_BDESC], 2), 8);
  LLVMValueRef loadc = LLVMBuildOr(cg->b, icmp(cg, LLVMIntSGT, pc, ci(cg, 0)), icmp(cg, LLVMIntNE, P[G_ADD], ci(cg, 0)), "");
  LLVMValueRef flags = iadd(cg, LLVMBuildSelect(cg->b, loadc, ci(cg, UK_LOADC), ci(cg, 0), ""),
                            LLVMBuildSelect(cg->b, icmp(cg, LLVMIntSGE, iadd(cg, pc, kc), K), ci(cg, UK_LAST), ci(cg, 0), ""));
  /* A transposed product's packed block (x^T, one panel) that L2 holds
   * whole: one row tile at a time runs across all of it (C row by row,
   * A's tile in L1). Else MC rows run down each micro-panel: a weight
   * gradient's panel (64 x NR at a batch of 64) stays in L1 for all its
   * row tiles instead of coming back from L2 for each. */
  LLVMValueRef small =
      LLVMBuildAnd(cg->b, trans, icmp(cg, LLVMIntSLE, imul(cg, kc, nc), ci(cg, GEMM_SMALL_BYTES / es(cg))), "small");
  LLVMValueRef mcb = LLVMBuildSelect(cg->b, small, ci(cg, GEMM_MR), ci(cg, mc_max), "");
  LLVMValueRef i0 = P[G_I0], i1 = P[G_I1];
  LLVMValueRef nib = LLVMBuildSDiv(cg->b, iadd(cg, isub(cg, i1, i0), isub(cg, mcb, ci(cg, 1))), mcb, "");
  /* A block larger than L2 that one block of rows runs over once (the
   * input gradient's weight: 2 MiB a k-block at 2048 x 2048): each
   * micro-panel is packed just before its row tiles, into the first
   * panel's place, so that they read it from L1 and L2, not back from
   * L3. */
  LLVMValueRef packed = icmp(cg, LLVMIntEQ, LLVMBuildPtrToInt(cg->b, P[G_PACK], cg->i64, ""), ci(cg, 0));
  LLVMValueRef by_panel = LLVMBuildAnd(cg->b, LLVMBuildNot(cg->b, LLVMBuildOr(cg->b, small, packed, ""), ""),
                                       icmp(cg, LLVMIntEQ, nib, ci(cg, 1)), "by_panel");
  LLVMBasicBlockRef th, el, join;
  branch(cg, LLVMBuildOr(cg->b, by_panel, packed, ""), &th, &el, &join);
  go_to(cg, join, el);
  LLVMValueRef pargs[P_COUNT] = {P[G_WS], P[G_BDESC], pc, kc, jc, nc};
  LLVMBuildCall2(cg->b, gk->pack_ty, P[G_PACK], pargs, P_COUNT, "");
  go_to(cg, join, join);
  LLVMValueRef ic = iadd(cg, i0, imul(cg, cg_loop_begin(cg, &il, nib), mcb));
  LLVMValueRef mc = imin(cg, mcb, isub(cg, i1, ic));
  LLVMValueRef jr = imul(cg, cg_loop_begin(cg, &rl, blocks_of(cg, nc, nr)), ci(cg, nr));
  LLVMValueRef nrv = imin(cg, ci(cg, nr), isub(cg, nc, jr));
  LLVMValueRef col = iadd(cg, jc, jr);
  branch(cg, by_panel, &th, &el, &join);
  LLVMValueRef qargs[P_COUNT] = {P[G_WS], P[G_BDESC], pc, kc, col, nrv};
  LLVMBuildCall2(cg->b, gk->pack_ty, P[G_PACK], qargs, P_COUNT, "");
  go_to(cg, join, el);
  go_to(cg, join, join);
  LLVMValueRef bp = sel(cg, by_panel, P[G_WS], gep(cg, P[G_WS], imul(cg, jr, kc)));
  bp = sel(cg, packed, gep(cg, bsrc, iadd(cg, imul(cg, pc, ncp), imul(cg, col, kc))), bp);
  LLVMValueRef ntile = blocks_of(cg, mc, GEMM_MR);
  LLVMValueRef ti = cg_loop_begin(cg, &ml, ntile);
  LLVMValueRef ir = iadd(cg, ic, imul(cg, ti, ci(cg, GEMM_MR)));
  /* the next panel: the next NR columns, or the next k-block's first */
  LLVMValueRef last_panel = icmp(cg, LLVMIntSGE, iadd(cg, jr, ci(cg, nr)), nc);
  LLVMValueRef next_k = sel(cg, last_panel, iadd(cg, pc, kc), pc), next_col = sel(cg, last_panel, jc, iadd(cg, col, ci(cg, nr)));
  /* row tile ti of ntile fetches its share of the next panel's rows of
     B, a row in each of its first k steps (B's rows contiguous) */
  LLVMValueRef step = LLVMBuildSDiv(cg->b, iadd(cg, kc, isub(cg, ntile, ci(cg, 1))), ntile, "");
  LLVMValueRef r0 = imul(cg, ti, step);
  LLVMValueRef pf = gep(cg, bsrc, iadd(cg, imul(cg, iadd(cg, next_k, r0), brs), next_col));
  LLVMValueRef pfn = sel(cg, LLVMBuildAnd(cg->b, by_panel, icmp(cg, LLVMIntEQ, bcs, ci(cg, 1)), ""),
                         imin(cg, step, isub(cg, kc, r0)), ci(cg, 0));
  LLVMValueRef mrv = imin(cg, ci(cg, GEMM_MR), isub(cg, iadd(cg, ic, mc), ir));
  LLVMValueRef is_ix = icmp(cg, LLVMIntNE, LLVMBuildPtrToInt(cg->b, P[G_KOFF], cg->i64, ""), ci(cg, 0));
  LLVMValueRef a = sel(cg, is_ix, P[G_A], gep(cg, P[G_A], iadd(cg, imul(cg, ir, P[G_RSA]), imul(cg, pc, P[G_CSA]))));
  LLVMValueRef none = LLVMConstNull(cg->ptr);
  LLVMValueRef roff = sel(cg, is_ix, LLVMBuildGEP2(cg->b, cg->i64, P[G_ROFF], &ir, 1, ""), none);
  LLVMValueRef koff = sel(cg, is_ix, LLVMBuildGEP2(cg->b, cg->i64, P[G_KOFF], &pc, 1, ""), none);
  /* a transposed product's partial sums: C'(m, n) at S + m*ncp + (n - jc) */
  LLVMValueRef ldc = LLVMBuildSelect(cg->b, trans, ncp, P[G_LDC], "");
  LLVMValueRef c = LLVMBuildSelect(cg->b, trans, gep(cg, S, iadd(cg, imul(cg, ir, ncp), jr)),
                                   gep(cg, P[G_C], iadd(cg, imul(cg, ir, P[G_LDC]), col)), "");
  LLVMValueRef u[U_COUNT] = {kc, a, P[G_RSA], P[G_CSA], bp, c, ldc, c, ldc, mrv, nrv, flags, pf, brs, pfn, roff, koff};
  branch(cg, trans, &th, &el, &join);
  prefetch_a(cg, a, P[G_RSA], P[G_CSA], kc, is_ix);
  call_tile_trans(cg, P, tile, tt, u, ir, col);
  go_to(cg, join, el);
  call_tile(cg, P, tile, u, ir, col);
  go_to(cg, join, join);
  cg_loop_end(cg, &ml);
  cg_loop_end(cg, &rl);
  cg_loop_end(cg, &il);
  cg_loop_end(cg, &kl);
  cg_loop_end(cg, &jl);
  kernel_end(cg, &ks);
  return fn;
}

static LLVMTypeRef window_type(const GemmKernels *gk, int k) {
  if (k == GEMM_OPT_ADAM) return gk->adam_ty;
  return k >= GEMM_FIXED_EPI ? gk->epi_ty : k == GEMM_CH_AFFINE ? gk->aff_ty : k >= GEMM_CH_MOMENTS ? gk->ch_ty : k >= GEMM_MAX_POOL2 ? gk->pool_ty : gk->win_ty;
}

static LLVMValueRef build_epi(CG *cg, const char *key, const char *name);

/* Window kernel k (GEMM_IM2COL and after), its body window.c's, or a
 * fixed epilogue's. */
static LLVMValueRef build_window(CG *cg, int k) {
  if (k >= GEMM_FIXED_EPI) return build_epi(cg, fixed_epi_keys[k - GEMM_FIXED_EPI], gemm_fixed_kernel_names[k]);
  KernelScope ks;
  LLVMValueRef fn = kernel_begin(cg, &ks, gemm_fixed_kernel_names[k], window_type(cg->gemm, k));
  if (k < GEMM_MAX_POOL2) {
    noalias_param(cg, fn, 0, true);
    noalias_param(cg, fn, 1, false);
  }
  if (k == GEMM_OPT_ADAM) {
    for (unsigned i = AD_P; i <= AD_V; i++) noalias_param(cg, fn, i, i == AD_G);
    adam_kernel_body(cg, fn);
  } else if (k == GEMM_CH_AFFINE)
    channel_affine_body(cg, fn);
  else if (k >= GEMM_CH_MOMENTS)
    channel_kernel_body(cg, k, fn);
  else
    window_kernel_body(cg, k, fn);
  kernel_end(cg, &ks);
  return fn;
}

/* Does the graph have convolutions, max pooling or per-channel sums or
 * maps (the window and channel kernels a module exports)? Without a graph
 * (a prebuilt set): yes. */
static bool has_window(const Graph *g) {
  if (!g || graph_has_windows(g)) return true;
  for (int i = 0; i < g->len; i++)
    if (channel_kernel_node(g->nodes[i])) return true;
  return false;
}

static GemmKernels *kernels(CG *cg);

LLVMValueRef gemm_fixed_kernel(CG *cg, int k, LLVMTypeRef *ty) {
  GemmKernels *gk = kernels(cg);
  LLVMValueRef *fn = &gk->win[k - GEMM_IM2COL];
  if (!*fn) *fn = build_window(cg, k); /* a module's own, made at its first call */
  *ty = window_type(gk, k);
  return *fn;
}

static GemmKernels *kernels(CG *cg) {
  if (cg->gemm) return cg->gemm;
  GemmKernels *gk = cg->gemm = nnc_xcalloc(1, sizeof *gk);
  LLVMTypeRef I = cg->i64, p = cg->ptr, V = LLVMVoidTypeInContext(cg->ctx);
  LLVMTypeRef u[U_COUNT] = {I, p, I, I, p, p, I, p, I, I, I, I, p, I, I, p, p};
  LLVMTypeRef t[T_COUNT] = {p, p, I, I, I, I, I, p};
  LLVMTypeRef g[G_COUNT] = {I, I, I, p, I, I, p, p, p, I, p, p, p, I, I, p, p, I, I, I, I, I};
  LLVMTypeRef k[P_COUNT] = {p, p, I, I, I, I};
  gk->ukr_ty = LLVMFunctionType(V, u, U_COUNT, 0);
  gk->epi_ty = LLVMFunctionType(V, t, T_COUNT, 0);
  gk->gemm_ty = LLVMFunctionType(V, g, G_COUNT, 0);
  gk->pack_ty = LLVMFunctionType(V, k, P_COUNT, 0);
  LLVMTypeRef w[WINDOW_KERNEL_PARAMS] = {p, p};
  for (int i = 2; i < WINDOW_KERNEL_PARAMS; i++) w[i] = I;
  gk->win_ty = LLVMFunctionType(V, w, WINDOW_KERNEL_PARAMS, 0);
  LLVMTypeRef pl[POOL_KERNEL_PARAMS] = {p, p, p};
  for (int i = 3; i < POOL_KERNEL_PARAMS; i++) pl[i] = I;
  gk->pool_ty = LLVMFunctionType(V, pl, POOL_KERNEL_PARAMS, 0);
  LLVMTypeRef ch[CH_KERNEL_PARAMS] = {p, p, p};
  for (int i = 3; i < CH_KERNEL_PARAMS; i++) ch[i] = I;
  gk->ch_ty = LLVMFunctionType(V, ch, CH_KERNEL_PARAMS, 0);
  LLVMTypeRef af[AF_COUNT];
  for (int i = 0; i < AF_COUNT; i++) af[i] = I;
  af[AF_X] = af[AF_Y] = af[AF_OUT] = af[AF_A] = af[AF_B] = af[AF_M] = af[AF_K] = p;
  gk->aff_ty = LLVMFunctionType(V, af, AF_COUNT, 0);
  LLVMTypeRef ad[AD_COUNT];
  for (int i = 0; i < AD_COUNT; i++) ad[i] = i <= AD_V || i == AD_G2 ? p : i == AD_N || i == AD_NT ? I : cg->T;
  gk->adam_ty = LLVMFunctionType(V, ad, AD_COUNT, 0);
  if (cg->gemm_kernels == GEMM_KERNELS_IMPORT || cg->gemm_kernels == GEMM_KERNELS_PREBUILT) { /* CgTarget */
    gk->pack = LLVMAddFunction(cg->mod, gemm_fixed_kernel_names[K_PACK], gk->pack_ty);
    gk->ukr = LLVMAddFunction(cg->mod, gemm_fixed_kernel_names[K_UKR], gk->ukr_ty);
    gk->gemm = LLVMAddFunction(cg->mod, gemm_fixed_kernel_names[K_GEMM], gk->gemm_ty);
    for (int wk = GEMM_IM2COL; wk < GEMM_FIXED_KERNELS; wk++)
      gk->win[wk - GEMM_IM2COL] = LLVMAddFunction(cg->mod, gemm_fixed_kernel_names[wk], window_type(gk, wk));
    return gk;
  }
  gk->pack = build_pack(cg, gk->pack_ty);
  gk->ukr = build_ukr(cg);
  gk->gemm = build_gemm(cg);
  if (cg->gemm_kernels == GEMM_KERNELS_EXPORT) {
    LLVMSetLinkage(gk->pack, LLVMExternalLinkage);
    LLVMSetLinkage(gk->ukr, LLVMExternalLinkage);
    LLVMSetLinkage(gk->gemm, LLVMExternalLinkage);
    /* the window kernels too when a module that imports them may call
       them; a module's own are made at their first call */
    for (int wk = GEMM_IM2COL; wk < GEMM_FIXED_KERNELS; wk++) {
      /* the epilogues and Adam's step: a prebuilt set's only */
      if (wk < GEMM_FIXED_EPI && wk != GEMM_OPT_ADAM ? !has_window(cg->g) : cg->g != NULL) continue;
      LLVMValueRef fn = gk->win[wk - GEMM_IM2COL] = build_window(cg, wk);
      LLVMSetLinkage(fn, LLVMExternalLinkage);
    }
  }
  return gk;
}

/* The kernels that do not depend on the model, alone in a module of ctx,
 * external: what a prebuilt kernel set holds (kernels.h). */
LLVMModuleRef gemm_kernels_module(LLVMContextRef ctx, bool f64, int vector_bits) {
  Layout L = {.elem_size = f64 ? 8 : 4};
  CG cg = {.ctx = ctx, .L = &L, .gemm_kernels = GEMM_KERNELS_EXPORT};
  cg.mod = LLVMModuleCreateWithNameInContext("nnc.gemm.kernels", ctx);
  cg.T = f64 ? LLVMDoubleTypeInContext(ctx) : LLVMFloatTypeInContext(ctx);
  cg.i64 = LLVMInt64TypeInContext(ctx);
  cg.i1 = LLVMInt1TypeInContext(ctx);
  cg.ptr = LLVMPointerTypeInContext(ctx, 0);
  cg.vl = vector_bits / (8 * L.elem_size);
  cg.gemm_nv = gemm_vectors(vector_bits);
  cg.vec_loops = true;
  kernels(&cg);
  gemm_free(&cg);
  return cg.mod;
}

/* The kernels of gm's epilogue, made at its first use; *slots: the context
 * slots its operands take. */
static const EpiKernels *epi_kernels(CG *cg, const Gemm *gm, int *slots) {
  GemmKernels *gk = kernels(cg);
  EpiWalk w = {.pass = EPI_KEY};
  epi_walk(cg, &w, gm, gm->sink);
  *slots = w.slot;
  for (int i = 0; i < gk->nepi; i++)
    if (!strcmp(gk->epi[i].key, w.key.data)) {
      sb_free(&w.key);
      return &gk->epi[i];
    }
  char name[64];
  gk->epi = nnc_xrealloc(gk->epi, sizeof(EpiKernels) * (size_t)(gk->nepi + 1));
  EpiKernels *ek = &gk->epi[gk->nepi];
  ek->key = nnc_xstrdup(w.key.data);
  ek->epi = NULL;
  for (int k = GEMM_FIXED_EPI; k < GEMM_FIXED_KERNELS && cg->gemm_kernels == GEMM_KERNELS_PREBUILT; k++)
    if (!strcmp(ek->key, fixed_epi_keys[k - GEMM_FIXED_EPI])) ek->epi = gk->win[k - GEMM_IM2COL]; /* declared */
  snprintf(name, sizeof name, "nnc.gemm.epi_e%d", gk->nown);
  if (!ek->epi) ek->epi = build_epi(cg, ek->key, name), gk->nown++;
  sb_free(&w.key);
  gk->nepi++;
  return ek;
}

void gemm_free(CG *cg) {
  GemmKernels *gk = cg->gemm;
  if (!gk) return;
  for (int i = 0; i < gk->nepi; i++) free(gk->epi[i].key);
  free(gk->epi);
  free(gk);
  cg->gemm = NULL;
}

/* ---- calls ---- */

/* Where a node's memory starts: the object (a parameter of the function,
 * the workspace, a stack slot) and a byte offset in it. */
static LLVMValueRef mem_object(const CG *cg, const Node *n, int64_t *byte_off) {
  const Store *s = &cg->st[n->id];
  LLVMValueRef base = s->base;
  *byte_off = s->off * cg->L->elem_size;
  if (LLVMIsAGetElementPtrInst(base) && LLVMGetOperand(base, 0) == cg->ws && LLVMIsAConstantInt(LLVMGetOperand(base, 1)))
    *byte_off += LLVMConstIntGetSExtValue(LLVMGetOperand(base, 1)), base = cg->ws;
  return base;
}

static bool may_overlap(const CG *cg, const Node *a, const Node *b) {
  int64_t oa, ob;
  LLVMValueRef x = mem_object(cg, a, &oa), y = mem_object(cg, b, &ob);
  if (x != y) return false;
  int64_t rows = cg->max_batch, ea = shape_numel(&a->shape) * cg->L->elem_size,
          eb = shape_numel(&b->shape) * cg->L->elem_size;
  if (a->batched) ea = cg->st[a->id].row_stride * cg->L->elem_size * rows;
  if (b->batched) eb = cg->st[b->id].row_stride * cg->L->elem_size * rows;
  return oa < ob + eb && ob < oa + ea;
}

/* Does the epilogue read memory its sink writes? */
static bool epi_reads_sink(const CG *cg, const Gemm *gm, const Node *x) {
  if (x == gm->g) return false;
  if (x != gm->sink && cg->st[x->id].kind != ST_INLINE) {
    x = cg_stored(cg, x);
    return cg->st[x->id].kind == ST_MEM && may_overlap(cg, x, gm->sink);
  }
  for (int k = 0; k < op_info[x->op].nin; k++)
    if (epi_reads_sink(cg, gm, x->in[k])) return true;
  return false;
}

static LLVMValueRef slot_array(CG *cg, int slots, const char *name) {
  return LLVMBuildAlloca(cg->alloc, LLVMArrayType2(cg->i64, (uint64_t)(slots > 0 ? slots : 1)), name);
}

/* The k-block of gm's calls, stored transposed or not. */
static LLVMValueRef k_block(CG *cg, const Gemm *gm, bool trans) {
  if (trans) { /* K is the matrix's: a constant */
    int64_t k = LLVMConstIntGetSExtValue(gm->K);
    if ((gm->packed || gm->whole_k) && k >= 1) return ci(cg, k); /* B~ whole (L2), no partial sums */
    return ci(cg, k < 1 ? 1 : k < GEMM_KC_T ? k : GEMM_KC_T);
  }
  if (gm->sink && epi_reads_sink(cg, gm, gm->sink)) {
    /* one k-block: its scratch is sized for that only when K is the rows */
    if (gm->K != cg->n && !(LLVMIsAConstantInt(gm->K) && LLVMConstIntGetSExtValue(gm->K) <= kc_of(cg)))
      nnc_die("codegen: a GEMM epilogue reads the memory it writes");
    return LLVMBuildSelect(cg->b, icmp(cg, LLVMIntSGT, gm->K, ci(cg, 0)), gm->K, ci(cg, 1), "");
  }
  return ci(cg, kc_of(cg));
}

/* Which of the product's dimensions its threads split: not the batch's
 * (a row count the function is called with, or a sum over the batch: a
 * weight's gradient, rows of the weight). So each thread keeps the same
 * features of every layer: its columns of the activations, its rows of
 * each weight and of its gradient, and those cross between the cores
 * only where a product needs all of them. */
static int64_t fork_split(const Gemm *gm) {
  if (!LLVMIsAConstantInt(gm->M)) return FORK_COLUMNS;
  if (!LLVMIsAConstantInt(gm->N)) return FORK_ROWS;
  if (!LLVMIsAConstantInt(gm->K)) return FORK_ROWS;
  return FORK_EITHER;
}

void gemm_fork_call(CG *cg, const char *symbol, LLVMValueRef kernel, const LLVMValueRef *args, int nargs,
                    const LLVMValueRef *extra, int nextra) {
  LLVMTypeRef I = cg->i64, params[8] = {cg->ptr, cg->ptr};
  for (int i = 0; i < nextra; i++) params[2 + i] = LLVMTypeOf(extra[i]);
  LLVMTypeRef ty = LLVMFunctionType(LLVMVoidTypeInContext(cg->ctx), params, (unsigned)(2 + nextra), 0);
  LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, symbol);
  if (!fn) fn = LLVMAddFunction(cg->mod, symbol, ty);
  LLVMValueRef a = slot_array(cg, nargs, symbol);
  for (int i = 0; i < nargs; i++) {
    LLVMValueRef v = args[i];
    LLVMTypeKind k = LLVMGetTypeKind(LLVMTypeOf(v));
    if (k == LLVMPointerTypeKind)
      v = LLVMBuildPtrToInt(cg->b, v, I, "");
    else if (k == LLVMFloatTypeKind)
      v = LLVMBuildZExt(cg->b, LLVMBuildBitCast(cg->b, v, LLVMInt32TypeInContext(cg->ctx), ""), I, "");
    else if (k == LLVMDoubleTypeKind)
      v = LLVMBuildBitCast(cg->b, v, I, "");
    LLVMBuildStore(cg->b, v, gep_i64(cg, a, i));
  }
  LLVMValueRef x[8] = {kernel, a};
  for (int i = 0; i < nextra; i++) x[2 + i] = extra[i];
  LLVMBuildCall2(cg->b, ty, fn, x, (unsigned)(2 + nextra), "");
}

void gemm_emit(CG *cg, const Gemm *gm) {
  GemmKernels *gk = kernels(cg);
  int slots = 0;
  const EpiKernels *ek = gm->sink ? epi_kernels(cg, gm, &slots) : NULL;
  /* the epilogue's operands */
  EpiWalk w = {.pass = EPI_ARGS, .ctx = slot_array(cg, slots, "epi")};
  if (gm->sink) epi_walk(cg, &w, gm, gm->sink);
  LLVMValueRef desc = slot_array(cg, 3, "bdesc");
  EpiWalk d = {.pass = EPI_ARGS, .ctx = desc};
  slot_store(cg, &d, gm->B.ptr);
  slot_store(cg, &d, gm->B.rs);
  slot_store(cg, &d, gm->B.cs);
  LLVMValueRef kb = k_block(cg, gm, gm->trans), trans = ci(cg, gm->trans);
  if (gm->trans_if) {
    kb = sel(cg, gm->trans_if, kb, k_block(cg, gm, false));
    trans = LLVMBuildZExt(cg->b, gm->trans_if, cg->i64, "trans");
  }
  LLVMValueRef at = ci(cg, cg->pack_off[gm->owner->id]);
  LLVMValueRef ws = LLVMBuildInBoundsGEP2(cg->b, LLVMInt8TypeInContext(cg->ctx), cg->ws, &at, 1, "pack");
  LLVMValueRef none = LLVMConstNull(cg->ptr);
  LLVMValueRef args[G_COUNT] = {gm->M, gm->N, gm->K, gm->A.ptr, gm->A.rs, gm->A.cs, gm->packed ? none : gk->pack, desc,
                                gm->C, gm->ldc, ek ? ek->epi : none, w.ctx, ws, kb,
                                ci(cg, gm->accumulate), gm->koff ? gm->roff : none, gm->koff ? gm->koff : none, trans,
                                ci(cg, 0), gm->M, ci(cg, 0), gm->N};
  if (cg->fork_gemms) { /* nnc_fork_gemm(kernel, args, the worker's scratch, MR, NR, split) */
    _Static_assert((int)G_COUNT == (int)FORK_GEMM_ARGS && (int)G_I0 == (int)FORK_I0 && (int)G_WS == (int)FORK_WS,
                   "fork.h: the kernel's arguments");
    LLVMValueRef off = ci(cg, cg->fork_off[gm->owner->id]);
    LLVMValueRef extra[4] = {LLVMBuildInBoundsGEP2(cg->b, LLVMInt8TypeInContext(cg->ctx), cg->ws, &off, 1, "fork_pack"),
                             ci(cg, GEMM_MR), ci(cg, nr_of(cg)), ci(cg, fork_split(gm))};
    gemm_fork_call(cg, FORK_GEMM_SYMBOL, gk->gemm, args, G_COUNT, extra, 4);
  } else
    LLVMBuildCall2(cg->b, gk->gemm_ty, gk->gemm, args, G_COUNT, "");
}

void gemm_pack_all(CG *cg, const Gemm *gm, LLVMValueRef dst) {
  GemmKernels *gk = kernels(cg);
  if (!LLVMIsAConstantInt(gm->N) || LLVMConstIntGetSExtValue(gm->N) > GEMM_NC)
    nnc_die("codegen: a packed B wider than the column block");
  LLVMValueRef desc = slot_array(cg, 3, "bdesc");
  EpiWalk d = {.pass = EPI_ARGS, .ctx = desc};
  slot_store(cg, &d, gm->B.ptr);
  slot_store(cg, &d, gm->B.rs);
  slot_store(cg, &d, gm->B.cs);
  /* k-block pc at dst + pc*ncp, as the macro-kernel reads it */
  Gemm as_packed = *gm;
  as_packed.packed = true;
  LLVMValueRef kb = k_block(cg, &as_packed, gm->trans), ncp = ci(cg, (LLVMConstIntGetSExtValue(gm->N) + nr_of(cg) - 1) / nr_of(cg) * nr_of(cg));
  Loop kl;
  LLVMValueRef nkb = LLVMBuildSDiv(cg->b, iadd(cg, gm->K, isub(cg, kb, ci(cg, 1))), kb, "");
  LLVMValueRef pc = imul(cg, cg_loop_begin(cg, &kl, nkb), kb);
  LLVMValueRef args[P_COUNT] = {gep(cg, dst, imul(cg, pc, ncp)), desc, pc, imin(cg, kb, isub(cg, gm->K, pc)), ci(cg, 0), gm->N};
  LLVMBuildCall2(cg->b, gk->pack_ty, gk->pack, args, P_COUNT, "");
  cg_loop_end(cg, &kl);
}

/* ---- GEMMs of the IR ---- */

/* A node's elements as a strided matrix, (i, j) at ptr + i*rs + j*cs:
 * an unbatched matrix in memory, or a transpose of one. */
static bool matrix_ok(const CG *cg, const Node *n) {
  const Store *s = &cg->st[n->id];
  if (n->batched || n->shape.rank != 2) return false;
  if (s->kind == ST_VIEW && n->op == OP_TRANSPOSE) return matrix_ok(cg, n->in[0]);
  return s->kind == ST_MEM;
}

static GemmMat matrix(CG *cg, const Node *n) {
  if (cg->st[n->id].kind == ST_VIEW) {
    GemmMat m = matrix(cg, n->in[0]);
    return (GemmMat){m.ptr, m.cs, m.rs};
  }
  cg_flush(cg, n); /* the GEMM reads memory, not the value cache */
  return (GemmMat){cg_elem_ptr(cg, n, ci(cg, 0), ci(cg, 0)), ci(cg, n->shape.dim[1]), ci(cg, 1)};
}

/* A batched vector as rows in memory, (r, j) at ptr + r*rs + j: in memory,
 * or a reshape of a batched tensor in memory. */
static const Node *rows_node(const CG *cg, const Node *n) {
  if (!n->batched) return NULL;
  n = cg_stored(cg, n);
  return n->batched && cg->st[n->id].kind == ST_MEM ? n : NULL;
}

static GemmMat rows(CG *cg, const Node *n) {
  n = rows_node(cg, n);
  cg_flush(cg, n);
  return (GemmMat){cg_elem_ptr(cg, n, ci(cg, 0), ci(cg, 0)), ci(cg, cg->st[n->id].row_stride), ci(cg, 1)};
}

/* ---- transposed products ----
 *
 * A layer's product y = x W^T (W [out, in] as a matrix node, x the batch's
 * rows) packs W^T, all of it, for every call: a transposing copy of out x
 * in elements that runs at about a cycle per element, for the batch's
 * rows of FMAs (2 x 64 flops per element of W at a batch of 64, about two
 * cycles of the micro-kernel). Computed as y^T = W x^T instead, W is the
 * A operand, which the micro-kernel reads in place (its rows contiguous
 * along k), and only x^T is packed: in x batch elements. The product is
 * stored transposed (the macro-kernel's trans): each tile's sums are
 * transposed in the tile buffer, and the epilogue, the same kernel as
 * without, runs on them as an edge tile. The rows of y^T (out) then go by
 * MR and the columns (the batch) by NR: chosen when that costs less, by
 * the estimate below (packing a cycle per element, the micro-kernel's
 * FMAs at 32 per cycle over whole tiles, a transposed tile's epilogue and
 * copy a cycle per element). */
static bool trans_pays(int64_t out, int64_t in, int64_t batch) {
  return gemm_swap_pays(batch, out, in, out * batch); /* + the transposed tiles' copy */
}

/* C[m,n] = A[m,k] B[k,n] packs B, k x n elements, and runs m by MR and n
 * by NR; its transpose C^T = B^T A^T packs A^T, k x m, and runs n by MR,
 * m by NR, plus `extra` elements to put the result back in place. Does
 * the transpose cost less, by the estimate above? A convolution's
 * y[K,P] = W[K,CKK] cols[CKK,P] packs cols for every row of the batch;
 * y^T = cols^T W^T reads cols in place (a row tile's MR positions are
 * contiguous at each k) and packs W^T: fashion_cnn's second convolution
 * (K 64, CKK 800, P 196) runs 198 x 64 tiles instead of 66 x 208. Its
 * weight gradient dW[K,CKK] = dy[K,P] cols^T packs cols^T, through
 * register transposes, for every row; dW^T = cols dy^T reads cols in
 * place (rows contiguous along k) and packs dy^T, P x K. */
bool gemm_swap_pays(int64_t m, int64_t n, int64_t k, int64_t extra) {
  int64_t nr = GEMM_NR_MAX;
  double fmas = 32;
  double normal = (double)k * (double)n +
                  (double)((m + GEMM_MR - 1) / GEMM_MR * GEMM_MR) * (double)((n + nr - 1) / nr * nr) * (double)k / fmas;
  double swap = (double)k * (double)m +
                (double)((n + GEMM_MR - 1) / GEMM_MR * GEMM_MR) * (double)((m + nr - 1) / nr * nr) * (double)k / fmas +
                (double)extra;
  return swap < normal;
}

/* Does a layer's transposed product of M rows over K run K in one block? */
static bool trans_whole_k(int64_t M, int64_t K, int elem_size) {
  return M >= GEMM_WHOLE_K_ROWS && K > GEMM_KC_T && K * GEMM_NR_MAX * elem_size <= GEMM_WHOLE_K_BYTES;
}

int64_t gemm_trans_bytes(int64_t M, int64_t N, int64_t K, int elem_size) {
  return gemm_pack_bytes(N, K < GEMM_KC_T ? K : GEMM_KC_T, elem_size) +
         (K > GEMM_KC_T ? gemm_pack_bytes(N, M, elem_size) : 0);
}

/* The fewest rows from which a product of these sizes is stored
 * transposed, when it is at `batch` rows (else batch + 1): the fewest at
 * which the estimate prefers it (it also prefers the other way at some
 * counts above, where rounding to NR columns costs more: those stay
 * transposed, as at the batch). grad_part computes a shard of the batch,
 * often half of it: W2's 256 x 256 layers pay transposed at 64 rows, but
 * at 32 they are half-empty column tiles (NR is 64 with AVX-512), and
 * W2's 32-row shard took 260 us of CPU against 180 in the orientation of
 * a batch of 32. So grad_part chooses at run time by its row count, from
 * this threshold (37 rows there). */
static int64_t trans_from(int64_t out, int64_t in, int64_t batch) {
  if (!trans_pays(out, in, batch)) return batch + 1;
  int64_t rows = 1;
  while (!trans_pays(out, in, rows)) rows++;
  return rows;
}

/* Does the function being built take fewer rows than the batch as often
 * as not (grad_part: a thread's shard)? */
static bool rows_vary(const CG *cg) { return cg->kind == FN_GRAD_PART; }

static GemmMat sel_mat(CG *cg, LLVMValueRef c, GemmMat a, GemmMat b) {
  return (GemmMat){sel(cg, c, a.ptr, b.ptr), sel(cg, c, a.rs, b.rs), sel(cg, c, a.cs, b.cs)};
}

/* Is a product of these sizes (per row) worth a call of the kernel? */
static bool gemm_worth(int64_t n, int64_t k) { return n * k >= 512 && k >= 4; }

/* matmul of a per-batch matrix and a batched vector (a layer), either way. */
static bool matmul_gemm_ok(const CG *cg, const Node *n) {
  const Node *L = n->in[0], *R = n->in[1];
  if (L->shape.rank == 2 && R->shape.rank == 1)
    return matrix_ok(cg, L) && rows_node(cg, R) && gemm_worth(L->shape.dim[0], L->shape.dim[1]);
  if (L->shape.rank == 1 && R->shape.rank == 2)
    return rows_node(cg, L) && matrix_ok(cg, R) && gemm_worth(R->shape.dim[1], R->shape.dim[0]);
  return false;
}

const Node *gemm_stores(CG *cg, Gemm *gm, const Node *n) {
  const Node *sink = cg->fused_into[n->id];
  const Node *to = sink ? sink : n;
  gm->g = n;
  gm->sink = sink;
  gm->owner = n;
  if (sink) epi_flush(cg, gm, sink);
  cg_forget_node(cg, to); /* the GEMM writes memory directly */
  return to;
}

/* Where a GEMM node writes: its own memory, or its sink's (epilogue). */
static void gemm_target(CG *cg, Gemm *gm, const Node *n) {
  const Node *to = gemm_stores(cg, gm, n);
  gm->C = cg_elem_ptr(cg, to, ci(cg, 0), ci(cg, 0));
  gm->ldc = ci(cg, to->batched ? cg->st[to->id].row_stride : to->shape.dim[1]);
}

bool gemm_try_matmul(CG *cg, const Node *n) {
  const Node *L = n->in[0], *R = n->in[1];
  if (!matmul_gemm_ok(cg, n)) return false;
  Gemm gm = {.M = cg->n};
  /* a transposed matrix (a layer's input gradient, dy W) would be read
     down its columns in place: it is packed instead, by vector copies */
  bool may_trans = L->shape.rank == 2 && L->op != OP_TRANSPOSE;
  int64_t from = may_trans ? trans_from(L->shape.dim[0], L->shape.dim[1], cg->max_batch) : 0;
  if (may_trans && from <= cg->max_batch) {
    /* y^T = L x^T: L read in place, x^T packed (see "Transposed products") */
    GemmMat x = rows(cg, R), l = matrix(cg, L);
    gm.M = ci(cg, L->shape.dim[0]), gm.N = cg->n, gm.K = ci(cg, L->shape.dim[1]);
    gm.A = l;
    gm.B = (GemmMat){x.ptr, x.cs, x.rs};
    gm.trans = true;
    gm.whole_k = trans_whole_k(L->shape.dim[0], L->shape.dim[1], cg->L->elem_size);
    if (rows_vary(cg) && from > 1) { /* or y = x L^T, below, when the rows are fewer */
      LLVMValueRef t = gm.trans_if = icmp(cg, LLVMIntSGE, cg->n, ci(cg, from));
      LLVMValueRef out = gm.M;
      gm.M = sel(cg, t, out, cg->n), gm.N = sel(cg, t, cg->n, out);
      gm.A = sel_mat(cg, t, l, x);
      gm.B = sel_mat(cg, t, gm.B, (GemmMat){l.ptr, l.cs, l.rs});
    }
  } else if (L->shape.rank == 2) {
    /* y[r,i] = sum_q L[i,q] R[r,q]: B(q,i) = L[i,q] */
    GemmMat l = matrix(cg, L);
    gm.N = ci(cg, L->shape.dim[0]), gm.K = ci(cg, L->shape.dim[1]);
    gm.A = rows(cg, R);
    gm.B = (GemmMat){l.ptr, l.cs, l.rs};
  } else {
    gm.N = ci(cg, R->shape.dim[1]), gm.K = ci(cg, R->shape.dim[0]);
    gm.A = rows(cg, L);
    gm.B = matrix(cg, R);
  }
  gemm_target(cg, &gm, n);
  gemm_emit(cg, &gm);
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
  GemmMat ar = rows(cg, a);
  Gemm gm = {.M = ci(cg, a->shape.dim[0]), .N = ci(cg, b->shape.dim[0]), .K = cg->n,
             .A = {ar.ptr, ar.cs, ar.rs}, .B = rows(cg, b)};
  gemm_target(cg, &gm, n);
  gemm_emit(cg, &gm);
}

/* outer(a, b) whose only reader sums it over the batch: one GEMM. */
bool gemm_outer_ok(const CG *cg, const Node *n, const Node *c) {
  return n->op == OP_OUTER && c->op == OP_BATCH_SUM && n->batched && rows_node(cg, n->in[0]) &&
         rows_node(cg, n->in[1]) && gemm_worth(n->shape.dim[1], n->shape.dim[0]);
}

int64_t gemm_scratch_bytes(const Node *n, int elem_size, int max_batch, bool rows_vary) {
  int64_t N, kb;
  if (n->op == OP_MATMUL && n->batched && n->in[0]->shape.rank + n->in[1]->shape.rank == 3) {
    const Node *m = n->in[0]->shape.rank == 2 ? n->in[0] : n->in[1];
    if (m->batched) return 0;
    N = m == n->in[0] ? m->shape.dim[0] : m->shape.dim[1];
    kb = m == n->in[0] ? m->shape.dim[1] : m->shape.dim[0];
    int64_t from = m == n->in[0] && m->op != OP_TRANSPOSE ? trans_from(N, kb, max_batch) : max_batch + 1;
    int64_t trans = from > max_batch ? 0 /* B~ and the partial sums */
                                     : gemm_trans_bytes(N, max_batch, kb, elem_size);
    if (trans && trans_whole_k(N, kb, elem_size) && gemm_pack_bytes(max_batch, kb, elem_size) > trans)
      trans = gemm_pack_bytes(max_batch, kb, elem_size); /* or B~ whole */
    if (trans && !(rows_vary && from > 1)) return trans;
    if (kb > GEMM_KC) kb = GEMM_KC;
    int64_t normal = gemm_pack_bytes(N, kb, elem_size);
    return trans > normal ? trans : normal; /* either, chosen by the rows (trans_from) */
  } else if (n->op == OP_BATCH_SUM && n->in[0]->op == OP_OUTER && n->in[0]->batched) {
    N = n->shape.dim[1];
    kb = max_batch; /* one k-block when the epilogue reads what it writes */
  } else {
    return 0;
  }
  return gemm_pack_bytes(N, kb, elem_size);
}

int64_t gemm_pack_bytes(int64_t N, int64_t kb, int elem_size) {
  if (N > GEMM_NC) N = GEMM_NC;
  N = (N + GEMM_NR_MAX - 1) / GEMM_NR_MAX * GEMM_NR_MAX;
  return (kb > 0 ? kb : 1) * N * elem_size;
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
    bool gemm = n->op == OP_MATMUL ? matmul_gemm_ok(cg, n)
                : n->op == OP_CONV ? n->batched /* window.c: a GEMM per row */
                                   : n->op == OP_BATCH_SUM && gemm_batch_outer_ok(cg, n);
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
