/* ref_digits.c -- hand-written reference for benchmark workload W2 (digits MLP).
 *
 * Build:
 *   gcc -O3 -march=native -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra \
 *       -o ref_digits bench/ref_digits.c -lcjson -lm
 *
 * Usage:
 *   ref_digits DIGITS.csv INIT.safetensors [EPOCHS]
 *
 * Workload: 64 -> linear(256) -> relu -> linear(256) -> relu -> linear(10),
 * softmax cross-entropy with one-hot targets (batch loss = mean over the
 * batch), f32, SGD lr 0.1, minibatches of 64 rows in dataset order over all
 * rows (1797 rows: 28 batches of 64 and one of 5, 29 steps an epoch),
 * 50 epochs by default.  W is [out][in], y = x W^T + b.
 *
 * How it is written (what an expert would do by hand):
 *
 *  - Activations are kept feature-major, A^T[feature][batch], so every
 *    forward and dX product is a GEMM whose vector dimension is the batch
 *    (64 columns; the last batch of 5 is computed on one vector) and whose
 *    broadcast operand is a weight matrix:
 *        forward  Z^T  = W   . H^T      (A(o,i) = W[o][i])
 *        dX       dH^T = W^T . dZ^T     (A(i,o) = W^T[i][o])
 *        dW       dW   = dZ^T . H       (B(b,i) = H[b][i])
 *    The dW GEMMs need the activations batch-major, so H1 and H2 are
 *    transposed once per step (8 x 8 register transposes), and the dX GEMM
 *    of layer 2 reads a W2^T copy made just before it: broadcasting down
 *    the columns of W2 (a 1 KiB stride) costs more than the transpose.
 *    Layer 3 (10 rows) reads W3 down its columns directly.
 *  - One register-blocked microkernel does all of them: MR rows of
 *    accumulators times NV vectors of columns (AVX-512: 6 x 64 floats in
 *    24 zmm; AVX2: 6 x 16 floats in 12 ymm), one FMA per accumulator per
 *    k, the A operand broadcast straight from memory, B rows loaded as
 *    vectors; no packing is needed because every B panel is already
 *    contiguous in its vector dimension.  Leading dimensions are padded
 *    (320 and 1088 bytes) so that the panels do not fall on a few L1 sets.
 *  - Fused epilogues: bias + relu for the hidden layers, bias for the
 *    logits, relu mask (H > 0) for the backward products, and the SGD
 *    update W -= lr * dW straight from the accumulators (no dW buffer; the
 *    weight tile is prefetched when the tile starts).  Bias gradients are
 *    vector row sums.  The softmax, cross-entropy gradient and 1/batch
 *    scaling are one vectorised pass over the 10 x 64 logits (polynomial
 *    exp).
 *  - Every buffer is static and 64-byte aligned; nothing is allocated in
 *    the training loop.  The data set is laid out once before timing
 *    (transposed batches, one-hot targets scaled by 1/batch).
 *
 * The AVX-512 and AVX2 paths are the same code with a different vector
 * width and block size; without AVX2+FMA a portable scalar version of the
 * same kernel is used.
 *
 * GFLOP/s counts 2*M*N*K for the 3 forward GEMMs, the 3 dW GEMMs and the
 * dX GEMMs of layers 2 and 3, with M = the real rows of each batch.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <cjson/cJSON.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
	NIN = 64,		/* input features */
	NH = 256,		/* hidden width */
	NOUT = 10,		/* classes */
	BATCH = 64,		/* minibatch rows (= padded column count) */
	MAX_ROWS = 4096,
	MAX_BATCHES = MAX_ROWS / BATCH,
	/* Padded leading dimensions (floats).  A power-of-two row stride maps
	 * the rows of a panel onto a few L1 sets and thrashes it; 320 and
	 * 1088 bytes are 5 and 17 cache lines, which spread over all sets. */
	LDT = BATCH + 16,	/* feature-major [feature][b] buffers */
	LDH = NH + 16,		/* batch-major H1, H2 and W2 rows */
};

