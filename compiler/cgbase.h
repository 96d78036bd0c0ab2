/*
 * cgbase.h - the code generator's common ground (not part of codegen.h's
 * interface): its state, the function kinds, small LLVM IR builders, loops,
 * element access and function frames. Its files build on it and point down
 * only:
 *
 *   codegen.c   the module, and loop nests over each node
 *   gemm.c      matrix products as register-blocked GEMMs, with epilogues
 *   window.c    convolutions (im2col around gemm.c) and pooling
 *   regstep.c   train_epoch, forward and predict of a batch-1 step whose
 *               tensors fit vector registers, written in vectors
 *   cgbase.c    what they all use (below)
 */
#ifndef NNC_CGBASE_H
#define NNC_CGBASE_H

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

typedef struct GemmKernels GemmKernels;

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
  LLVMValueRef ws;  /* the workspace: the module's global, or grad_part's ws */
  int64_t ws_bytes, part_ws_bytes; /* the largest plan of the module's functions; grad_part's */
  /* the function being built */
  FnKind kind;
  LLVMValueRef fn, buf, x, t, n, y, loss, inv_n;
  LLVMValueRef gbuf; /* where gradients go: buf, or grad_part's grad */
  LLVMValueRef first; /* grad_part's first row in the whole batch (dropout's masks), else NULL */
  Store *st;
  bool *need;
  bool *given; /* per node: this function reads it from the buffer */
  int64_t stack_bytes;
  int64_t unroll; /* product of the unrolled loops around the code being built */
  int depth;      /* LLVM loops around the code being built */
  bool body_unrolled; /* an unrolled Iter of more than one index inside the innermost loop being built */
  /* values of memory elements known at depth 0, by node and element: loads
     and stores there are straight-line code, so a value stored or loaded
     once stands for the element until it is stored again */
  LLVMValueRef **cache;
  bool **dirty;                /* cached values not yet stored to memory */
  LLVMBasicBlockRef outer_pre; /* the block before the outermost loop */
  int vl;                      /* elements per vector register */
  int gemm_nv;                 /* vectors per GEMM block row */
  int64_t *pack_off;           /* per GEMM node: workspace offset of its scratch (packed B), or -1 */
  int64_t *fork_off;           /* with fork_gemms: of the worker's copy of that scratch */
  bool fork_gemms;             /* CgTarget's */
  struct GemmKernels *gemm;    /* the module's GEMM kernels, once made (gemm.c) */
  CgGemmKernels gemm_kernels;  /* made here or declared (CgTarget) */
  /* GEMM epilogues: a GEMM node whose elementwise readers up to a stored
     node (its sink) are computed on its accumulators before they are
     stored, so the GEMM's own result never goes to memory */
  const Node **fused_into; /* per GEMM node: its sink, or NULL */
  const Node **epi_gemm;   /* per sink: its GEMM node, or NULL */
  int lanes;               /* > 1 while an epilogue or a vector loop is built: cT() splats */
  /* vector loops (cg_vec_each): the index of a vector's first lane along
     the vectorized axes, and the lanes in use in a last partial vector
     (NULL: all of them); NULL outside vector loops */
  LLVMValueRef vidx, vmask;
  bool vec_loops; /* vector loops at all (NNC_VECTOR_LOOPS=0: none, for comparison) */
  /* update_part: its part and parts arguments, while it is built (else
     NULL); vector loops then run over the part's slice of each tensor
     (engine_slice), and code that cannot be sliced sets slice_failed */
  LLVMValueRef slice_part, slice_parts;
  /* update_part's grad2 argument: another buffer of the layout whose
     gradients are added to the buffer's where the step reads them */
  LLVMValueRef slice_grad;
  /* update_part's nt argument: nonzero, a parameter's whole vectors are
     stored non-temporally (cgbase.c, param_store) */
  LLVMValueRef slice_nt;
  bool slice_failed;
  /* per node: the Adam step (optstep.h) it is part of, computed by one
     call of the prebuilt kernel, or NULL; the array itself NULL when the
     function has no such call */
  const struct AdamStep **adam_of;
  bool avx_lane_swap;      /* the target is x86 with AVX: name vperm2f128 */
  /* segments (codegen.c): a function of many nodes is built as functions
     of bounded size that it calls in turn; its small nodes then live in
     one frame (a stack slot of the function, each segment's last
     argument) at frame + their Store's off, not in stack slots of their
     own, which a segment could not reach; nodes in the workspace are at
     ws + their Store's off */
  bool split;
  LLVMValueRef frame;  /* the frame while the function is split, else NULL */
  int64_t frame_bytes;
  int segments_from, segment_weight; /* codegen.c's SEGMENTS_FROM, SEGMENT_WEIGHT */
  int *last_read; /* per node: the position of its last read in the function (plan_workspace) */
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

