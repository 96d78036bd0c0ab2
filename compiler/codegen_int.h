/*
 * codegen_int.h - what the code generator's two files share (not part of
 * codegen.h's interface): its state, the function kinds, small LLVM IR
 * builders, and the entry points of each file for the other.
 *
 *   codegen.c   the module, and loop nests over each node (GEMMs, fusion)
 *   regstep.c   train_epoch, forward and predict of a batch-1 step whose
 *               tensors fit vector registers, written in vectors
 */
#ifndef NNC_CODEGEN_INT_H
#define NNC_CODEGEN_INT_H

#include <llvm-c/Core.h>

#include "codegen.h"

typedef enum StoreKind {
  ST_NONE,  /* not needed by this function */
  ST_MEM,   /* in memory: base[row * row_stride + off + linear index] */
  ST_CONST, /* a constant */
  ST_VALUE, /* one scalar SSA value (1/n) */
  ST_VIEW,  /* transpose, broadcast, reshape: read through the operand */
  ST_INLINE /* elementwise with one reader: computed where it is read */
} StoreKind;

typedef struct Store {
  StoreKind kind;
  LLVMValueRef base;
  int64_t row_stride, off; /* in elements */
  LLVMValueRef value;      /* ST_CONST, ST_VALUE */
} Store;

/* One per CG_* bit, in build order (train_epoch calls train_step). */
typedef enum FnKind {
  FN_FORWARD, FN_PREDICT, FN_BACKWARD, FN_UPDATE, FN_TRAIN_STEP, FN_TRAIN_EPOCH, FN_GRAD_PART, FN_COUNT
} FnKind;


typedef struct CG {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;     /* the function body */
  LLVMBuilderRef alloc; /* the entry block: stack slots */
  LLVMTypeRef T, i64, i1, ptr;
  const Graph *g;
  const Layout *L;
  int max_batch;
  char **labels;
  int64_t *ws_off;  /* per node: byte offset in the workspace, or -1 */
  LLVMValueRef ws;  /* the workspace: the module's global, or grad_part's ws */
  /* the function being built */
  FnKind kind;
  LLVMValueRef fn, buf, x, t, n, y, loss, inv_n;
  LLVMValueRef gbuf; /* where gradients go: buf, or grad_part's grad */
  Store *st;
  bool *need;
  bool *given; /* per node: this function reads it from the buffer */
  int64_t stack_bytes;
  int64_t unroll; /* product of the unrolled loops around the code being built */
  int depth;      /* LLVM loops around the code being built */
  /* values of memory elements known at depth 0, by node and element: loads
     and stores there are straight-line code, so a value stored or loaded
     once stands for the element until it is stored again */
  LLVMValueRef **cache;
  bool **dirty;                /* cached values not yet stored to memory */
  LLVMBasicBlockRef outer_pre; /* the block before the outermost loop */
  int vl;                      /* elements per vector register */
  int gemm_nv;                 /* vectors per GEMM block row */
  int64_t *pack_off;           /* per matmul node: workspace offset for a packed B, or -1 */
  /* GEMM epilogues: a GEMM node whose elementwise readers up to a stored
     node (its sink) are computed on its accumulators before they are
     stored, so the GEMM's own result never goes to memory */
  const Node **fused_into; /* per GEMM node: its sink, or NULL */
  const Node **epi_gemm;   /* per sink: its GEMM node, or NULL */
  int lanes;               /* > 1 while an epilogue is built: cT() splats */
  bool avx_lane_swap;      /* the code runs here, on x86 with AVX: name vperm2f128 */
} CG;

/* ---- small builders ---- */

static inline LLVMValueRef cT(CG *cg, double v) {
  if (cg->lanes <= 1) return LLVMConstReal(cg->T, v);
  LLVMValueRef e[64];
  for (int i = 0; i < cg->lanes; i++) e[i] = LLVMConstReal(cg->T, v);
  return LLVMConstVector(e, (unsigned)cg->lanes);
}
static inline LLVMValueRef ci(CG *cg, int64_t v) { return LLVMConstInt(cg->i64, (unsigned long long)v, 1); }

static inline LLVMValueRef fm(LLVMValueRef v, LLVMFastMathFlags flags) {
  if (LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v)) LLVMSetFastMathFlags(v, flags);
  return v;
}

static inline LLVMValueRef b_fadd(CG *cg, LLVMValueRef a, LLVMValueRef b) {
  return fm(LLVMBuildFAdd(cg->b, a, b, ""), LLVMFastMathAllowContract);
}
static inline LLVMValueRef b_fsub(CG *cg, LLVMValueRef a, LLVMValueRef b) {
  return fm(LLVMBuildFSub(cg->b, a, b, ""), LLVMFastMathAllowContract);
}
static inline LLVMValueRef b_fmul(CG *cg, LLVMValueRef a, LLVMValueRef b) {
  return fm(LLVMBuildFMul(cg->b, a, b, ""), LLVMFastMathAllowContract);
}
static inline LLVMValueRef b_fdiv(CG *cg, LLVMValueRef a, LLVMValueRef b) {
  return fm(LLVMBuildFDiv(cg->b, a, b, ""), LLVMFastMathAllowContract);
}
static inline LLVMValueRef fgt(CG *cg, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFCmp(cg->b, LLVMRealOGT, a, b, "");
}
static inline LLVMValueRef sel(CG *cg, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(cg->b, c, a, b, "");
}
static inline LLVMValueRef iadd(CG *cg, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildNSWAdd(cg->b, a, b, "");
}
static inline LLVMValueRef imul(CG *cg, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildNSWMul(cg->b, a, b, "");
}

/* ---- codegen.c, for regstep.c ---- */

/* The elementwise semantics of op on a and b (scalars, or vectors when
 * cg->lanes > 1), as interp.c's op_scalar. */
LLVMValueRef cg_scalar(CG *cg, Op op, LLVMValueRef a, LLVMValueRef b, double attr);
/* Name an instruction after its IR node (%d.linear1.W, %3, ...). */
void cg_name_value(CG *cg, LLVMValueRef v, const Node *n);
/* The column of a leaf among the inputs (or targets), and their count. */
int64_t cg_leaf_column(const PtrVec *leaves, const Node *leaf);
int64_t cg_cols(const PtrVec *leaves);
/* Declare nnc_MODEL_name with the given parameters (pointer parameters
 * noalias nocapture; readonly_mask: bit i for a read-only parameter i). */
LLVMValueRef cg_declare(CG *cg, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int np,
                        const char *const *pnames, unsigned readonly_mask);
/* A function body: an entry block for stack slots, then the code; closed
 * by cg_end_body. */
void cg_begin_body(CG *cg, LLVMValueRef fn);
void cg_end_body(CG *cg);

/* ---- regstep.c, for codegen.c ---- */

/* Can function `kind` (train_epoch, forward, predict) be built as a
 * register step? Fills need[] (per node: read by it) and returns the lanes
 * to use, or 0. */
int regstep_lanes(const CG *cg, FnKind kind, bool *need);
/* Build it, `lanes` wide. */
void regstep_build(CG *cg, FnKind kind, int lanes, const bool *need);

#endif
