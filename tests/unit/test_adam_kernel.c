/*
 * test_adam_kernel.c - Adam's step of a parameter is a prebuilt kernel
 * (gemm.h's GEMM_OPT_ADAM, optstep.c):
 *   - a module whose kernels are prebuilt (GEMM_KERNELS_PREBUILT) calls
 *     it once per parameter in train_step, update and update_part
 *     (also with weight decay or clip_norm, on the gradient the module
 *     stores), but for a tensor whose last vector has one lane, which
 *     keeps its loop; a module that makes its own kernels (another CPU,
 *     --emit obj) keeps every loop and calls none, and so do AdamW's
 *     decay of the parameter and a module of 128-bit vectors;
 *   - the kernel gives the bits of the module's own loops: update of
 *     an engine on the host's prebuilt set against one compiled for the
 *     host's CPU by name (its own loops), f32 and f64, at 256 bits and
 *     at 512 when the host has AVX-512 (at 128 bits the module keeps its
 *     loops: the x86-64-v2 set has no FMA), and at the host's width
 *     update_part too (its parts, with and without non-temporal stores,
 *     on the sum of two gradients), with tensors shorter than a vector,
 *     of whole vectors and of vectors and a masked rest, Adam's default
 *     and other hyperparameters.
 */
#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "compile_text.h"
#include "engine.h"
#include "expect.h"
#include "gemm.h"
#include "jit.h"
#include "kernels.h"
#include "layout_values.h"
#include "util.h"

/* Adam's steps the kernel computes: each but the bias of 33 elements
   (below) is a call (with weight decay or clip_norm, of the gradient the
   module stores, as the loop reads it) */
static const char *const called[] = {
    MLP("f32", "adam(lr: 0.01)", ""),
    MLP("f64", "adam(lr: 0.01)", ""),
    MLP("f32", "adam(lr: 0.003, beta1: 0.8, beta2: 0.99, eps: 1e-6)", ""),
    MLP("f64", "adam(lr: 0.01, weight_decay: 0.1)", ""),
    MLP("f32", "adam(lr: 0.01)", " clip_norm 1.0\n"),
};
/* AdamW's decay of the parameter: its own loops */
static const char *const not_called[] = {
    MLP("f32", "adamw(lr: 0.01, weight_decay: 0.1)", ""),
};

/* The text of the module of text's model (train_step, update and
 * update_part) for `cpu`, its kernels made as `kernels` says. */
static char *module_text(const char *text, const char *cpu, CgGemmKernels kernels) {
  Source src;
  Arena arena;
  arena_init(&arena);
  Layout *L;
  Graph *g = compile_text(&src, "adam.nn", text, &arena, 0, &L);
  char *out = NULL;
  if (g) {
    LLVMContextRef ctx = LLVMContextCreate();
    CgTarget target = jit_target(cpu);
    target.gemm_kernels = kernels;
    LLVMModuleRef mod =
        codegen_module(ctx, g, L, g->max_batch, CG_TRAIN_STEP | CG_UPDATE | CG_GRAD_PART, &target, NULL);
    char *all = LLVMPrintModuleToString(mod);
    out = nnc_xstrdup(all);
    LLVMDisposeMessage(all);
    LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
  }
  arena_free(&arena);
  return out;
}

/* The text of function `name` in a module's text, or NULL. */
static char *function_text(const char *module, const char *name) {
  const char *fn = strstr(module, name), *end = fn ? strstr(fn, "\n}\n") : NULL;
  if (!end) return NULL;
  char *out = nnc_xmalloc((size_t)(end - fn) + 1);
  memcpy(out, fn, (size_t)(end - fn));
  out[end - fn] = 0;
  return out;
}

static int count(const char *text, const char *what) {
  int n = 0;
  for (const char *p = text; p && (p = strstr(p, what)); p++) n++;
  return n;
}

static void test_calls(void) {
  const char *fns[] = {"@nnc_m_train_step(", "@nnc_m_update(", "@nnc_m_update_part("};
  for (size_t m = 0; m < sizeof called / sizeof *called; m++) {
    char *pre_mod = module_text(called[m], "x86-64-v4", GEMM_KERNELS_PREBUILT);
    EXPECT(pre_mod);
    for (int f = 0; f < 3 && pre_mod; f++) {
      char *pre = function_text(pre_mod, fns[f]);
      /* a step that is not sliced (clip_norm's sums, Adam's weight decay
         on the gradient) has no update_part */
      if (!pre && f == 2 && m >= 3) continue;
      EXPECT(pre);
      /* six parameters, five calls: the bias of 33 elements keeps its
         loop (its vectors and its last one) */
      EXPECT(count(pre, "call void @nnc.opt.adam(") == 5);
      EXPECT(count(pre, "@llvm.sqrt.v") == 2);
      free(pre);
    }
    free(pre_mod);
  }
  /* a module that makes its kernels: every step its own loop */
  char *own_mod = module_text(called[0], "x86-64-v4", GEMM_KERNELS_OWN);
  for (int f = 0; f < 3; f++) {
    char *own = own_mod ? function_text(own_mod, fns[f]) : NULL;
    EXPECT(own && count(own, "@nnc.opt.adam") == 0 && count(own, "@llvm.sqrt.v") > 2);
    free(own);
  }
  free(own_mod);
  for (size_t m = 0; m < sizeof not_called / sizeof *not_called; m++) {
    char *pre = module_text(not_called[m], "x86-64-v4", GEMM_KERNELS_PREBUILT);
    EXPECT(pre && count(pre, "call void @nnc.opt.adam(") == 0 && count(pre, "@llvm.sqrt.v") > 0);
    free(pre);
  }
  /* 128-bit vectors (the x86-64-v2 set, without FMA): the module's loops */
  char *v2 = module_text(called[0], "x86-64-v2", GEMM_KERNELS_PREBUILT);
  EXPECT(v2 && count(v2, "call void @nnc.opt.adam(") == 0 && count(v2, "@llvm.sqrt.v") > 0);
  free(v2);
}

