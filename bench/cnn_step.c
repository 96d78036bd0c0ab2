/*
 * cnn_step.c - the compiled train_step of a model on its training data,
 * timed step by step: compile FILE.nn with libnnc (-O2, native, one
 * thread), initialize its parameters as `nnc --train` does, run 3 untimed
 * steps, then STEPS steps on consecutive batches of the train block's rows
 * (max_batch rows each, from the start, wrapping around), and print the
 * median and mean wall time of a step, as bench/torch_cnn.py does for
 * PyTorch, and the median CPU time of a step (steadier on a shared
 * machine).
 *
 *   cnn_step FILE.nn STEPS
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nnc.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double now(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double median(double *v, long n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  if (argc != 3 || atol(argv[2]) < 1) {
    fprintf(stderr, "usage: cnn_step FILE.nn STEPS\n");
    return 2;
  }
  long steps = atol(argv[2]);
  NncDiagnostics d = {0};
  NncModel *m = nnc_compile_file(argv[1], NULL, &d);
  const NncFunctions *f = m ? nnc_model_jit(m, 2) : NULL;
  void *buf = m ? nnc_buffer_new(m) : NULL;
  NncDataset tr = {0}, va = {0};
  if (!f || nnc_model_data(m, &tr, &va, &d) != 0) {
    for (int i = 0; i < d.count; i++) fputs(d.items[i].text, stderr);
    return 1;
  }
  nnc_model_init_params(m, buf);
  const NncLayout *L = nnc_model_layout(m);
  int64_t batch = L->max_batch, batches = tr.rows / batch; /* whole batches only */
  size_t xrow = (size_t)L->input_cols * (size_t)L->elem_size, trow = (size_t)L->target_cols * (size_t)L->elem_size;
  double *ms = calloc((size_t)steps, sizeof *ms), *cpu = calloc((size_t)steps, sizeof *cpu), sum = 0, sink = 0;
  for (long s = -3; s < steps; s++) {
    int64_t at = ((s + 3) % batches) * batch;
    const char *x = (const char *)tr.x + (size_t)at * xrow, *t = (const char *)tr.t + (size_t)at * trow;
    double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
    sink += L->dtype == NNC_F64 ? f->f64.train_step(buf, (const double *)x, (const double *)t, batch)
                                : f->f32.train_step(buf, (const float *)x, (const float *)t, batch);
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
  nnc_dataset_free(&tr);
  nnc_dataset_free(&va);
  nnc_diagnostics_free(&d);
  free(buf);
  nnc_model_free(m);
  return 0;
}