/* Is this an evaluation function (forward, predict: dropout is the
 * identity, if_training reads its second operand)? */
static inline bool cg_evaluation(const CG *cg) { return cg->kind == FN_FORWARD || cg->kind == FN_PREDICT; }

/* The node whose memory n reads: n, or the source of the reshapes it views
 * (a reshape in memory is the same elements in the same order). */
static inline const Node *cg_stored(const CG *cg, const Node *n) {
  while (cg->st[n->id].kind == ST_VIEW && n->op == OP_RESHAPE) n = n->in[0];
  return n;
}

static inline bool is_elementwise(const Node *n) {
  return op_info[n->op].cls == OPC_UNARY || op_info[n->op].cls == OPC_BINARY;
}

/* An accumulation whose order does not matter (reductions): a + b with
 * reassoc; a sum that starts at +0 starts at its first term. */
LLVMValueRef cg_facc(CG *cg, LLVMValueRef a, LLVMValueRef b);
/* A call of the LLVM intrinsic `name` ("llvm.exp", ...) on a. */
LLVMValueRef cg_intrinsic1(CG *cg, const char *name, LLVMValueRef a);
/* a * b + c (llvm.fmuladd, no fast-math flags), of scalars or vectors:
 * one rounding where the target has a fast fused multiply-add, whatever
 * the optimization level */
LLVMValueRef cg_fmuladd(CG *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c);

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
 *   cg_iter_shape(cg, &it, &n->shape);
 *   FOR_EACH(cg, it) { ... it.idx[d] ... }
 *
 * (No `break` or `continue` inside a FOR_EACH body.)
 */

typedef struct Loop {
  LLVMBasicBlockRef header, exit;
  LLVMValueRef i;
  bool outer_body_unrolled; /* cg->body_unrolled of the enclosing code */
} Loop;

LLVMValueRef cg_loop_begin(CG *cg, Loop *lp, LLVMValueRef count); /* returns the index */
void cg_loop_end(CG *cg, Loop *lp);
/* The end of a loop whose body is vector code already: LLVM's loop
 * vectorizer is kept off it (llvm.loop.vectorize.enable false). */
void cg_vec_loop_end(CG *cg, Loop *lp);

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

void cg_iter_shape(CG *cg, Iter *it, const Shape *s);            /* every index of a static shape */
void cg_iter_loop(CG *cg, Iter *it, const Shape *s);             /* the same, as loops whatever its size */
void cg_iter_range(CG *cg, Iter *it, LLVMValueRef count);        /* 0 .. count-1 */
void cg_iter_rows(CG *cg, Iter *it, const Node *n);              /* n's rows (n of them, or one) */
bool cg_iter_next(CG *cg, Iter *it);
#define FOR_EACH(cg, it) while (cg_iter_next((cg), &(it)))
/* Would an Iter over `total` indices here be unrolled? */
bool cg_would_unroll(const CG *cg, int64_t total);
/* Should `outer` indices around an inner Iter of `inner` indices be a loop,
 * with the inner one unrolled? When both would be unrolled but their
 * copies together are more than a short run: the inner run (a row of
 * contiguous elements) is what the SLP vectorizer makes one vector of,
 * and unrolling the outer indices too only multiplies the code it searches
 * (reviews: the mean over 16 words and the scatter of its gradient, 256
 * copies each, were most of its optimization time). */
bool cg_loop_outside(const CG *cg, int64_t outer, int64_t inner);
/* Would an Iter over `outer` indices here, and one over `inner` inside it,
 * both be unrolled? */
bool cg_would_unroll2(const CG *cg, int64_t outer, int64_t inner);

/* ---- element access ----
 *
 * Operands are read through cg_load_elem(), which maps an element index
 * through views (transpose, broadcast, reshape) and computes inlined
 * elementwise nodes where they are read. In straight-line code a value
 * stored or loaded once stands for its element (the value cache) until
 * memory must have it: cg_flush() before anything reads memory directly. */

