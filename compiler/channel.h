/*
 * channel.h - batch_norm's loops over the rows of a batch (its statistics,
 * the sums of its gradient, its normalization and input gradient) as calls
 * of three fixed kernels (channel.c), for codegen.c.
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

/* Is stored node n a per-channel affine map of values in memory, which
 * channel_affine builds as one call of GEMM_CH_AFFINE: batch_norm's
 * normalization, relu(x * scale + shift) or without the relu, and its
 * input gradient, dy * scale + ((x - mean) * k + b), each per-channel
 * factor a [C, 1, ...] value in memory (through reshapes, or a row of a
 * [R, C] one)? */
bool channel_affine_ok(const CG *cg, const Node *n);
void channel_affine(CG *cg, const Node *n);
/* The body of GEMM_CH_AFFINE in fn: fn(x, y, out, rows, xs, ys, os, C, P,
 * a, b, m, k, relu), rows of [C, P] at x + r*xs (y, out alike); for each
 * channel c: out = x * a[c] + b[c], then max(., 0) when relu is not 0; or,
 * y not NULL, out = x * a[c] + ((y - m[c]) * k[c] + b[c]). */
enum { AF_X, AF_Y, AF_OUT, AF_ROWS, AF_XS, AF_YS, AF_OS, AF_C, AF_P, AF_A, AF_B, AF_M, AF_K, AF_RELU, AF_COUNT };
void channel_affine_body(CG *cg, LLVMValueRef fn);

#endif
