/*
 * jit.h - compiled code: the optimized graph lowered to LLVM IR (codegen.c),
 * optimized with LLVM's new pass manager for the host CPU, and compiled by
 * ORC LLJIT (jit.c) into native functions behind the Engine interface.
 *
 * The module holds, for buffer `buf` (parameters, gradients, state), data x
 * and t (rows of the model's dtype) and n rows (1..max_batch):
 *   T    forward(buf, x, t, n, y, loss)   per-row outputs and losses
 *   void predict(buf, x, n, y)            per-row outputs only
 *   T    backward(buf, x, t, n)           gradients into buf; the batch loss
 *   void update(buf)                      one optimizer step from buf's gradients
 *   T    train_step(buf, x, t, n)         backward and update fused; the batch loss
 *   T    train_epoch(buf, x, t, rows)     train_step over every batch; the sum of
 *                                         the rows' losses
 * The optimizer step reads the learning rate from buf (layout->lr_off), so
 * the training loop's schedule changes it without compiling again.
 */
#ifndef NNC_JIT_H
#define NNC_JIT_H

#include <stdbool.h>
#include <stddef.h>

#include "codegen.h"
#include "engine.h"
#include "ir.h"
#include "nnc.h"
#include "update.h"

/* Compile g for `cpu` (jit_cpu_known; NULL or "native": the host's CPU
 * and features; the host must be able to run code for it) and return an
 * Engine running native code, or NULL after printing why. fns: the
 * functions to compile now (codegen.h's CG_* bits, at least one); the
 * engine's other entries compile theirs on their first call (thread-safe;
 * the process ends after printing why if that fails), except grad_part,
 * which is set only when CG_GRAD_PART is in fns. time: per-stage timings
 * on stderr, for those later compiles too. */
Engine *jit_engine_new(const Graph *g, const Layout *layout, int max_batch, int opt_level,
                       unsigned fns, bool time, const char *cpu);

/* The bytes of a JIT engine's workspace (the modules' activations and
 * scratch; 0: none). */
size_t jit_engine_workspace_bytes(const Engine *e);

/* The address of a compiled function of a JIT engine ("forward",
 * "train_step", ...; compiled now if it was not), or NULL after printing
 * why. */
void *jit_engine_symbol(Engine *e, const char *fn);

/* --emit llvm | asm | obj | header, to path (or stdout for llvm/asm), for
 * `cpu` (NULL: NNC_PORTABLE_CPU for obj and asm on an x86-64 host, else
 * "native"). Returns the exit status. */
int jit_emit(const Graph *g, const Layout *layout, int max_batch, int opt_level, NncEmit kind,
             const char *path, bool time, const char *cpu);
/* The same into out (obj: the object file's bytes). Returns 0, or 1 after
 * printing an internal error. */
int jit_emit_text(const Graph *g, const Layout *layout, int max_batch, int opt_level, NncEmit kind, bool time,
                  const char *cpu, StrBuf *out);

/* The CPU --emit obj and asm target by default: a portable x86-64 level
 * (SSE4.2 and POPCNT: any x86-64 processor since about 2009). */
#define NNC_PORTABLE_CPU "x86-64-v2"
/* What code generation needs to know of `cpu` (NULL or "native": the
 * host's; else a name jit_cpu_known accepts). */
CgTarget jit_target(const char *cpu);
/* Whether --cpu accepts the name: "native", or on an x86-64 host one of
 * LLVM's 64-bit x86 processor names (x86-64, x86-64-v2..v4, haswell,
 * znver4, ...). */
bool jit_cpu_known(const char *cpu);
/* Whether code for `cpu` surely runs on this host, as --jit runs it:
 * "native", the host's own name, or an x86-64 level (x86-64, x86-64-v2..v4)
 * whose features the host has. Other names are for --emit. */
bool jit_cpu_runs_here(const char *cpu);
/* The x86-64 levels --cpu names, x86-64 up to x86-64-v4, by i from 0;
 * NULL past the last. */
const char *jit_cpu_level(int i);
/* LLVM's name of the host's CPU ("znver4", ...). */
const char *jit_host_cpu_name(void);

#endif