LLVMValueRef cg_linear_index(CG *cg, const Shape *s, LLVMValueRef *idx);
LLVMValueRef cg_elem_ptr(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef lin);
void cg_flush(CG *cg, const Node *n);
LLVMValueRef cg_mem_load(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef lin);
void cg_mem_store(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef lin, LLVMValueRef v);
/* Drop what the cache knows of n (its memory is about to be written directly). */
void cg_forget_node(CG *cg, const Node *n);
void cg_forget_cache(CG *cg);
/* Index of a broadcast operand of shape `from` for an element of `to`. */
void cg_broadcast_index(CG *cg, const Shape *from, const Shape *to, LLVMValueRef *idx, LLVMValueRef *out);
LLVMValueRef cg_load_elem(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx);
/* Element idx of row `row` of an elementwise node, from its operands. */
LLVMValueRef cg_elem_value(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx);
void cg_store_elem(CG *cg, const Node *n, LLVMValueRef row, LLVMValueRef *idx, LLVMValueRef v);

/* The elementwise semantics of op on a and b (scalars, or vectors when
 * cg->lanes > 1), as interp.c's op_scalar. */
LLVMValueRef cg_scalar(CG *cg, Op op, LLVMValueRef a, LLVMValueRef b, double attr);

/* A running value (sum, max). When the loop that updates it is unrolled it
 * is a plain SSA value; otherwise a stack slot that LLVM turns into a phi. */
typedef struct Acc {
  LLVMValueRef slot; /* NULL: SSA */
  LLVMValueRef value;
} Acc;

Acc cg_acc_new(CG *cg, double start, bool unrolled);
LLVMValueRef cg_acc_get(CG *cg, Acc *a);
void cg_acc_add(CG *cg, Acc *a, LLVMValueRef v);
void cg_acc_max(CG *cg, Acc *a, LLVMValueRef v); /* from -inf the first value is the max */

/* ---- vector loops ----
 *
 * Elementwise loops over contiguous memory are written as vectors of
 * cg->vl lanes: the trailing k axes of an index space (all of them, or the
 * innermost) are walked a vector at a time, the last partial vector under a
 * mask. Inside, cg_load_elem() returns vectors: an operand element whose
 * address follows the lanes is a vector load, one that does not move with
 * the lanes is loaded once and splat; cg_mem_store() stores vectors. Each
 * lane computes what the scalar loop computes for its element, in the same
 * order, so results are the same bits. */

/* Can n be read with a vector whose lanes run over the trailing k axes of
 * n's index (k = 0: an element that does not move with the lanes)? */
bool cg_vec_ok(const CG *cg, const Node *n, int k);
/* The same for the operands of elementwise node n read at n's index. */
bool cg_vec_elem_ok(const CG *cg, const Node *n, int k);
/* How many trailing axes of shape s a loop over it may walk in vectors
 * when ok(cg, n, k, ctx) accepts the reads at k, or 0 (a scalar loop). */
typedef bool VecOk(CG *cg, const Node *n, int k, void *ctx);
int cg_vec_axes(CG *cg, const Node *n, const Shape *s, VecOk *ok, void *ctx);
/* Every index of shape s, the trailing k axes (k > 0) in vectors: body
 * runs with idx[] the element of the vector's first lane. */
typedef void VecBody(CG *cg, LLVMValueRef *idx, void *ctx);
void cg_vec_each(CG *cg, const Shape *s, int k, VecBody *body, void *ctx);
/* update_part: is this the last part (an i1)? */
LLVMValueRef cg_slice_last(CG *cg);
/* update_part's slice of a tensor of n elements (engine_slice: whole
 * 64-byte lines, the last part to the end, none in the tail call, part ==
 * parts) as [*lo, *hi) in units of `unit` to a line, the last part's hi
 * `end`; last is cg_slice_last's. */
void cg_slice_bounds(CG *cg, int64_t n, int64_t unit, int64_t end, LLVMValueRef last, LLVMValueRef *lo,
                     LLVMValueRef *hi);
/* update_part: is n a gradient that it reads summed with grad2's (a
 * parameter's, in the buffer)? */
