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
 */
#ifndef NNC_JIT_H
#define NNC_JIT_H

#include <stdbool.h>

#include "engine.h"
#include "ir.h"
#include "update.h"

/* Compile g and return an Engine running native code, or NULL after
 * printing why. fns: the functions to build (codegen.h's CG_* bits; the
 * engine's other entries must not be called). time: per-stage timings on
 * stderr. */
Engine *jit_engine_new(const Graph *g, const Layout *layout, int max_batch, int opt_level,
                       unsigned fns, bool time);

/* --emit llvm | asm | obj | header, to path (or stdout for llvm/asm).
 * Returns the exit status. */
int jit_emit(const Graph *g, const Layout *layout, int max_batch, int opt_level, const char *kind,
             const char *path, bool time);

#endif
