/*
 * regstep.h - register tiles (regstep.c): train_epoch, forward and predict
 * of a batch-1 step whose tensors fit vector registers, for codegen.c.
 */
#ifndef NNC_REGSTEP_H
#define NNC_REGSTEP_H

#include "cgbase.h"

/* Can function `kind` (train_epoch, forward, predict) be built as a
 * register step? Fills need[] (per node: read by it) and returns the lanes
 * to use, or 0. */
int regstep_lanes(const CG *cg, FnKind kind, bool *need);
/* Build it, `lanes` wide. */
void regstep_build(CG *cg, FnKind kind, int lanes, const bool *need);

#endif