#define LR 0.1f
#define ALIGN64 __attribute__((aligned(64)))
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

/* ------------------------------------------------------- vector layer */

#include "ref_digits_vec.h"

/* ------------------------------------------------------------- GEMM */

/* What happens to a finished tile. */
enum {
	EP_BIAS_RELU,	/* C = relu(acc + bias[row]) */
	EP_BIAS,	/* C = acc + bias[row] */
	EP_MASK,	/* C = acc where H > 0, else 0 (H has C's layout) */
	EP_SGD,		/* C -= lr * acc */
};

/*
 * One mr x (nv*VL) tile:  C(i, j) <- epilogue(sum_k A(i,k) B(k,j))
 * with A(i,k) = A[i*ars + k*aks] (broadcast from memory, any strides),
 * B(k,j) = B[k*ldb + j] and C(i,j) = C[i*ldc + j] (64-byte aligned rows).
 * Called with constant mr, nv, ep, so the accumulators live in registers.
 */
INLINE void
tile(const int ep, const int mr, const int nv, int K,
    const float *restrict A, long ars, long aks,
    const float *restrict B, long ldb,
    float *restrict C, long ldc, const float *restrict bias,
    const float *restrict H)
{
	vf acc[MR][NV];
	UNROLL for (int i = 0; i < mr; i++)
		UNROLL for (int v = 0; v < nv; v++)
			acc[i][v] = vzero();
	if (ep == EP_SGD)	/* the weights come from L2: fetch them early */
		UNROLL for (int i = 0; i < mr; i++)
			UNROLL for (int j = 0; j < nv * VL; j += 16)
				__builtin_prefetch(C + i * ldc + j, 1);

	for (int k = 0; k < K; k++) {
		vf b[NV];
		UNROLL for (int v = 0; v < nv; v++)
			b[v] = vload(B + (long)k * ldb + v * VL);
		UNROLL for (int i = 0; i < mr; i++) {
			vf a = vbcast(A + i * ars + (long)k * aks);
			UNROLL for (int v = 0; v < nv; v++)
				acc[i][v] = vfma(a, b[v], acc[i][v]);
		}
	}

	UNROLL for (int i = 0; i < mr; i++) {
		float *c = C + i * ldc;
		if (ep == EP_BIAS_RELU || ep == EP_BIAS) {
			vf bi = vbcast(bias + i);
			UNROLL for (int v = 0; v < nv; v++) {
				vf z = vadd(acc[i][v], bi);
				vstore(c + v * VL, ep == EP_BIAS_RELU ? vrelu(z) : z);
			}
		} else if (ep == EP_MASK) {
			const float *h = H + i * ldc;
			UNROLL for (int v = 0; v < nv; v++)
				vstore(c + v * VL, vmask_gt0(vload(h + v * VL), acc[i][v]));
		} else {
			UNROLL for (int v = 0; v < nv; v++)
				vstore(c + v * VL, vfma(acc[i][v], vset1(-LR), vload(c + v * VL)));
		}
	}
}

/* A tile with run-time mr (1..MR) and nv (1..NV), dispatched to constant
 * shapes (the clamps only keep impossible cases well-formed). */
#define TILE(mr_, nv_) tile(ep, (mr_) < MR ? (mr_) : MR, (nv_) < NV ? (nv_) : NV, \
	K, A, ars, aks, B, ldb, C, ldc, bias, H)
#define TILE_MR(nv_) \
	switch (mr) { \
	case 1: TILE(1, nv_); break; \
	case 2: TILE(2, nv_); break; \
	case 3: TILE(3, nv_); break; \
	case 4: TILE(4, nv_); break; \
	case 5: TILE(5, nv_); break; \
	default: TILE(6, nv_); break; \
	}

