/*
 * test_jit_lazy.c - a JIT engine built with some of the functions compiles
 * any other on its first call (jit.c's compile_more): every entry of the
 * Engine works and gives the numbers, bit for bit, of an engine that
 * compiled everything up front, also after the first set was compiled as
 * two modules on two threads; threads that ask for functions at the same
 * time each get theirs; a lazily compiled module goes through the object
 * cache like any other.
 */
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>

#include "codegen.h"
#include "compile_text.h"
#include "jit.h"
#include "util.h"

/* one in registers (f64, small), one of loop nests and GEMMs with a
   batch_norm (f32), one whose output needs its targets (no predict) */
static const char *const models[] = {
    "model a {\n dtype f64\n input x[2]\n target t[1]\n"
    " y = x -> linear(4) -> relu -> linear(1)\n loss squared(y, t)\n}\n"
    "train {\n optimizer sgd(lr: 0.1)\n batch 4\n}\n",
    "model b {\n input x[24]\n target t[3]\n"
    " z = x -> linear(40) -> batch_norm -> relu -> linear(3)\n loss cross_entropy(z, t)\n}\n"
    "train {\n optimizer adam(lr: 0.01)\n batch 16\n}\n",
    "model c {\n input x[3]\n target t[1]\n"
    " z = x -> linear(5) -> tanh -> linear(1)\n r = z - t\n output r\n loss squared(z, t)\n}\n"
    "train {\n batch 2\n}\n",
};

static int failures;

static void check(bool ok, const char *what, int model, unsigned first) {
  if (!ok) {
    failures++;
    printf("FAILED: %s (model %d, compiled first 0x%x)\n", what, model, first);
  }
}

typedef struct Model {
  Source src;
  Arena arena;
  Graph *g;
  Layout *layout;
} Model;

static bool model_build(Model *m, const char *text) {
  arena_init(&m->arena);
  m->g = compile_text(&m->src, "lazy.nn", text, &m->arena, 0, &m->layout);
  return m->g != NULL;
}

/* Everything an Engine does, in one order, with its results in out[]
 * (losses, outputs, then the buffer). Returns the number of bytes. */
static size_t exercise(Engine *e, const Model *m, unsigned char *out, size_t cap) {
  const Layout *L = m->layout;
  size_t es = (size_t)L->elem_size, bytes = (size_t)L->total * es, at = 0;
  for (int64_t i = 0; i < L->total; i++) {
    double v = sin((double)i * 0.7) * 0.3;
    if (es == 8)
      ((double *)e->buf)[i] = v;
    else
      ((float *)e->buf)[i] = (float)v;
  }
  layout_init_states(m->g, L, e->buf);
  int64_t xc = engine_input_cols(m->g), tc = engine_target_cols(m->g), B = e->max_batch, rows = 2 * B + B / 2 + 2;
  unsigned char x[8 * 4096], t[8 * 512], y[8 * 512], loss[8 * 64];
  for (int64_t i = 0; i < xc * rows; i++) {
    double v = cos((double)i * 0.37);
    if (es == 8)
      ((double *)x)[i] = v;
    else
      ((float *)x)[i] = (float)v;
  }
  for (int64_t i = 0; i < tc * rows; i++) {
    double v = (double)((i / tc + i % tc) % tc == 0);
    if (es == 8)
      ((double *)t)[i] = v;
    else
      ((float *)t)[i] = (float)v;
  }
  double l[3];
  l[0] = e->train_step(e, x, t, B);
  l[1] = e->backward(e, x, t, B);
  e->update(e);
  l[2] = e->train_epoch(e, x, t, rows);
  e->forward(e, x, t, rows, y, loss);
  memcpy(out + at, l, sizeof l);
  at += sizeof l;
  memcpy(out + at, y, (size_t)(rows * shape_numel(&m->g->output->shape)) * es);
  at += (size_t)(rows * shape_numel(&m->g->output->shape)) * es;
  memcpy(out + at, loss, (size_t)rows * es);
  at += (size_t)rows * es;
  if (!graph_output_needs_targets(m->g)) {
    e->forward(e, x, NULL, rows, y, NULL);
    memcpy(out + at, y, (size_t)(rows * shape_numel(&m->g->output->shape)) * es);
    at += (size_t)(rows * shape_numel(&m->g->output->shape)) * es;
  }
  if (at + bytes > cap) return 0;
  memcpy(out + at, e->buf, bytes);
  return at + bytes;
}

/* The entries of directory dir (removed when `clear`). */
static int entries(const char *dir, bool clear) {
  DIR *d = opendir(dir);
  int n = 0;
  if (!d) return -1;
  for (struct dirent *de; (de = readdir(d));) {
    if (de->d_name[0] == '.') continue;
    n++;
    if (clear) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
      unlink(path);
    }
  }
  closedir(d);
  return n;
}

