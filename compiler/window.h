/*
 * window.h - sliding-window ops (convolutions, pooling and their
 * gradients) as loops around GEMMs (window.c), for codegen.c.
 */
#ifndef NNC_WINDOW_H
#define NNC_WINDOW_H

#include "cgbase.h"

/* Build window node n (class OPC_WINDOW or OPC_WINDOW2). */
void window_emit(CG *cg, const Node *n);
/* Bytes of workspace scratch node n needs (its GEMM's packed B, its
 * im2col matrix, of one row or, when small, of max_batch rows, and copies
 * of one row of operands that are not in memory), or 0. */
int64_t window_scratch_bytes(const Node *n, int elem_size, int max_batch);
/* The part of that scratch its GEMM uses (the packed B, a transposed
 * product's partial sums), at its start: the copy a second thread of the
 * feature split needs; 0 for other nodes. */
int64_t window_pack_bytes(const Node *n, int elem_size);
/* Is n a convolution's weight gradient whose one reader c sums it over
 * the batch? Then n is not stored: window_batch_dw builds c as one GEMM
 * per row accumulating into c. */
bool window_dw_inline_ok(const Node *n, const Node *c);
bool window_batch_dw_ok(const CG *cg, const Node *n);
void window_batch_dw(CG *cg, const Node *n);
/* The body of the fixed window kernel k in fn, whose frame gemm.c has
 * begun: GEMM_IM2COL and GEMM_COL2IM are fn(a, b, rows, as, bs, C, H, W,
 * kh, kw, sh, sw, ph, pw, oh, ow) over the rows of a batch (row strides
 * as, bs), GEMM_MAX_POOL2 and GEMM_MAX_POOL2_DX fn(x, dy, out,
 * rows, xs, dys, outs, C, H, W, kh, sh, sw, oh, ow, relu) for kh x 2
 * windows (kh 1 or 2) over the rows of a batch (row strides xs, dys,
 * outs), all i64 but the pointers; relu not 0: relu's gradient of the
 * pooled input x, keep_pos(x, dx) (forward: 0). */
enum { WINDOW_KERNEL_PARAMS = 16, POOL_KERNEL_PARAMS = 16 };
void window_kernel_body(CG *cg, int k, LLVMValueRef fn);
/* Is n, read only by c, max pooling's gradient (of 2-wide windows that
 * cover the input) and c relu's gradient of the pooled input x,
 * keep_pos(x, n)? Then n is not stored: window_pool_relu builds c as
 * one call of the pooling gradient's kernel with its relu flag (codegen's
 * plan marks n inline). */
bool window_pool_relu_inline_ok(const CG *cg, const Node *n, const Node *c);
bool window_pool_relu_ok(const CG *cg, const Node *c);
void window_pool_relu(CG *cg, const Node *c);

#endif