/* Numbers that are not round everywhere, the moments as after some
 * steps (v not negative), the scalar states at their starting values. */
static void fill(const Graph *g, const Layout *L, void *buf) {
  fill_values(g, L, buf);
  for (int j = 0; j < g->states.len; j++) {
    const Node *s = g->states.items[j];
    if (shape_numel(&s->shape) == 1) continue;
    for (int64_t i = 0; i < shape_numel(&s->shape); i++)
      put(L, buf, L->state_off[j] + i, fabs(cos((double)i * 0.11 + j)) * 0.01);
  }
}

/* update three times, then update_part in 3 parts and the tail on the sum
 * of the buffer's gradients and g2's: the buffer after each. */
static void run(Engine *e, const void *g2, bool nt, unsigned char *after_update, unsigned char *after_parts) {
  if (!e->update_part) { /* a step that is not sliced: update alone */
    g2 = NULL;
    nt = false;
  }
  size_t bytes = (size_t)e->layout->total * (size_t)e->layout->elem_size;
  fill(e->g, e->layout, e->buf);
  for (int i = 0; i < 3; i++) e->update(e);
  memcpy(after_update, e->buf, bytes);
  fill(e->g, e->layout, e->buf);
  for (int k = 0; k <= 3 && e->update_part; k++) e->update_part(e, k, 3, g2, nt);
  memcpy(after_parts, e->buf, bytes);
}

/* update (and update_part when `sliced`, whose module carries grad_part
 * too) of text's model: the same bits with the kernel as with the
 * module's loops. */
static void same_bits(const char *text, const char *level, const char *bits, bool sliced) {
  Source src;
  Arena arena;
  arena_init(&arena);
  Layout *L;
  Graph *g = compile_text(&src, "adam.nn", text, &arena, 0, &L);
  EXPECT(g);
  if (!g) return;
  /* the host's prebuilt set (native), and the module's own loops for the
     host's CPU by name (another CPU than native: no prebuilt set) */
  unsigned fns = sliced ? CG_UPDATE | CG_GRAD_PART : CG_UPDATE;
  Engine *pre = jit_engine_new(g, L, g->max_batch, 2, fns, false, NULL);
  char *host = LLVMGetHostCPUName();
  Engine *own = jit_engine_new(g, L, g->max_batch, 2, fns, false, host);
  LLVMDisposeMessage(host);
  EXPECT(pre && own && !pre->update_part == !own->update_part && (!sliced || pre->update_part));
  if (pre && own && !pre->update_part == !own->update_part) {
    size_t bytes = (size_t)L->total * (size_t)L->elem_size;
    unsigned char *g2 = nnc_xmalloc(bytes), *b[4];
    for (int i = 0; i < 4; i++) b[i] = nnc_xmalloc(bytes);
    fill_grad2(L, g2);
    for (int nt = 0; nt < (sliced ? 2 : 1); nt++) {
      run(pre, g2, nt, b[0], b[1]);
      run(own, g2, nt, b[2], b[3]);
      bool upd = memcmp(b[0], b[2], bytes) == 0, parts = memcmp(b[1], b[3], bytes) == 0;
      if (!upd || !parts)
        printf("  (%s, vector bits %s, nt %d: update %s, update_part %s) %.60s\n", level, bits, nt,
               upd ? "same" : "differs", parts ? "same" : "differs", text);
      EXPECT(upd && parts);
    }
    free(g2);
    for (int i = 0; i < 4; i++) free(b[i]);
  }
  if (pre) pre->destroy(pre);
  if (own) own->destroy(own);
  arena_free(&arena);
}

int main(void) {
  setenv("NNC_CACHE", "0", 1);
  test_calls();
  /* each width with calls whose set the host can run (at 128 bits the
     module keeps its loops: test_calls), the set's level compiling the
     module's own loops: at the host's width every step's update, and
     update_part of Adam's defaults (the steps with weight decay or
     clip_norm have none; other hyperparameters are other constants); at
     a narrower one update, f32 and f64 (unit.update_part checks that
     update_part gives update's bits at every width) */
  const struct {
    const char *bits, *level;
  } widths[] = {{"256", "x86-64-v3"}, {"512", "x86-64-v4"}};
  char *features = LLVMGetHostCPUFeatures();
  for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
    if (!kernel_set_for(features, atoi(widths[w].bits), false)) continue;
    setenv("NNC_VECTOR_BITS", widths[w].bits, 1);
    bool widest = w == 1 || !kernel_set_for(features, 512, false);
    size_t models = widest ? sizeof called / sizeof *called : 2;
    for (size_t m = 0; m < models; m++)
      same_bits(called[m], widths[w].level, widths[w].bits, widest && m < 2);
  }
  LLVMDisposeMessage(features);
  if (failures)
    printf("%d failed\n", failures);
  else
    printf("adam_kernel: all passed\n");
  return failures != 0;
}
