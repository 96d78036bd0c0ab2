/*
 * optstep.h - an optimizer's step of one parameter as a call of a fixed
 * kernel (optstep.c), for codegen.c: Adam's step is the same elementwise
 * formula for every parameter, only its pointers and length differ, so a
 * module whose kernels are prebuilt calls the set's kernel once per
 * parameter instead of carrying a vector loop for each.
 */
#ifndef NNC_OPTSTEP_H
#define NNC_OPTSTEP_H

#include "cgbase.h"

/* Adam's step of parameter p as update.c's adam_step writes it (no weight
 * decay, no clipping, no AdamW decay), found in the optimized graph:
 *   m' = b1 m + c1 g,  v' = b2 v + c2 (g g),
 *   p' = p - ss (m' / (sqrt(v') / bc + eps))
 * with b1, c1, b2, c2, eps constants and ss, bc scalars of the step. */
enum { ADAM_INNER = 10 };
typedef struct AdamStep {
  const Node *m_new, *v_new, *p_new; /* the three updates' values */
  const Node *p, *m, *v, *grad;      /* the parameter, its moments, its gradient */
  const Node *ss, *bc;               /* lr / (1 - b1^t), sqrt(1 - b2^t) */
  double b1, c1, b2, c2, eps;
  const Node *inner[ADAM_INNER];     /* the other nodes of the formula */
} AdamStep;

/* Is update u of g (its target a parameter) Adam's step? Then *a holds it. */
bool adam_step_match(const Graph *g, const Update *u, AdamStep *a);

/* The kernel's parameters: p, g, m, v (n elements each), then the
 * constants and scalars of the formula in the model's dtype, then g2 and
 * nt: update_part's (NULL and 0 elsewhere), the gradient read as g + g2
 * (the threads' sum) and p's whole vectors stored non-temporally when nt
 * is not 0. */
enum { AD_P, AD_G, AD_M, AD_V, AD_N, AD_B1, AD_C1, AD_B2, AD_C2, AD_EPS, AD_SS, AD_BC, AD_G2, AD_NT, AD_COUNT };
/* The body of GEMM_OPT_ADAM in fn, whose frame gemm.c has begun: the
 * formula above for elements 0..n-1, in vectors (the last one under a
 * mask), with the operations in the order codegen.c's vector loop of the
 * three updates has them (update_part's: cgbase.c's sum of the two
 * gradients and its non-temporal stores), so each element gets the same
 * bits. */
void adam_kernel_body(CG *cg, LLVMValueRef fn);
/* The call of the kernel for a (its values and memory as codegen.c's
 * checks found them: p', m', v' in place in the buffer, the gradient in
 * memory); in update_part, on the part's slice of the tensors
 * (engine_slice; none in the tail call), the gradient the buffer's plus
 * grad2's. */
void adam_step_call(CG *cg, const AdamStep *a, LLVMValueRef ss, LLVMValueRef bc);

#endif
