/*
 * codegen.h - the optimized IR graph to an LLVM module (LLVM-C, opaque
 * pointers). jit.c optimizes and compiles it; see jit.h for the functions
 * the module defines.
 *
 * Every size is a constant in the generated code except the row count n of
 * a batch, so LLVM can unroll and vectorize; forward and predict run any
 * number of rows in chunks of max_batch. Small intermediates live in stack
 * slots that LLVM promotes to registers; large ones in a workspace sized
 * for one batch and shared by nodes whose lifetimes do not overlap, a
 * global of the module (no heap allocation anywhere). Nothing is allocated
 * or freed inside train_step or train_epoch.
 */
#ifndef NNC_CODEGEN_H
#define NNC_CODEGEN_H

#include <llvm-c/Core.h>

#include "ir.h"
#include "update.h"

/* The prefix of the module's function names: nnc_MODEL_ (e.g.
 * nnc_moons_train_step). */
const char *codegen_prefix(const Graph *g, char *buf, size_t n);

/* Which functions to build (a run builds only what it calls). */
enum {
  CG_FORWARD = 1, CG_PREDICT = 2, CG_BACKWARD = 4, CG_UPDATE = 8, CG_TRAIN_STEP = 16,
  CG_TRAIN_EPOCH = 32, CG_ALL = 63,
  /* for threads and MPI (not in CG_ALL):
     T grad_part(buf, grad, ws, x, t, n, total, first) writes the gradients
     of n rows (at most codegen_part_rows), rows first.. of the whole batch (dropout's masks follow a
     row's place in it), scaled by 1/total, into grad (a buffer of the same layout), uses
     ws (CgInfo's part_ws_bytes, 64-byte aligned) for its intermediates,
     and returns the sum of the rows' losses / total */
  CG_GRAD_PART = 64,
  /* not a function, for jit_engine_new: every GEMM of the engine's
     modules calls nnc_fork_gemm (CgTarget's fork_gemms), the feature split
     of two threads (runtime/fork.h) */
  CG_FORK_GEMMS = 128
};


/* True when a training step is small (few values per row times rows):
 * its code is then straight-line in row loops, and jit.c optimizes it
 * with a short pipeline. */
bool codegen_step_is_small(const Graph *g, int max_batch);

/* The most rows grad_part takes: Graph.part_rows, at most max_batch. */
int codegen_part_rows(const Graph *g, int max_batch);

/* What code generation needs to know of the CPU the code is for: one
 * description, made by jit.c (jit_target) for the target machine it
 * compiles with. */
/* Where the module's GEMM kernels (gemm.c: the packer, the micro-kernel and
 * the macro-kernel, the same for every model on one target) come from. */
typedef enum CgGemmKernels {
  GEMM_KERNELS_OWN,    /* made in the module, internal */
  GEMM_KERNELS_EXPORT, /* made in the module, external: another module links to them */
  GEMM_KERNELS_IMPORT, /* declared only: defined by a module that exports them */
  GEMM_KERNELS_PREBUILT /* declared only: defined by a prebuilt kernel set linked into
                           nnc (kernels.h), whose common epilogues the module calls too */
} CgGemmKernels;

typedef struct CgTarget {
  int vector_bits; /* its widest vector registers: 128 (SSE), 256 (AVX), 512 (AVX-512) */
  bool x86_avx;    /* x86-64 with AVX: the code may name AVX instructions */
  CgGemmKernels gemm_kernels;
  /* the workspace is declared, not defined: an external global named
     CG_WORKSPACE_SYMBOL of CgInfo's ws_bytes (64-byte aligned) that the
     JIT defines at memory it maps. Otherwise (objects for --emit) it is a
     zeroed internal global of the module (.bss) */
  bool workspace_extern;
  /* every GEMM is a call of FORK_GEMM_SYMBOL (runtime/fork.h), which
     splits it between the caller and a worker thread when the caller is
     in a pool; each GEMM's scratch is twice its size (the worker's copy) */
  bool fork_gemms;
} CgTarget;

#define CG_WORKSPACE_SYMBOL "nnc.workspace"

/* What codegen_module tells of the module it built. */
typedef struct CgInfo {
  /* every function is written in vectors with the step in registers
     (regstep.c): the module needs no vectorizer, and instcombine would undo
     its named shuffles */
  bool registers_only;
  unsigned built_fns;    /* the CG_ functions it defines (train_step too when train_epoch calls it) */
  unsigned register_fns; /* those of them written in registers */
  bool has_gemm;         /* it calls the GEMM kernels */
  int64_t ws_bytes;      /* the workspace global (0: none) */
  int64_t part_ws_bytes; /* the ws grad_part needs (64-byte aligned) */
} CgInfo;

/* Build the module in ctx with the functions in `fns`, for `target`. When
 * train_epoch is built without train_step, train_step is internal and
 * disappears into train_epoch. info: NULL, or what the module holds. */
LLVMModuleRef codegen_module(LLVMContextRef ctx, const Graph *g, const Layout *layout,
                             int max_batch, unsigned fns, const CgTarget *target, CgInfo *info);

#endif
