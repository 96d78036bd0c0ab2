/*
 * nnc.h - the public face of libnnc: what the `nnc` command calls, and what a
 * C program embedding the compiler calls.
 *
 *   NncOptions o;
 *   nnc_options_default(&o);
 *   o.file = "examples/moons.nn";
 *   o.train = true;
 *   o.jit = true;
 *   int status = nnc_run(&o);   // 0 ok, 1 user error, as the command line
 *
 * The stages themselves have their own headers (parse.h, check.h, lower.h,
 * ir.h, ...) for programs that want the graph rather than a run.
 */
#ifndef NNC_H
#define NNC_H

#include <stdbool.h>
#include <stdint.h>

#define NNC_VERSION "0.1.0"

typedef struct NncOptions {
  const char *file; /* the .nn file */
  bool jit;         /* compiled code instead of the interpreter */
  bool train, grad, check_grad;
  const char *predict; /* CSV of inputs, or NULL */
  const char *emit;    /* ast, ir, grad, opt, llvm, asm, dot, obj, header, layout */
  const char *load, *save, *out, *plot;
  int64_t epochs, batch, seed; /* -1: as the file says */
  double lr;                   /* < 0: as the file says */
  int dtype;                   /* -1, 0 (f32) or 1 (f64) */
  int opt_level;               /* 0..3 */
  bool time;                   /* per-stage compile times on stderr */
  const char *cpu;             /* --cpu: NULL (default), "native" or a CPU name */
} NncOptions;

void nnc_options_default(NncOptions *o);
/* Run what the options ask for; returns the exit status (0 or 1). */
int nnc_run(const NncOptions *o);
/* Whether --cpu accepts the name ("native", x86-64, x86-64-v2, haswell, ...). */
bool nnc_cpu_known(const char *name);

#endif
