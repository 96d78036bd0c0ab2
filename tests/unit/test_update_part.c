/*
 * test_update_part.c - the optimizer step in slices (engine.h's
 * update_part, which the threads of parallel.c run side by side):
 *   - engine_slice cuts a tensor into whole 64-byte lines, in order, the
 *     last part to the end, for any number of parts;
 *   - for a step that is elementwise in every tensor it writes (SGD,
 *     with momentum, Nesterov, weight decay; Adam and AdamW, whose scalar
 *     states b1^t and b2^t the tail call writes), the parts 0..P-1 of
 *     update_part, in any order, then the tail (part P), give the bits of
 *     update on the sum of the buffer's gradients and grad2's (another
 *     thread's, which update_part adds where it reads them), for P from 1
 *     to 5, f32 and f64, at every vector width (tensors shorter than a
 *     vector, longer, not a whole number of lines); the parts alone leave
 *     the scalar states as they were;
 *   - update_part can store a parameter's whole vectors non-temporally
 *     (its nt argument; !nontemporal: the lines leave the other cores'
 *     caches, which read them in their shards), the same bits either
 *     way, never its states (a slice's momentum, Adam's moments: read
 *     again by the same thread only), and update never does;
 *   - a step that is not (clip_norm's norm sums every gradient) has no
 *     update_part, and parallel.c updates on one thread;
 *   - asked for grad_part alone (threads), the module defines update_part
 *     and no update when the step has an update_part, else update (which
 *     parallel.c then calls); an engine without update compiles it at its
 *     first call, with update's bits.
 */
#include <llvm-c/Core.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "compile_text.h"
#include "engine.h"
#include "jit.h"
#include "layout_values.h"
#include "util.h"

static int failures;

static void check(bool ok, const char *what, const char *model, const char *bits, int parts) {
  if (!ok) {
    failures++;
    printf("FAILED: %s (model %.40s..., vector bits %s, %d parts)\n", what, model, bits, parts);
  }
}

static void test_slices(void) {
  const int64_t sizes[] = {1, 10, 15, 16, 17, 33, 64, 100, 256, 16384 + 7};
  for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
    for (int es = 4; es <= 8; es += 4)
      for (int64_t parts = 1; parts <= 5; parts++) {
        int64_t n = sizes[s], line = 64 / es, at = 0;
        for (int64_t k = 0; k < parts; k++) {
          int64_t lo, hi;
          engine_slice(n, es, k, parts, &lo, &hi);
          bool ok = lo == at && hi >= lo && (k == parts - 1 ? hi == n : hi % line == 0);
          if (!ok) {
            failures++;
            printf("FAILED: engine_slice(%lld, %d, %lld, %lld) = [%lld, %lld)\n", (long long)n, es, (long long)k,
                   (long long)parts, (long long)lo, (long long)hi);
          }
          at = hi;
        }
      }
}

static const char *const sliced[] = {
    MLP("f32", "sgd(lr: 0.1)", ""),
    MLP("f64", "sgd(lr: 0.1)", ""),
    MLP("f32", "sgd(lr: 0.05, momentum: 0.9, weight_decay: 0.01)", ""),
    MLP("f64", "sgd(lr: 0.05, momentum: 0.9, nesterov: true)", ""),
    MLP("f32", "adam(lr: 0.01)", ""),
    MLP("f64", "adamw(lr: 0.01, weight_decay: 0.1)", ""),
};
static const char *const whole[] = {
    MLP("f32", "sgd(lr: 0.1)", " clip_norm 1.0\n"),
    MLP("f32", "adam(lr: 0.01)", " clip_norm 1.0\n"),
};

/* A buffer of numbers that are not round, the states at theirs. */
static void fill(const Graph *g, const Layout *L, void *buf) {
  fill_values(g, L, buf);
  /* momentum's state as if some steps had run */
  for (int j = 0; j < g->states.len; j++) {
    const Node *s = g->states.items[j];
    if (s == g->lr || shape_numel(&s->shape) == 1) continue;
    for (int64_t i = 0; i < shape_numel(&s->shape); i++) put(L, buf, L->state_off[j] + i, cos((double)i * 0.11) * 0.01);
  }
}

/* buf's gradients += g2's, element by element (as parallel.c sums). */
static void add_grads(const Layout *L, void *buf, const void *g2) {
  for (int64_t i = L->grad_lo; i < L->grad_hi; i++)
    if (L->elem_size == 8)
      ((double *)buf)[i] += ((const double *)g2)[i];
    else
      ((float *)buf)[i] += ((const float *)g2)[i];
}