INLINE void
tile_any(const int ep, int mr, int nv, int K,
    const float *restrict A, long ars, long aks,
    const float *restrict B, long ldb,
    float *restrict C, long ldc, const float *restrict bias,
    const float *restrict H)
{
#if MR > 6 || NV > 8
#error "tile_any handles tiles up to 6 x 8 vectors"
#endif
	if (mr == MR && nv == NV) {	/* the hot case */
		tile(ep, MR, NV, K, A, ars, aks, B, ldb, C, ldc, bias, H);
		return;
	}
	switch (nv) {
#if NV > 1
	case 1: TILE_MR(1) break;
#endif
#if NV > 2
	case 2: TILE_MR(2) break;
#endif
#if NV > 3
	case 3: TILE_MR(3) break;
#endif
#if NV > 4
	case 4: TILE_MR(4) break;
	case 5: TILE_MR(5) break;
	case 6: TILE_MR(6) break;
	case 7: TILE_MR(7) break;
#endif
	default: TILE_MR(NV) break;
	}
}

/*
 * C[M x N] <- epilogue(A[M x K] B[K x N]), N a multiple of VL.
 * Column blocks outside, row blocks inside, so a K x NR panel of B is
 * reused by every row block while the MR-row slices of A stream past it
 * (with AVX2 the panel, 16 KiB at K = 256, stays in L1).
 */
INLINE void
gemm(const int ep, int M, int N, int K,
    const float *restrict A, long ars, long aks,
    const float *restrict B, long ldb,
    float *restrict C, long ldc, const float *restrict bias,
    const float *restrict H)
{
	for (int j = 0; j < N; j += NR) {
		int nv = (N - j < NR ? N - j : NR) / VL;
		for (int i = 0; i < M; i += MR) {
			int mr = M - i < MR ? M - i : MR;
			tile_any(ep, mr, nv, K, A + i * ars, ars, aks, B + j, ldb,
			    C + i * ldc + j, ldc, bias ? bias + i : bias,
			    H ? H + i * ldc + j : H);
		}
	}
}

/* ------------------------------------------------------------- model */

/* parameters, W [out][in] */
static float W1[NH * NIN] ALIGN64, b1[NH] ALIGN64;
static float W2[NH * LDH] ALIGN64, b2[NH] ALIGN64;
static float W2T[NH * LDH] ALIGN64;	/* W2^T, refreshed before each dX GEMM */
static float W3[NOUT * NH] ALIGN64, b3[NOUT] ALIGN64;

/* data set, laid out once */
static float Xrow[MAX_ROWS * NIN] ALIGN64;		/* [row][in] */
static int label[MAX_ROWS];
static float XT[MAX_BATCHES][NIN * LDT] ALIGN64;	/* [batch][in][b] */
static float TT[MAX_BATCHES][NOUT * LDT] ALIGN64;	/* one-hot / nb, [class][b] */
static float VT[MAX_BATCHES][BATCH] ALIGN64;		/* 1/nb for real columns, else 0 */

/* activations and gradients, feature-major [feature][b] */
static float H1T[NH * LDT] ALIGN64, H2T[NH * LDT] ALIGN64;
static float Z3T[NOUT * LDT] ALIGN64, G3T[NOUT * LDT] ALIGN64;
static float G2T[NH * LDT] ALIGN64, G1T[NH * LDT] ALIGN64;
/* batch-major copies for the dW GEMMs [b][feature] */
static float H1[BATCH * LDH] ALIGN64, H2[BATCH * LDH] ALIGN64;

/*
 * dst[c][r] = src[r][c] for r < nr (a multiple of 8), c < nc: the
 * feature-major activations into batch-major ones, and W2 into W2^T.
 */
