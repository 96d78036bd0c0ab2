/*
 * step_loop.c - the compiled train_step called from C, the baseline of
 * bench/python_overhead.py: compile FILE.nn with libnnc (-O2, native),
 * load INIT.safetensors, then call train_step CALLS times on the train
 * block's rows in order (max_batch rows a call, wrapping around), and print
 * "ns/call X" for the fastest of ROUNDS rounds.
 *
 *   step_loop FILE.nn INIT.safetensors CALLS ROUNDS
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "nnc.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts); /* CPU time: steadier on a shared machine */
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: step_loop FILE.nn INIT.safetensors CALLS ROUNDS\n");
    return 2;
  }
  long calls = atol(argv[3]), rounds = atol(argv[4]);
  NncDiagnostics d = {0};
  NncModel *m = nnc_compile_file(argv[1], NULL, &d);
  const NncFunctions *f = m ? nnc_model_jit(m, 2) : NULL;
  void *buf = m ? nnc_buffer_new(m) : NULL;
  NncDataset tr = {0}, va = {0};
  if (!f || nnc_model_load(m, buf, argv[2], &d) != 0 || nnc_model_data(m, &tr, &va, &d) != 0) {
    for (int i = 0; i < d.count; i++) fputs(d.items[i].text, stderr);
    return 1;
  }
  const NncLayout *L = nnc_model_layout(m);
  int64_t batch = L->max_batch, steps = tr.rows / batch; /* whole batches only */
  size_t xrow = (size_t)L->input_cols * (size_t)L->elem_size, trow = (size_t)L->target_cols * (size_t)L->elem_size;
  double best = 1e30, sink = 0;
  for (long r = 0; r < rounds; r++) {
    double t0 = now();
    for (long c = 0; c < calls; c++) {
      int64_t at = (c % steps) * batch;
      const char *x = (const char *)tr.x + (size_t)at * xrow, *t = (const char *)tr.t + (size_t)at * trow;
      sink += L->dtype == NNC_F64 ? f->f64.train_step(buf, (const double *)x, (const double *)t, batch)
                                  : f->f32.train_step(buf, (const float *)x, (const float *)t, batch);
    }
    double ns = (now() - t0) * 1e9 / (double)calls;
    if (ns < best) best = ns;
  }
  printf("ns/call %.1f\n", best);
  printf("checksum %.6g\n", sink);
  nnc_dataset_free(&tr);
  nnc_dataset_free(&va);
  nnc_diagnostics_free(&d);
  free(buf);
  nnc_model_free(m);
  return 0;
}