typedef struct Ask {
  Engine *e;
  const char *fn;
  void *addr;
} Ask;

static void *ask(void *arg) {
  Ask *a = arg;
  a->addr = jit_engine_symbol(a->e, a->fn);
  return NULL;
}

int main(void) {
  static unsigned char want[1 << 20], got[1 << 20];
  /* the sets a run asks for first (driver.c's make_engine), and single ones */
  const unsigned firsts[] = {CG_FORWARD | CG_TRAIN_EPOCH, CG_FORWARD, CG_PREDICT, CG_BACKWARD,
                             CG_UPDATE | CG_GRAD_PART | CG_FORWARD, CG_TRAIN_STEP};
  for (int mi = 0; mi < (int)(sizeof models / sizeof *models); mi++) {
    Model m;
    if (!model_build(&m, models[mi])) {
      check(false, "model compiles", mi, 0);
      continue;
    }
    Engine *all = jit_engine_new(m.g, m.layout, m.g->max_batch, 2, CG_ALL, false, NULL);
    check(all != NULL, "JIT compiles everything", mi, CG_ALL);
    size_t nwant = all ? exercise(all, &m, want, sizeof want) : 0;
    check(nwant > 0, "the up-front engine ran", mi, CG_ALL);
    if (all) all->destroy(all);
    /* on one thread, and on two: the first set split in two modules,
       whose local functions a later module defines again */
    for (int threads = 1; threads <= 2; threads++) {
      setenv("NNC_COMPILE_THREADS", threads == 1 ? "1" : "2", 1);
      for (size_t k = 0; k < sizeof firsts / sizeof *firsts; k++) {
        Engine *e = jit_engine_new(m.g, m.layout, m.g->max_batch, 2, firsts[k], false, NULL);
        check(e != NULL, "JIT compiles the first set", mi, firsts[k]);
        if (!e) continue;
        size_t ngot = exercise(e, &m, got, sizeof got);
        check(ngot == nwant && memcmp(got, want, nwant) == 0,
              threads == 1 ? "the lazily compiled functions give the same numbers"
                           : "the lazily compiled functions give the same numbers after a split build",
              mi, firsts[k]);
        e->destroy(e);
      }
    }
    unsetenv("NNC_COMPILE_THREADS");
    /* through the object cache: the later modules are entries of their
       own, and a second engine loads every one of them */
    char dir[] = "/tmp/nnc-lazy-XXXXXX";
    if (mkdtemp(dir)) {
      setenv("NNC_CACHE", "1", 1);
      setenv("NNC_CACHE_DIR", dir, 1);
      int made = 0;
      for (int round = 0; round < 2; round++) {
        Engine *c = jit_engine_new(m.g, m.layout, m.g->max_batch, 2, CG_FORWARD, false, NULL);
        check(c != NULL, "JIT compiles with the cache", mi, CG_FORWARD);
        if (!c) break;
        size_t ngot = exercise(c, &m, got, sizeof got);
        c->destroy(c);
        check(ngot == nwant && memcmp(got, want, nwant) == 0, "the cached functions give the same numbers", mi,
              CG_FORWARD);
        int n = entries(dir, false);
        if (round == 0) made = n;
        check(round == 0 ? n >= 4 : n == made, round == 0 ? "a cache entry for each module" : "every module from the cache",
              mi, CG_FORWARD);
      }
      entries(dir, true);
      rmdir(dir);
      setenv("NNC_CACHE", "0", 1);
      unsetenv("NNC_CACHE_DIR");
    }
    /* two threads ask for functions not compiled yet at the same time */
    Engine *e = jit_engine_new(m.g, m.layout, m.g->max_batch, 2, CG_FORWARD, false, NULL);
    if (e) {
      Ask a[3] = {{e, "backward", NULL}, {e, "update", NULL}, {e, "backward", NULL}};
      pthread_t th[3];
      for (int i = 0; i < 3; i++) pthread_create(&th[i], NULL, ask, &a[i]);
      for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
      check(a[0].addr && a[1].addr && a[0].addr == a[2].addr, "threads got the functions they asked for", mi,
            CG_FORWARD);
      check(jit_engine_symbol(e, "train_epoch") != NULL, "the symbol of a function not compiled yet", mi, CG_FORWARD);
      e->destroy(e);
    }
    arena_free(&m.arena);
  }
  printf("%d passed, %d failed\n", failures ? 0 : 1, failures ? 1 : 0);
  return failures != 0;
}