static void
transpose(float *restrict dst, long ldd, const float *restrict src, long lds,
    int nr, int nc)
{
#ifdef SCALAR_FALLBACK
	for (int r0 = 0; r0 < nr; r0 += 8)
		for (int c = 0; c < nc; c++)
			UNROLL for (int r = 0; r < 8; r++)
				dst[c * ldd + r0 + r] = src[(r0 + r) * lds + c];
#else
	/* 8 x 8 blocks in ymm registers: unpack, shuffle, permute2f128 */
	for (int c0 = 0; c0 < nc; c0 += 8) {
		const int cn = nc - c0 < 8 ? nc - c0 : 8;
		for (int r0 = 0; r0 < nr; r0 += 8) {
			const float *s = src + r0 * lds + c0;
			__m256 r0_ = _mm256_load_ps(s + 0 * lds), r1 = _mm256_load_ps(s + 1 * lds);
			__m256 r2 = _mm256_load_ps(s + 2 * lds), r3 = _mm256_load_ps(s + 3 * lds);
			__m256 r4 = _mm256_load_ps(s + 4 * lds), r5 = _mm256_load_ps(s + 5 * lds);
			__m256 r6 = _mm256_load_ps(s + 6 * lds), r7 = _mm256_load_ps(s + 7 * lds);
			__m256 t0 = _mm256_unpacklo_ps(r0_, r1), t1 = _mm256_unpackhi_ps(r0_, r1);
			__m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
			__m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
			__m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
			__m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
			__m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
			__m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
			__m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
			__m256 o[8] = {
				_mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
				_mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
				_mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
				_mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31),
			};
			float *d = dst + c0 * ldd + r0;
			if (cn == 8) {
				UNROLL for (int c = 0; c < 8; c++)
					_mm256_store_ps(d + c * ldd, o[c]);
			} else {
				for (int c = 0; c < cn; c++)
					_mm256_store_ps(d + c * ldd, o[c]);
			}
		}
	}
#endif
}

/* horizontal sum of a vector */
INLINE float
vhsum(vf v)
{
#if defined(SCALAR_FALLBACK)
	return v;
#elif defined(__AVX512F__)
	return _mm512_reduce_add_ps(v);
#else
	__m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	x = _mm_add_ps(x, _mm_movehl_ps(x, x));
	x = _mm_add_ss(x, _mm_movehdup_ps(x));
	return _mm_cvtss_f32(x);
#endif
}

/* bias[o] -= lr * sum_b G[o][b]; the n columns beyond the batch are 0 */
static void
bias_sgd(float *restrict bias, const float *restrict G, int m, int n)
{
	for (int o = 0; o < m; o++) {
		vf s = vload(G + o * LDT);
		for (int j = VL; j < n; j += VL)
			s = vadd(s, vload(G + o * LDT + j));
		bias[o] -= LR * vhsum(s);
	}
}

/* forward pass of one batch (n columns = nb rounded up to VL); leaves Z3T */
static void
forward(int bt, int n)
{
	gemm(EP_BIAS_RELU, NH, n, NIN, W1, NIN, 1, XT[bt], LDT, H1T, LDT, b1, NULL);
	gemm(EP_BIAS_RELU, NH, n, NH, W2, LDH, 1, H1T, LDT, H2T, LDT, b2, NULL);
	gemm(EP_BIAS, NOUT, n, NH, W3, NH, 1, H2T, LDT, Z3T, LDT, b3, NULL);
}

/* G3T = (softmax(Z3T) - onehot) / nb, 0 in padding columns */
static void
softmax_xent_grad(int bt, int n)
{
	for (int j = 0; j < n; j += VL) {
		vf z[NOUT], m = vload(Z3T + j), s;
		UNROLL for (int o = 1; o < NOUT; o++)
			m = vmax(m, vload(Z3T + o * LDT + j));
		s = vzero();
		UNROLL for (int o = 0; o < NOUT; o++) {
			z[o] = vexp(vsub(vload(Z3T + o * LDT + j), m));
			s = vadd(s, z[o]);
		}
		vf scale = vdiv(vload(VT[bt] + j), s);
		UNROLL for (int o = 0; o < NOUT; o++)
			vstore(G3T + o * LDT + j, vsub(vmul(z[o], scale), vload(TT[bt] + o * LDT + j)));
	}
}