/* Do a and b hold the same bits outside the gradient range (update_part
 * reads the sum of the gradients without storing it)? */
static bool same_but_grads(const Layout *L, const void *a, const void *b) {
  size_t es = (size_t)L->elem_size, lo = (size_t)L->grad_lo * es, hi = (size_t)L->grad_hi * es;
  return memcmp(a, b, lo) == 0 && memcmp((const char *)a + hi, (const char *)b + hi, (size_t)L->total * es - hi) == 0;
}

/* Are the scalar states (but the learning rate) as fill left them? */
static bool scalars_as_filled(Engine *e) {
  const Graph *g = e->g;
  const Layout *L = e->layout;
  size_t bytes = (size_t)L->total * (size_t)L->elem_size;
  unsigned char *fresh = nnc_xmalloc(bytes);
  fill(g, L, fresh);
  bool same = true;
  for (int j = 0; j < g->states.len; j++) {
    const Node *s = g->states.items[j];
    if (shape_numel(&s->shape) != 1) continue;
    size_t at = (size_t)L->state_off[j] * (size_t)L->elem_size;
    same = same && memcmp((unsigned char *)e->buf + at, fresh + at, (size_t)L->elem_size) == 0;
  }
  free(fresh);
  return same;
}

static Engine *engine_for(const char *text, Source *src, Arena *arena) {
  Layout *layout;
  Graph *g = compile_text(src, "update_part.nn", text, arena, 0, &layout);
  if (!g) return NULL;
  return jit_engine_new(g, layout, g->max_batch, 2, CG_UPDATE | CG_GRAD_PART, false, NULL);
}

static void test_sliced(const char *text, const char *bits) {
  Source src;
  Arena arena;
  arena_init(&arena);
  Engine *e = engine_for(text, &src, &arena);
  check(e && e->update_part, "the step has an update_part", text, bits, 0);
  if (e && e->update_part) {
    size_t bytes = (size_t)e->layout->total * (size_t)e->layout->elem_size;
    unsigned char *want = nnc_xmalloc(bytes), *grad2 = nnc_xmalloc(bytes);
    fill_grad2(e->layout, grad2);
    fill(e->g, e->layout, e->buf);
    add_grads(e->layout, e->buf, grad2);
    e->update(e);
    memcpy(want, e->buf, bytes);
    for (int parts = 1; parts <= 5; parts++)
      for (int reverse = 0; reverse < 2; reverse++) {
        fill(e->g, e->layout, e->buf);
        /* the parameters' stores non-temporal or not: the same bits */
        for (int k = 0; k < parts; k++) e->update_part(e, reverse ? parts - 1 - k : k, parts, grad2, reverse);
        check(scalars_as_filled(e), "the parts leave the scalar states alone", text, bits, parts);
        e->update_part(e, parts, parts, grad2, reverse);
        check(same_but_grads(e->layout, e->buf, want),
              reverse ? "the parts, last first, give update's bits on the summed gradients"
                      : "the parts give update's bits on the summed gradients",
              text, bits, parts);
      }
    free(want);
    free(grad2);
  }
  if (e) e->destroy(e);
  arena_free(&arena);
}

/* How many lines of function `name` (the module of text's model with
 * update and update_part, 512-bit vectors) contain both a and b. */
static int lines_with(const char *text, const char *name, const char *a, const char *b) {
  Source src;
  Arena arena;
  arena_init(&arena);
  Layout *layout;
  Graph *g = compile_text(&src, "update_part.nn", text, &arena, 0, &layout);
  int count = -1;
  if (g) {
    LLVMContextRef ctx = LLVMContextCreate();
    CgTarget target = jit_target("x86-64-v4");
    LLVMModuleRef mod = codegen_module(ctx, g, layout, g->max_batch, CG_UPDATE | CG_GRAD_PART, &target, NULL);
    char *all = LLVMPrintModuleToString(mod), *fn = strstr(all, name);
    char *end = fn ? strstr(fn, "\n}\n") : NULL;
    count = 0;
    for (char *at = fn; at && at < end; at = strchr(at, '\n') + 1) {
      char *eol = strchr(at, '\n');
      char line[512];
      snprintf(line, sizeof line, "%.*s", (int)(eol - at), at);
      count += strstr(line, a) && strstr(line, b);
    }
    LLVMDisposeMessage(all);
    LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
  }
  arena_free(&arena);
  return count;
}

/* The MLP's tensors in vector loops: 40x24, 40, 33x40, 33, 10x33 (the
   last bias, 10 elements, is straight-line code): one non-temporal store
   each in update_part, with or without states, none in update. */
