/*
 * kernels.h - the GEMM kernels that do not depend on the model (gemm.c's
 * packer, micro-kernel and macro-kernel), compiled once when nnc is built
 * and linked into it, one set per x86-64 level and dtype; the JIT defines
 * their names to the set the host can run instead of compiling them for
 * every model (docs/internals.md, section 9).
 *
 * kernelgen.c, a tool of the build, writes each set's object file and the
 * table below (kernel_sets.c in the build tree) from gemm.c's generator,
 * so the prebuilt kernels are the code a module would have made itself.
 */
#ifndef NNC_KERNELS_H
#define NNC_KERNELS_H

#include <stdbool.h>

#include "gemm.h"

/* The passes the GEMM kernels get at -O1 and -O2, in a model's module as
 * in a prebuilt set: promote and clean up, hoist the invariant address
 * arithmetic. They are vector code already, written blocked and rotated. */
#define KERNEL_PIPELINE                                                                                        \
  "function(sroa,early-cse,instcombine<no-verify-fixpoint>,simplifycfg,loop-mssa(licm),"                   \
  "instcombine<no-verify-fixpoint>)"

/* LLVM's features of the x86-64 micro-architecture levels (the psABI's),
 * each with the levels' below (LLVMGetHostCPUFeatures' names): what a
 * prebuilt set needs of the host, and what --jit --cpu LEVEL does. */
#define NNC_X86_64_V2_FEATURES "+cx16,+sahf,+popcnt,+sse3,+sse4.1,+sse4.2,+ssse3"
#define NNC_X86_64_V3_FEATURES NNC_X86_64_V2_FEATURES ",+avx,+avx2,+bmi,+bmi2,+f16c,+fma,+lzcnt,+movbe,+xsave"
#define NNC_X86_64_V4_FEATURES NNC_X86_64_V3_FEATURES ",+avx512f,+avx512bw,+avx512cd,+avx512dq,+avx512vl"

/* One prebuilt set: the kernels for one CPU level, vector width and dtype,
 * in gemm_fixed_kernel_names' order. */
typedef struct KernelSet {
  const char *cpu;      /* the LLVM CPU it was compiled for (x86-64-v3, ...) */
  const char *features; /* the features the host must have, "+avx2,+fma,..." */
  int vector_bits;
  bool f64;
  void (*fn[GEMM_FIXED_KERNELS])(void);
} KernelSet;

/* The sets linked into nnc (none on a machine the build has no levels for). */
extern const KernelSet kernel_sets[];
extern const int kernel_set_count;

/* The set for code of vector_bits and f64 on a host with `features`
 * (LLVMGetHostCPUFeatures' "+a,-b,..."), or NULL. */
const KernelSet *kernel_set_for(const char *features, int vector_bits, bool f64);

#endif