bool cg_summed_grad(const CG *cg, const Node *n);
/* A store of a whole aligned vector, non-temporal (the line dropped from
 * every core's cache). */
void cg_store_nontemporal(CG *cg, LLVMValueRef v, LLVMValueRef p);
/* Elements 0 .. count-1 (count a runtime value >= 0, or a constant) in
 * vectors of cg->vl lanes: body(cg, i, ctx) with i the element of the
 * vector's first lane, inside a loop over the full vectors (which carries
 * llvm.loop.vectorize.enable false), then once more for the rest under
 * cg->vmask (the lanes below count; no lanes when there is no rest).
 * cg->lanes is cg->vl inside, so cT() splats. A plain scalar loop (body
 * called with each element, cg->lanes unchanged) when vector loops are
 * off. Bodies read and write through cg_vec_load / cg_vec_store. */
typedef void VecRangeBody(CG *cg, LLVMValueRef i, void *ctx);
void cg_vec_range(CG *cg, LLVMValueRef count, VecRangeBody *body, void *ctx);
/* A vector of cg->lanes elements at p (under cg->vmask when set); the
 * scalar at p outside vector code. */
LLVMValueRef cg_vec_load(CG *cg, LLVMValueRef p);
void cg_vec_store(CG *cg, LLVMValueRef v, LLVMValueRef p);
/* A sum of m terms in vectors: term(cg, at, ctx) gives the vector of
 * terms at, at + 1, ..., at + vl - 1 (at is cg->vidx, so cg_load_elem
 * returns vectors); a vector of vl partial sums, lane l adding terms l,
 * l + vl, l + 2 vl, ... in order (the last partial vector under a mask),
 * then the lanes added in halves (l and l + vl/2, ...). The order depends
 * on the vector width only, and is the same with NNC_VECTOR_LOOPS=0.
 * cg_vec_reduce_ok: m terms here are worth it (not unrolled, at least 16). */
typedef LLVMValueRef VecTerm(CG *cg, LLVMValueRef at, void *ctx);
bool cg_vec_reduce_ok(const CG *cg, int64_t m);
LLVMValueRef cg_vec_reduce(CG *cg, int64_t m, VecTerm *term, void *ctx);
/* Can the sum of a's elements over its trailing k axes be cg_vec_sum? */
bool cg_vec_sum_ok(CG *cg, const Node *a, int k);
/* The sum of row `row` of a over its trailing k axes, the others at
 * lead[], as cg_vec_reduce. */
LLVMValueRef cg_vec_sum(CG *cg, const Node *a, LLVMValueRef row, LLVMValueRef *lead, int k);
/* x in every lane of a vector of cg->vl elements. */
LLVMValueRef cg_splat(CG *cg, LLVMValueRef x);
/* An i64 value in every lane of a vector of vl i32; base + l in lane l:
 * the pieces of lane masks (lanes below a count, lanes inside a row). */
LLVMValueRef cg_splat_i32(CG *cg, LLVMValueRef v);
LLVMValueRef cg_lane_ids(CG *cg, LLVMValueRef base);

/* ---- names and functions ---- */

/* An IR node's name in LLVM IR (d.linear1.W, v3, ...) into buf. */
const char *cg_llvm_name(CG *cg, const Node *n, char *buf, size_t len);
/* Name an instruction after its IR node (%d.linear1.W, %v3, ...). */
void cg_name_value(CG *cg, LLVMValueRef v, const Node *n);
/* The column of a leaf among the inputs (or targets), and their count. */
int64_t cg_leaf_column(const PtrVec *leaves, const Node *leaf);
int64_t cg_cols(const PtrVec *leaves);
/* Add the enum attribute `name` to fn at idx (LLVMAttributeFunctionIndex, or a parameter + 1). */
void cg_add_attr(CG *cg, LLVMValueRef fn, unsigned idx, const char *name);
/* Declare nnc_MODEL_name with the given parameters (pointer parameters
 * noalias nocapture; readonly_mask: bit i for a read-only parameter i). */
LLVMValueRef cg_declare(CG *cg, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int np,
                        const char *const *pnames, unsigned readonly_mask);
/* A function body: an entry block for stack slots, then the code; closed
 * by cg_end_body. */
void cg_begin_body(CG *cg, LLVMValueRef fn);
void cg_end_body(CG *cg);

#endif
