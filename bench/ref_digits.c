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

#include "ref_digits_gemm.h"

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
/* forward pass of one batch (n columns = nb rounded up to VL); leaves Z3T */
static void
forward(int bt, int n)
{
	gemm(EP_BIAS_RELU, NH, n, NIN, W1, NIN, 1, XT[bt], LDT, H1T, LDT, b1, NULL, NULL);
	gemm(EP_BIAS_RELU, NH, n, NH, W2, LDH, 1, H1T, LDT, H2T, LDT, b2, NULL, NULL);
	gemm(EP_BIAS, NOUT, n, NH, W3, NH, 1, H2T, LDT, Z3T, LDT, b3, NULL, NULL);
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
			gemm(EP_MASK, NH, n, NOUT, W3, 1, NH, G3T, LDT, G2T, LDT, NULL, H2T, NULL);
			transpose(H2, LDH, H2T, LDT, NH, nb);
			gemm(EP_SGD, NOUT, NH, nb, G3T, LDT, 1, H2, LDH, W3, NH, NULL, NULL, NULL);
			bias_sgd(b3, G3T, NOUT, n);

			/* layer 2 */
			transpose(W2T, LDH, W2, LDH, NH, NH);
			gemm(EP_MASK, NH, n, NH, W2T, LDH, 1, G2T, LDT, G1T, LDT, NULL, H1T, NULL);
			transpose(H1, LDH, H1T, LDT, NH, nb);
			gemm(EP_SGD, NH, NH, nb, G2T, LDT, 1, H1, LDH, W2, LDH, NULL, NULL, NULL);
			bias_sgd(b2, G2T, NH, n);

			/* layer 1 */
			gemm(EP_SGD, NH, NIN, nb, G1T, LDT, 1, Xrow + (long)row0 * NIN, NIN, W1, NIN, NULL, NULL, NULL);
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
