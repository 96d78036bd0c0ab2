/*
 * test_fixed_epi.c - the common GEMM epilogues (gemm.h's GEMM_EPI_RELU_BIAS
 * and after) come with the prebuilt kernel set:
 *   - a module whose kernels are prebuilt (GEMM_KERNELS_PREBUILT) calls
 *     the set's epilogue for a linear layer's bias and relu, its bias, a
 *     gradient's relu mask, a convolution's bias and relu, or its batch
 *     normalization (running statistics) and relu, and defines
 *     only the others (W2's SGD update of the last layer);
 *   - a module that makes its own kernels defines every epilogue it uses,
 *     and calls none of the set's;
 *   - the set's epilogue is the code the module would have made for the
 *     same key (the body of W2's first epilogue, relu(x W + b), and of the
 *     convolution's).
 */
#include <llvm-c/Core.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "compile_text.h"
#include "expect.h"
#include "gemm.h"
#include "jit.h"
#include "util.h"

static const char W2[] = "model w {\n input x[64]\n target t[10]\n"
                         " y = x -> linear(256) -> relu -> linear(256) -> relu -> linear(10)\n"
                         " loss cross_entropy(y, t)\n}\ntrain {\n optimizer sgd(lr: 0.1)\n batch 64\n}\n";
static const char BN[] = "model b {\n input x[2, 8, 8]\n target t[2]\n"
                         " y = x -> conv2d(16, kernel: 3, padding: 1, bias: false) -> batch_norm -> relu -> flatten"
                         " -> linear(2)\n loss mse(y, t)\n}\ntrain {\n optimizer sgd(lr: 0.1)\n batch 4\n}\n";
static const char CONV[] = "model c {\n input x[2, 8, 8]\n target t[2]\n"
                           " y = x -> conv2d(16, kernel: 3, padding: 1) -> relu -> flatten -> linear(2)\n"
                           " loss mse(y, t)\n}\ntrain {\n optimizer sgd(lr: 0.1)\n batch 4\n}\n";

/* The text of the module of `text`'s training step and forward pass,
 * for AVX-512, its kernels made as `kernels` says. */
static char *module_text(const char *name, const char *text, CgGemmKernels kernels) {
  Source src;
  Arena arena;
  arena_init(&arena);
  Layout *L;
  Graph *g = compile_text(&src, name, text, &arena, 0, &L);
  if (!g) return NULL;
  LLVMContextRef ctx = LLVMContextCreate();
  CgTarget target = jit_target("x86-64-v4");
  target.gemm_kernels = kernels;
  LLVMModuleRef mod = codegen_module(ctx, g, L, g->max_batch, CG_TRAIN_STEP | CG_FORWARD, &target, NULL);
  char *all = LLVMPrintModuleToString(mod), *out = nnc_xstrdup(all);
  LLVMDisposeMessage(all);
  LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  arena_free(&arena);
  return out;
}

static int count(const char *text, const char *what) {
  int n = 0;
  for (const char *p = text; (p = strstr(p, what)); p++) n++;
  return n;
}

/* The body of function `name` in text, from its "{" to its "}". */
static char *body_of(const char *text, const char *name) {
  const char *at = strstr(text, name);
  if (!at) return NULL;
  const char *open = strstr(at, "{\n"), *end = open ? strstr(open, "\n}\n") : NULL;
  if (!end) return NULL;
  char *out = nnc_xstrdup(open);
  out[end - open] = 0;
  return out;
}

static void same_body(const char *own, const char *own_name, const char *set, const char *set_name) {
  char *a = body_of(own, own_name), *b = body_of(set, set_name);
  EXPECT(a && b && strcmp(a, b) == 0);
  free(a);
  free(b);
}

int main(void) {
  char *pre = module_text("w2.nn", W2, GEMM_KERNELS_PREBUILT), *own = module_text("w2.nn", W2, GEMM_KERNELS_OWN);
  char *cpre = module_text("c.nn", CONV, GEMM_KERNELS_PREBUILT), *cown = module_text("c.nn", CONV, GEMM_KERNELS_OWN);
  EXPECT(pre && own && cpre && cown);
  if (!pre || !own || !cpre || !cown) return 1;
  /* W2: relu(x W + b) twice, x W + b, the relu masks of two gradients,
     and the last layer's SGD update, its own */
  EXPECT(count(pre, "declare void @nnc.gemm.epi_relu_bias(") == 1);
  EXPECT(count(pre, "ptr @nnc.gemm.epi_relu_bias,") >= 2);
  EXPECT(count(pre, "ptr @nnc.gemm.epi_bias,") >= 1);
  EXPECT(count(pre, "ptr @nnc.gemm.epi_relu_mask,") >= 1);
  EXPECT(count(pre, "define internal void @nnc.gemm.epi_e") == 1);
  EXPECT(count(own, "define internal void @nnc.gemm.epi_e") == 4);
  EXPECT(count(own, "@nnc.gemm.epi_relu") == 0 && count(own, "@nnc.gemm.epi_bias") == 0);
  EXPECT(count(cpre, "ptr @nnc.gemm.epi_relu_channel,") >= 1);
  EXPECT(count(cown, "@nnc.gemm.epi_relu_channel") == 0);
  /* batch_norm's scale and shift with the running statistics, and relu (forward) */
  char *bpre = module_text("b.nn", BN, GEMM_KERNELS_PREBUILT);
  EXPECT(bpre && count(bpre, "ptr @nnc.gemm.epi_relu_affine,") >= 1);
  free(bpre);

  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef mod = gemm_kernels_module(ctx, false, 512);
  char *set = LLVMPrintModuleToString(mod);
  same_body(own, "define internal void @nnc.gemm.epi_e0(", set, "void @nnc.gemm.epi_relu_bias(");
  same_body(cown, "define internal void @nnc.gemm.epi_e0(", set, "void @nnc.gemm.epi_relu_channel(");
  LLVMDisposeMessage(set);
  LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  free(pre), free(own), free(cpre), free(cown);
  if (failures) printf("%d failed\n", failures);
  else printf("fixed epilogues: all passed\n");
  return failures != 0;
}
