/*
 * gemm.h - matrix products as calls of the module's packed GEMM kernel,
 * with epilogues (gemm.c), for codegen.c.
 */
#ifndef NNC_GEMM_H
#define NNC_GEMM_H

#include "cgbase.h"

/* A matrix operand: element (i, j) at ptr + i*rs + j*cs (i64 strides in
 * elements, any values: a transposed matrix is a swap of rs and cs). */
/* The k-block (elements of K) of every GEMM (gemm.c's cache blocking). */
enum { GEMM_KC = 256 };

typedef struct GemmMat {
  LLVMValueRef ptr, rs, cs;
} GemmMat;

/* C[M,N] = A[M,K] B[K,N], or, with an epilogue, the sink's expression of
 * it (gemm_plan_epilogues) stored instead. Sizes are i64 values, constants
 * or not. B is packed into the workspace scratch of `owner`
 * (gemm_scratch_bytes). */
typedef struct Gemm {
  LLVMValueRef M, N, K;
  GemmMat A, B;
  LLVMValueRef C, ldc;   /* C(m,n) at C + m*ldc + n */
  const Node *g;         /* the node the GEMM computes */
  const Node *sink;      /* with an epilogue: the node stored instead (C is its memory) */
  const Node *owner;     /* the node whose scratch packs B */
  bool accumulate;       /* C += A B (no epilogue) */
  bool trans;            /* C(m, n) at C + n*ldc + m: the product stored
                            transposed (K a constant; not accumulate) */
  LLVMValueRef trans_if; /* with trans: stored transposed only when this i1
                            is true (M, N, A and B are selects of both) */
  LLVMValueRef row;      /* a convolution's GEMM: the batch row it computes
                            (C(m, n) is channel m, position n of it) */
  LLVMValueRef roff, koff; /* indexed A (koff not NULL): A(m, k) at A.ptr +
                            roff[m] + koff[k], i64 tables of element
                            offsets (A.rs and A.cs unused) */
  bool packed;           /* B.ptr is B~ already (gemm_pack_all) */
  bool whole_k;          /* with trans: all of K in one k-block (B~
                            whole, no partial sums: gemm.c's trans_whole_k) */
} Gemm;

/* Set gm's node n, and its epilogue's sink if it has one, before the GEMM
 * is emitted; returns the node whose memory the GEMM writes (n or the
 * sink), which the caller points gm->C at. */
const Node *gemm_stores(CG *cg, Gemm *gm, const Node *n);
/* A call of the kernel (made once per module at its first use). */
void gemm_emit(CG *cg, const Gemm *gm);
/* B of gm packed whole into dst (gemm_pack_bytes of N and K), as gm's call packs
 * it a k-block at a time, with gm's N (at most the GEMM's column block)
 * and k-block: then gm->B.ptr = dst and gm->packed make calls that use it
 * as it is (a weight packed once for every row of a batch). */
void gemm_pack_all(CG *cg, const Gemm *gm, LLVMValueRef dst);
/* A call symbol(kernel, args as an i64 array, extra...) of a runtime
 * function that runs the kernel in parts (runtime/fork.h): the nargs
 * arguments stored as i64s (pointers as integers, a float's bits in the
 * low half, a double's bits), the extra ones (at most 6) passed as they
 * are. */
void gemm_fork_call(CG *cg, const char *symbol, LLVMValueRef kernel, const LLVMValueRef *args, int nargs,
                    const LLVMValueRef *extra, int nextra);
/* Release the module's kernel table (codegen_module, at its end). */
void gemm_free(CG *cg);

/* Build matmul node n as a GEMM when that pays; false: the caller builds
 * its loop nest. */
bool gemm_try_matmul(CG *cg, const Node *n);
/* Is n batch_sum(outer(a, b)) with the outer product inlined? Then
 * gemm_batch_outer builds it as one GEMM over the rows. */