static void test_nontemporal(void) {
  for (size_t m = 0; m < sizeof sliced / sizeof *sliced; m++) {
    int nt = lines_with(sliced[m], "@nnc_m_update_part(", "store <", "!nontemporal");
    int in_update = lines_with(sliced[m], "@nnc_m_update(", "store", "!nontemporal");
    if (nt != 5 || in_update != 0) {
      failures++;
      printf("FAILED: %d non-temporal vector stores in update_part (want 5), %d in update (want 0): %.80s...\n", nt,
             in_update, sliced[m]);
    }
  }
}

/* The functions CG_GRAD_PART alone makes for text's model: update_part
 * or update, as codegen_module reports them and as the module defines
 * them (1: defined, 0: not). */
static void parts_module(const char *text, int *has_part, int *has_update, unsigned *built) {
  Source src;
  Arena arena;
  arena_init(&arena);
  Layout *layout;
  Graph *g = compile_text(&src, "update_part.nn", text, &arena, 0, &layout);
  *has_part = *has_update = -1;
  if (g) {
    LLVMContextRef ctx = LLVMContextCreate();
    CgTarget target = jit_target("x86-64-v4");
    CgInfo info = {0};
    LLVMModuleRef mod = codegen_module(ctx, g, layout, g->max_batch, CG_GRAD_PART, &target, &info);
    char *all = LLVMPrintModuleToString(mod);
    *has_part = strstr(all, "@nnc_m_update_part(") != NULL;
    *has_update = strstr(all, "@nnc_m_update(") != NULL;
    *built = info.built_fns;
    LLVMDisposeMessage(all);
    LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
  }
  arena_free(&arena);
}

static void test_grad_part_alone(void) {
  for (size_t m = 0; m < sizeof sliced / sizeof *sliced; m++) {
    int part, update;
    unsigned built = 0;
    parts_module(sliced[m], &part, &update, &built);
    check(part == 1 && update == 0 && !(built & CG_UPDATE), "grad_part alone: update_part, no update", sliced[m],
          "512", 0);
  }
  for (size_t m = 0; m < sizeof whole / sizeof *whole; m++) {
    int part, update;
    unsigned built = 0;
    parts_module(whole[m], &part, &update, &built);
    check(part == 0 && update == 1 && (built & CG_UPDATE), "grad_part alone, no update_part: update", whole[m],
          "512", 0);
  }
  /* an engine of threads calls update only on its first call: the same bits */
  Source src;
  Arena arena;
  arena_init(&arena);
  Layout *layout;
  Graph *g = compile_text(&src, "update_part.nn", sliced[4], &arena, 0, &layout);
  Engine *lazy = g ? jit_engine_new(g, layout, g->max_batch, 2, CG_GRAD_PART, false, NULL) : NULL;
  Engine *whole_e = g ? jit_engine_new(g, layout, g->max_batch, 2, CG_UPDATE, false, NULL) : NULL;
  check(lazy && whole_e && lazy->update_part, "engines with and without update", sliced[4], "native", 0);
  if (lazy && whole_e) {
    size_t bytes = (size_t)layout->total * (size_t)layout->elem_size;
    fill(g, layout, lazy->buf);
    fill(g, layout, whole_e->buf);
    lazy->update(lazy);
    whole_e->update(whole_e);
    check(memcmp(lazy->buf, whole_e->buf, bytes) == 0, "update compiled at its first call gives update's bits",
          sliced[4], "native", 0);
  }
  if (lazy) lazy->destroy(lazy);
  if (whole_e) whole_e->destroy(whole_e);
  arena_free(&arena);
}

static void test_whole(const char *text) {
  Source src;
  Arena arena;
  arena_init(&arena);
  Engine *e = engine_for(text, &src, &arena);
  check(e && !e->update_part, "the step has no update_part", text, "native", 0);
  if (e) e->destroy(e);
  arena_free(&arena);
}

int main(void) {
  setenv("NNC_CACHE", "0", 1);
  test_slices();
  test_nontemporal();
  test_grad_part_alone();
  const char *widths[] = {"128", "256", NULL};
  for (size_t w = 0; w < sizeof widths / sizeof *widths; w++) {
    if (widths[w])
      setenv("NNC_VECTOR_BITS", widths[w], 1);
    else
      unsetenv("NNC_VECTOR_BITS");
    for (size_t m = 0; m < sizeof sliced / sizeof *sliced; m++) test_sliced(sliced[m], widths[w] ? widths[w] : "native");
  }
  for (size_t m = 0; m < sizeof whole / sizeof *whole; m++) test_whole(whole[m]);
  if (failures) printf("%d failed\n", failures);
  else printf("update_part: all passed\n");
  return failures != 0;
}