static long
train(int nrows, int epochs, double *flops)
{
	const int nbatches = (nrows + BATCH - 1) / BATCH;
	long steps = 0;
	double fl = 0.0;
	for (int ep = 0; ep < epochs; ep++) {
		for (int bt = 0; bt < nbatches; bt++) {
			const int row0 = bt * BATCH;
			const int nb = nrows - row0 < BATCH ? nrows - row0 : BATCH;
			const int n = (nb + VL - 1) / VL * VL;

			/* forward */
			forward(bt, n);
			softmax_xent_grad(bt, n);

			/* layer 3: dH2 = W3^T dZ3 (masked), then W3 -= lr dZ3 H2 */
			gemm(EP_MASK, NH, n, NOUT, W3, 1, NH, G3T, LDT, G2T, LDT, NULL, H2T);
			transpose(H2, LDH, H2T, LDT, NH, nb);
			gemm(EP_SGD, NOUT, NH, nb, G3T, LDT, 1, H2, LDH, W3, NH, NULL, NULL);
			bias_sgd(b3, G3T, NOUT, n);

			/* layer 2 */
			transpose(W2T, LDH, W2, LDH, NH, NH);
			gemm(EP_MASK, NH, n, NH, W2T, LDH, 1, G2T, LDT, G1T, LDT, NULL, H1T);
			transpose(H1, LDH, H1T, LDT, NH, nb);
			gemm(EP_SGD, NH, NH, nb, G2T, LDT, 1, H1, LDH, W2, LDH, NULL, NULL);
			bias_sgd(b2, G2T, NH, n);

			/* layer 1 */
			gemm(EP_SGD, NH, NIN, nb, G1T, LDT, 1, Xrow + (long)row0 * NIN, NIN, W1, NIN, NULL, NULL);
			bias_sgd(b1, G1T, NH, n);

			steps++;
			fl += 2.0 * nb * ((double)NH * NIN + (double)NH * NH + (double)NOUT * NH /* forward */
			    + (double)NOUT * NH + (double)NH * NH /* dX, layers 3 and 2 */
			    + (double)NOUT * NH + (double)NH * NH + (double)NH * NIN); /* dW */
		}
	}
	*flops = fl;
	return steps;
}

/* mean cross-entropy and accuracy over all rows, from the f32 logits */
static void
evaluate(int nrows, double *loss, double *acc)
{
	const int nbatches = (nrows + BATCH - 1) / BATCH;
	double sl = 0.0;
	long right = 0;
	for (int bt = 0; bt < nbatches; bt++) {
		const int row0 = bt * BATCH;
		const int nb = nrows - row0 < BATCH ? nrows - row0 : BATCH;
		forward(bt, (nb + VL - 1) / VL * VL);
		for (int b = 0; b < nb; b++) {
			double m = Z3T[b];
			int arg = 0;
			for (int o = 1; o < NOUT; o++)
				if (Z3T[o * LDT + b] > m) {
					m = Z3T[o * LDT + b];
					arg = o;
				}
			double s = 0.0;
			for (int o = 0; o < NOUT; o++)
				s += exp(Z3T[o * LDT + b] - m);
			sl += m + log(s) - Z3T[label[row0 + b] * LDT + b];
			right += arg == label[row0 + b];
		}
	}
	*loss = sl / nrows;
	*acc = (double)right / nrows;
}

/* ------------------------------------------------------------- input */

#define REF_NAME "ref_digits"
#include "ref_digits_input.h"

int
main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: ref_digits DIGITS.csv INIT.safetensors [EPOCHS]\n");
		return 2;
	}
	int epochs = argc == 4 ? atoi(argv[3]) : 50;
	if (epochs < 0)
		die("bad epoch count %s", argv[3]);
	int nrows = load_csv(argv[1]);
	if (nrows == 0)
		die("%s: no rows", argv[1]);
	layout_batches(nrows);
	load_init(argv[2]);

	struct timespec t0, t1;
	double flops;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long steps = train(nrows, epochs, &flops);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);

	double loss, acc;
	evaluate(nrows, &loss, &acc);
	printf("final train loss %.9g\n", loss);
	printf("final train accuracy %.9g\n", acc);
	printf("train time %.9f s\n", secs);
	printf("steps %ld\n", steps);
	printf("ns/step %.3f\n", steps > 0 ? secs * 1e9 / (double)steps : 0.0);
	printf("GFLOP/s %.2f\n", secs > 0 ? flops / secs * 1e-9 : 0.0);
	return 0;
}
