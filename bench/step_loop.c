/*
 * step_loop.c - the compiled train_step called from C: compile FILE.nn with
 * libnnc (-O2, native, one thread), then call train_step on consecutive
 * batches of the train block's rows (max_batch rows a call, from the start,
 * wrapping around). Two ways to time it:
 *
 *   step_loop FILE.nn INIT.safetensors CALLS ROUNDS
 *     parameters from INIT; CALLS calls a round, timed as a whole (CPU
 *     time); prints "ns/call X" for the fastest of ROUNDS rounds. The
 *     baseline of bench/python_overhead.py, for steps of nanoseconds.
 *   step_loop --per-step FILE.nn STEPS
 *     parameters initialized as `nnc --train` does; 3 untimed steps, then
 *     STEPS steps each timed; prints the median and mean wall time of a step,
 *     as bench/torch_cnn.py does for PyTorch, and the median CPU time of a
 *     step (steadier on a shared machine). bench/cnn's nnc column.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nnc.h"

static double now(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, long n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* The compiled model, its buffer and its training rows. */
typedef struct Bench {
  NncModel *m;
  const NncFunctions *f;
  const NncLayout *L;
  void *buf;
  NncDataset tr, va;
  int64_t batches; /* whole batches only */
} Bench;

/* Compile and load FILE; parameters from init, or initialized when NULL. */
static int bench_open(Bench *b, const char *file, const char *init, NncDiagnostics *d) {
  b->m = nnc_compile_file(file, NULL, d);
  b->f = b->m ? nnc_model_jit(b->m, 2) : NULL;
  b->buf = b->m ? nnc_buffer_new(b->m) : NULL;
  if (!b->f || nnc_model_data(b->m, &b->tr, &b->va, d) != 0) return -1;
  if (init ? nnc_model_load(b->m, b->buf, init, d) != 0 : (nnc_model_init_params(b->m, b->buf), 0)) return -1;
  b->L = nnc_model_layout(b->m);
  b->batches = b->tr.rows / b->L->max_batch;
  return b->batches > 0 ? 0 : -1;
}

/* One training step on batch number `call` (wrapping around); its loss. */
static double bench_step(const Bench *b, long call) {
  const NncLayout *L = b->L;
  int64_t batch = L->max_batch, at = (call % b->batches) * batch;
  const char *x = (const char *)b->tr.x + (size_t)at * (size_t)L->input_cols * (size_t)L->elem_size;
  const char *t = (const char *)b->tr.t + (size_t)at * (size_t)L->target_cols * (size_t)L->elem_size;
  return L->dtype == NNC_F64 ? b->f->f64.train_step(b->buf, (const double *)x, (const double *)t, batch)
                             : b->f->f32.train_step(b->buf, (const float *)x, (const float *)t, batch);
}

static void bench_close(Bench *b) {
  nnc_dataset_free(&b->tr);
  nnc_dataset_free(&b->va);
  free(b->buf);
  nnc_model_free(b->m);
}

static void time_rounds(const Bench *b, long calls, long rounds) {
  double best = 1e30, sink = 0;
  for (long r = 0; r < rounds; r++) {
    double t0 = now(CLOCK_PROCESS_CPUTIME_ID);
    for (long c = 0; c < calls; c++) sink += bench_step(b, c);
    double ns = (now(CLOCK_PROCESS_CPUTIME_ID) - t0) * 1e9 / (double)calls;
    if (ns < best) best = ns;
  }
  printf("ns/call %.1f\n", best);
  printf("checksum %.6g\n", sink);
}

static void time_steps(const Bench *b, long steps) {
  double *ms = calloc((size_t)steps, sizeof *ms), *cpu = calloc((size_t)steps, sizeof *cpu), sum = 0, sink = 0;
  for (long s = -3; s < steps; s++) {
    double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
    sink += bench_step(b, s + 3);
    if (s < 0) continue;
    cpu[s] = (now(CLOCK_THREAD_CPUTIME_ID) - c0) * 1e3;
    sum += ms[s] = (now(CLOCK_MONOTONIC) - t0) * 1e3;
  }
  printf("ms/step %.3f\n", median(ms, steps));
  printf("ms/step mean %.3f\n", sum / (double)steps);
  printf("cpu ms/step %.3f\n", median(cpu, steps));
  printf("steps %ld\n", steps);
  printf("loss sum %.6g\n", sink);
  free(ms);
  free(cpu);
}

int main(int argc, char **argv) {
  bool per_step = argc == 4 && strcmp(argv[1], "--per-step") == 0;
  if (!(per_step && atol(argv[3]) >= 1) && !(argc == 5 && atol(argv[3]) >= 1 && atol(argv[4]) >= 1)) {
    fprintf(stderr, "usage: step_loop FILE.nn INIT.safetensors CALLS ROUNDS\n"
                    "       step_loop --per-step FILE.nn STEPS\n");
    return 2;
  }
  NncDiagnostics d = {0};
  Bench b = {0};
  int rc = bench_open(&b, argv[per_step ? 2 : 1], per_step ? NULL : argv[2], &d);
  if (rc != 0)
    for (int i = 0; i < d.count; i++) fputs(d.items[i].text, stderr);
  else if (per_step)
    time_steps(&b, atol(argv[3]));
  else
    time_rounds(&b, atol(argv[3]), atol(argv[4]));
  nnc_diagnostics_free(&d);
  bench_close(&b);
  return rc != 0;
}
