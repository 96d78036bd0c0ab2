/*
 * channel.h - per-channel sums over the rows of a batch (batch_norm's
 * statistics and the sums of its gradient) as calls of two fixed kernels
 * (channel.c), for codegen.c.
 */
#ifndef NNC_CHANNEL_H
#define NNC_CHANNEL_H

#include "cgbase.h"

/* May node n be computed by a call of channel.c's kernels (a module with
 * one exports them to the module it splits off)? */
bool channel_kernel_node(const Node *n);
/* Build channel_moments node n. */
void channel_moments_emit(CG *cg, const Node *n);
/* Is node s, sum_to of a batched [C, ...] value over every axis but the
 * first, read only by batch_sum c, with an operand in memory or the
 * product of two values in memory? Then s is not stored: channel_sum
 * builds c as one call of the kernel (codegen.c's plan marks s inline). */
bool channel_sum_inline_ok(const CG *cg, const Node *s, const Node *c);
bool channel_sum_ok(const CG *cg, const Node *c);
void channel_sum(CG *cg, const Node *c);
/* The body of fixed kernel k (GEMM_CH_MOMENTS or GEMM_CH_SUM) in fn, whose
 * frame gemm.c has begun: fn(a, b, out, rows, as, bs, C, P), all i64 but
 * the pointers; row r of a [C, P] at a + r*as (of b at b + r*bs).
 *   GEMM_CH_MOMENTS: out[c] = the mean of channel c of a over the rows and
 *     positions, out[C + c] = the sum of squared deviations from it (b
 *     unused)
 *   GEMM_CH_SUM: out[c] = the sum of a * b over them, or of a when b is
 *     NULL */
enum { CH_KERNEL_PARAMS = 8 };
void channel_kernel_body(CG *cg, int k, LLVMValueRef fn);

#endif
