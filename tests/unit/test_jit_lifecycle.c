/*
 * test_jit_lifecycle.c - compile, run and dispose many models in one
 * process. In the sanitizer build, LeakSanitizer checks that every JIT,
 * module, context and target machine is released.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "compile_text.h"
#include "interp.h"
#include "jit.h"
#include "util.h"

static const char *const models[] = {
    "model a {\n dtype f64\n input x[2]\n target t[1]\n"
    " y = x -> linear(4) -> relu -> linear(1)\n loss squared(y, t)\n}\n",
    "model b {\n input x[3]\n target t[2]\n"
    " z = x -> linear(8) -> tanh -> linear(2)\n loss cross_entropy(z, t)\n}\n"
    "train {\n optimizer adam(lr: 0.01)\n batch 4\n}\n",
    "model c {\n input x[20]\n target t[1]\n"
    " z = x -> linear(20) -> sigmoid -> linear(1)\n loss bce_logits(z, t)\n}\n"
    "train {\n batch 8\n}\n",
};

static int failures;

static void check(int ok, const char *what, int round, int model) {
  if (!ok) {
    failures++;
    printf("FAILED: %s (round %d, model %d)\n", what, round, model);
  }
}

/* One model: compile both ways, take a step with each, compare losses. */
static void run_model(int round, int m) {
  const char *text = models[m];
  Source src;
  Arena arena;
  arena_init(&arena);
  Layout *layout;
  Graph *g = compile_text(&src, "lifecycle.nn", text, &arena, 0, &layout);
  check(g != NULL, "model compiles", round, m);
  if (!g) {
    arena_free(&arena);
    return;
  }
  Engine *jit = jit_engine_new(g, layout, g->max_batch, round % 3 == 0 ? 0 : 2, CG_ALL, false, NULL);
  Engine *ref = interp_engine_new(g, layout, g->max_batch);
  check(jit != NULL, "JIT compiles", round, m);
  if (jit) {
    size_t bytes = (size_t)layout->total * (size_t)layout->elem_size;
    for (int64_t i = 0; i < layout->total; i++) {
      double v = sin((double)i * 0.7) * 0.3;
      if (layout->elem_size == 8)
        ((double *)jit->buf)[i] = v;
      else
        ((float *)jit->buf)[i] = (float)v;
    }
    layout_init_states(g, layout, jit->buf);
    memcpy(ref->buf, jit->buf, bytes);
    int64_t xc = engine_input_cols(g), tc = engine_target_cols(g), n = g->max_batch;
    double x64[512], t64[64];
    float x32[512], t32[64];
    for (int64_t i = 0; i < xc * n && i < 512; i++) x32[i] = (float)(x64[i] = cos((double)i));
    for (int64_t i = 0; i < tc * n && i < 64; i++) t32[i] = (float)(t64[i] = (double)((i % tc) == 0));
    const void *x = layout->elem_size == 8 ? (const void *)x64 : (const void *)x32;
    const void *t = layout->elem_size == 8 ? (const void *)t64 : (const void *)t32;
    double lj = jit->train_step(jit, x, t, n), li = ref->train_step(ref, x, t, n);
    check(fabs(lj - li) <= 1e-5 * fmax(1, fabs(li)), "JIT and interpreter agree", round, m);
    /* backward then update, separately, must agree too */
    jit->backward(jit, x, t, n);
    ref->backward(ref, x, t, n);
    jit->update(jit);
    ref->update(ref);
    double worst = 0;
    for (int64_t i = 0; i < layout->total; i++) {
      double a = layout->elem_size == 8 ? ((double *)jit->buf)[i] : ((float *)jit->buf)[i];
      double b = layout->elem_size == 8 ? ((double *)ref->buf)[i] : ((float *)ref->buf)[i];
      worst = fmax(worst, fabs(a - b) / fmax(1, fabs(b)));
    }
    check(worst <= 1e-5, "update agrees with the interpreter", round, m);
    jit->destroy(jit);
  }
  ref->destroy(ref);
  arena_free(&arena);
}

/* Resident kB of the mapping that holds addr (/proc/self/smaps), or -1. */
static long resident_kb(const void *addr) {
  FILE *f = fopen("/proc/self/smaps", "r");
  if (!f) return -1;
  char line[512];
  bool inside = false;
  long kb = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) /* a mapping's first line */
      inside = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
    else if (inside && sscanf(line, "Rss: %ld kB", &kb) == 1)
      break;
  }
  fclose(f);
  return kb;
}

int main(void) {
  int rounds = 4;
  for (int r = 0; r < rounds; r++) {
    for (int m = 0; m < (int)(sizeof models / sizeof models[0]); m++) run_model(r, m);
    if (r == 0) {
      /* as the nnc command does after compiling: the compiler's code pages
         leave the process, and the next rounds compile with them faulted
         back in */
      const void *code = (const void *)(uintptr_t)jit_engine_new;
      long before = resident_kb(code);
      size_t bytes = nnc_release_code_pages(code);
      long after = resident_kb(code);
      check(bytes > (size_t)1 << 20, "the code segment (with LLVM) was found and released", r, -1);
      check(before > 1024 && after >= 0 && after < before / 2, "its resident pages left the process", r, -1);
      if (getenv("VERBOSE") || after >= before / 2) printf("resident before %ld kB, after %ld kB\n", before, after);
    }
  }
  printf("%d passed, %d failed\n", failures ? 0 : 1, failures ? 1 : 0);
  return failures != 0;
}
