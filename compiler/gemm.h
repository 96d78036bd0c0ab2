/*
 * gemm.h - matrix products as register-blocked GEMMs, with epilogues
 * (gemm.c), for codegen.c.
 */
#ifndef NNC_GEMM_H
#define NNC_GEMM_H

#include "cgbase.h"

/* Build matmul node n as a GEMM when that pays; false: the caller builds
 * its loop nest. */
bool gemm_try_matmul(CG *cg, const Node *n);
/* Is n batch_sum(outer(a, b)) with the outer product inlined? Then
 * gemm_batch_outer builds it as one GEMM over the rows. */
bool gemm_batch_outer_ok(const CG *cg, const Node *n);
void gemm_batch_outer(CG *cg, const Node *n);
/* Can outer(a, b) node n, read only by c, be computed inside c's GEMM? */
bool gemm_outer_ok(const CG *cg, const Node *n, const Node *c);
/* Choose the GEMM epilogues of the function being planned (cg->fused_into,
 * cg->epi_gemm) from each node's readers, reader counts and roots. */
void gemm_plan_epilogues(CG *cg, const Node **reader, const int *users, const bool *root);

#endif