bool gemm_batch_outer_ok(const CG *cg, const Node *n);
void gemm_batch_outer(CG *cg, const Node *n);
/* Can outer(a, b) node n, read only by c, be computed inside c's GEMM? */
bool gemm_outer_ok(const CG *cg, const Node *n, const Node *c);
/* Choose the GEMM epilogues of the function being planned (cg->fused_into,
 * cg->epi_gemm) from each node's readers, reader counts and roots. */
void gemm_plan_epilogues(CG *cg, const Node **reader, const int *users, const bool *root);
/* Bytes of workspace scratch node n needs if it becomes a GEMM (its packed
 * B), for any target; 0 when it cannot be one. rows_vary: in a function
 * whose row count is often below max_batch (grad_part), which may choose
 * a product's orientation by it. */
int64_t gemm_scratch_bytes(const Node *n, int elem_size, int max_batch, bool rows_vary);
/* Bytes of the packed B of a GEMM with N columns and k-blocks of kb
 * (at most GEMM_KC). */
int64_t gemm_pack_bytes(int64_t N, int64_t kb, int elem_size);
/* Does C[m,n] = A[m,k] B[k,n] cost less computed as C^T = B^T A^T (A^T
 * packed rather than B), with `extra` elements to put C^T back in place?
 * And the scratch a transposed product (trans) of M x N over K needs
 * (its packed block and partial sums). */
bool gemm_swap_pays(int64_t m, int64_t n, int64_t k, int64_t extra);
int64_t gemm_trans_bytes(int64_t M, int64_t N, int64_t K, int elem_size);

/* Vectors per row of a micro-kernel tile for registers of vector_bits. */
static inline int gemm_vectors(int vector_bits) { return vector_bits == 512 ? 4 : 2; }
/* The names of the kernels that do not depend on the model (the packer,
 * the micro-kernel, the macro-kernel, and window.c's im2col and col2im of
 * a convolution's columns, the GEMM's operand, and max pooling of 2x2 or 2
 * windows and its gradient, channel.c's per-channel sums and affine maps,
 * optstep.c's Adam step of a parameter, and the common epilogues): a module that imports them
 * (GEMM_KERNELS_IMPORT, GEMM_KERNELS_PREBUILT) declares these. */
enum {
  GEMM_PACK, GEMM_UKR, GEMM_MACRO, GEMM_IM2COL, GEMM_COL2IM, GEMM_MAX_POOL2, GEMM_MAX_POOL2_DX,
  GEMM_CH_MOMENTS, GEMM_CH_SUM, /* channel.c's per-channel sums over the batch */
  GEMM_CH_AFFINE,               /* and its per-channel affine maps */
  GEMM_OPT_ADAM,                /* Adam's step of one parameter (optstep.c) */
  /* the epilogues most models have (gemm.c's fixed_epi_keys): a linear
     layer's bias and relu, its bias, the relu mask of a gradient, a
     convolution's per-channel bias and relu, and its batch normalization
     (a scale and a shift per channel) and relu; a prebuilt set only */
  GEMM_EPI_RELU_BIAS, GEMM_EPI_BIAS, GEMM_EPI_RELU_MASK, GEMM_EPI_RELU_CHANNEL, GEMM_EPI_RELU_AFFINE,
  GEMM_FIXED_KERNELS
};
enum { GEMM_FIXED_EPI = GEMM_EPI_RELU_BIAS };
extern const char *const gemm_fixed_kernel_names[GEMM_FIXED_KERNELS];
/* Fixed window kernel k (GEMM_IM2COL and after) of the module, made at its
 * first use or declared (CgGemmKernels), and its type. */
LLVMValueRef gemm_fixed_kernel(CG *cg, int k, LLVMTypeRef *ty);
/* A module of ctx holding only those kernels, external, for elements of
 * f64 or f32 and vector registers of vector_bits. */
LLVMModuleRef gemm_kernels_module(LLVMContextRef ctx, bool f64, int vector_bits);

#endif
