/*
 * kernelgen.c - a tool of the build: the prebuilt GEMM kernel sets
 * (kernels.h). For each x86-64 level named on its command line and each
 * dtype it writes DIR/kernels_LEVEL_DTYPE.o, gemm.c's fixed kernels
 * compiled for that level at -O2 with KERNEL_PIPELINE (what a model's
 * module does to them), their symbols renamed to be the set's own and
 * hidden; then DIR/kernel_sets.c, the table nnc picks from at run time.
 *
 *   nnc-kernelgen DIR [x86-64-v2] [x86-64-v3] [x86-64-v4]
 */
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

/* The x86-64 micro-architecture levels (the psABI's), each with its widest
 * vectors and the host features it needs, its own and the levels' below
 * (LLVMGetHostCPUFeatures' names). */
typedef struct Level {
  const char *cpu, *id;
  int vector_bits;
  const char *features;
} Level;
static const Level levels[] = {{"x86-64-v2", "v2", 128, NNC_X86_64_V2_FEATURES},
                               {"x86-64-v3", "v3", 256, NNC_X86_64_V3_FEATURES},
                               {"x86-64-v4", "v4", 512, NNC_X86_64_V4_FEATURES}};

static const Level *level_named(const char *cpu) {
  for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
    if (strcmp(levels[i].cpu, cpu) == 0) return &levels[i];
  return NULL;
}

/* The symbol of kernel k of a set: nnc_kernels_v3_f32_2. */
static void set_symbol(char *out, size_t n, const Level *lv, bool f64, int k) {
  snprintf(out, n, "nnc_kernels_%s_%s_%d", lv->id, f64 ? "f64" : "f32", k);
}

static int fail(const char *what, char *msg) {
  fprintf(stderr, "nnc-kernelgen: %s: %s\n", what, msg ? msg : "");
  if (msg) LLVMDisposeMessage(msg);
  return 1;
}

/* One set's object file. */
static int write_set(const char *dir, const Level *lv, bool f64) {
  char *triple = LLVMGetDefaultTargetTriple(), *msg = NULL;
  LLVMTargetRef target;
  if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
    LLVMDisposeMessage(triple);
    return fail("no LLVM target", msg);
  }
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, lv->cpu, "", LLVMCodeGenLevelDefault,
                                                    LLVMRelocPIC, LLVMCodeModelDefault);
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef mod = gemm_kernels_module(ctx, f64, lv->vector_bits);
  LLVMSetTarget(mod, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(mod, layout);
  LLVMDisposeTargetData(layout);
  for (int k = 0; k < GEMM_FIXED_KERNELS; k++) {
    LLVMValueRef fn = LLVMGetNamedFunction(mod, gemm_fixed_kernel_names[k]);
    char name[64];
    set_symbol(name, sizeof name, lv, f64, k);
    LLVMSetValueName2(fn, name, strlen(name));
    LLVMSetVisibility(fn, LLVMHiddenVisibility); /* not part of libnnc.so's interface */
  }
  LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopUnrolling(opts, 0);
  LLVMErrorRef err = LLVMRunPasses(mod, KERNEL_PIPELINE, tm, opts);
  LLVMDisposePassBuilderOptions(opts);
  int rc = 0;
  if (err) {
    rc = fail("optimization failed", LLVMGetErrorMessage(err));
  } else {
    char path[4096];
    snprintf(path, sizeof path, "%s/kernels_%s_%s.o", dir, lv->id, f64 ? "f64" : "f32");
    if (LLVMTargetMachineEmitToFile(tm, mod, path, LLVMObjectFile, &msg)) rc = fail(path, msg);
  }
  LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  LLVMDisposeTargetMachine(tm);
  return rc;
}

/* The table of the sets (kernels.h). */
static int write_table(const char *dir, const Level **lv, int nlv) {
  char path[4096];
  snprintf(path, sizeof path, "%s/kernel_sets.c", dir);
  FILE *f = fopen(path, "w");
  if (!f) {
    perror(path);
    return 1;
  }
  fprintf(f, "/* Written by nnc-kernelgen: the prebuilt GEMM kernel sets (kernels.h). */\n#include \"kernels.h\"\n\n");
  for (int i = 0; i < nlv; i++)
    for (int d = 0; d < 2; d++)
      for (int k = 0; k < GEMM_FIXED_KERNELS; k++) {
        char name[64];
        set_symbol(name, sizeof name, lv[i], d, k);
        fprintf(f, "void %s(void);\n", name);
      }
  fprintf(f, "\nconst int kernel_set_count = %d;\nconst KernelSet kernel_sets[%d] = {\n", 2 * nlv,
          nlv ? 2 * nlv : 1);
  for (int i = 0; i < nlv; i++)
    for (int d = 0; d < 2; d++) {
      fprintf(f, "  {\"%s\", \"%s\", %d, %s, {", lv[i]->cpu, lv[i]->features, lv[i]->vector_bits,
              d ? "true" : "false");
      for (int k = 0; k < GEMM_FIXED_KERNELS; k++) {
        char name[64];
        set_symbol(name, sizeof name, lv[i], d, k);
        fprintf(f, "%s%s", k ? ", " : "", name);
      }
      fprintf(f, "}},\n");
    }
  if (nlv == 0) fprintf(f, "  {0},\n");
  fprintf(f, "};\n");
  if (fclose(f) != 0) {
    perror(path);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: nnc-kernelgen DIR [x86-64-v2|x86-64-v3|x86-64-v4]...\n");
    return 2;
  }
  const Level *lv[sizeof levels / sizeof levels[0]];
  int nlv = 0;
  for (int i = 2; i < argc; i++) {
    const Level *l = level_named(argv[i]);
    for (int j = 0; l && j < nlv; j++)
      if (lv[j] == l) l = NULL;
    if (!l) {
      fprintf(stderr, "nnc-kernelgen: unknown or repeated level '%s'\n", argv[i]);
      return 2;
    }
    lv[nlv++] = l;
  }
  LLVMInitializeNativeTarget();
  LLVMInitializeNativeAsmPrinter();
  for (int i = 0; i < nlv; i++)
    for (int d = 0; d < 2; d++)
      if (write_set(argv[1], lv[i], d)) return 1;
  int rc = write_table(argv[1], lv, nlv);
  LLVMShutdown();
  return rc;
}
