/* ref_digits_threads.c -- bench/ref_digits.c on two threads: what the
 * two ways of splitting the W2 training step between two cores can give,
 * written by hand.
 *
 * Build:
 *   gcc -O3 -march=native -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra \
 *       -o ref_digits_threads bench/ref_digits_threads.c -lcjson -lm -pthread
 *
 * Usage:
 *   ref_digits_threads DIGITS.csv INIT.safetensors one|batch|features [EPOCHS]
 *   e.g. chrt -f 1 ./ref_digits_threads examples/data/digits.csv \
 *            tests/data/digits_init_seed0.safetensors features
 *   REF_PROF=1        also print, per thread, the microseconds per step of
 *                     each phase and of the wait at each barrier (rdtsc)
 *   REF_BARRIER=counter  barriers on one shared atomic counter instead of
 *                     one flag per thread
 *
 * Workload, data, initial weights, kernels and output lines are those of
 * ref_digits.c (read its header first): 64 -> 256 -> relu -> 256 -> relu
 * -> 10, softmax cross-entropy, f32, batch 64, SGD lr 0.1, 50 epochs by
 * default; activations feature-major A^T[feature][batch], one
 * register-blocked microkernel with fused epilogues, SGD fused into the dW
 * products.  It also prints "steps/s" and, for the two-thread modes,
 * "barrier ns": an empty barrier (a cache-line round trip between the two
 * CPUs), measured before training, which tells whether the two vCPUs are
 * close or far at the moment.
 *
 * Modes (thread 0 is the main thread; thread 1 is born pinned to the
 * second CPU of the process's affinity mask; both spin, no sleeping):
 *
 *  one       ref_digits.c's step on one thread, the same code: the same
 *            loss (0.0315074411 after 50 epochs) and speed.
 *
 *  batch     data parallel, the split nnc uses: thread t runs forward and
 *            backward on 32 of the 64 rows (the last batch of 5: thread 0
 *            all, thread 1 none) against the whole weights, and owns half
 *            of the output rows of every W and b (128 of W1, W2, b1, b2;
 *            5 of W3, b3).  During its backward pass it writes its partial
 *            dW and db for the OTHER thread's rows; barrier (every read of
 *            the old weights is done); then W -= lr (dW_mine + dW_other) on
 *            its own rows, dW_mine straight from the accumulators; barrier
 *            (the new weights are published).  Each thread transposes the
 *            whole W2 into its own W2^T.  Crossing each step, both ways:
 *            the partial dW for the other's rows (~170 KB) and the other's
 *            freshly updated rows of W1, W2, W3 (~170 KB), ~340 KB.
 *
 *  features  model parallel: thread t owns rows R = [t*128, t*128 + 128)
 *            of W1, W2, b1, b2 and columns R of W3 (b3 is thread 0's): the
 *            weights that produce its features, which never cross.
 *              forward: H1^T[R] = relu(W1[R] X^T + b1[R]);  barrier B1;
 *                H2^T[R] = relu(W2[R] H1^T + b2[R]) (all of H1^T);
 *                partial logits W3[:, R] H2^T[R] (10 x 64, thread 0's
 *                with b3);  barrier B2;  both sum the two partials in the
 *                same order and compute the softmax gradient dZ3.
 *              backward: dH2^T[R] = W3[:, R]^T dZ3 masked (local);
 *                W3[:, R] -= lr dZ3 H2[:, R];  W2^T[:, R] from W2[R];
 *                dH1^T = W2^T dZ2^T is a sum over all 256 features of
 *                layer 2: thread t first computes its half of that sum for
 *                the other's rows;  barrier B3;  then its own rows, the
 *                other's half added (and the relu mask) in the epilogue;
 *                W2[R] -= lr dZ2^T[R] H1 (each thread transposes all of
 *                H1^T once);  W1[R] -= lr dZ1^T[R] X.
 *            Three barriers a step and none at its end: whatever a thread
 *            writes in step s+1 the other last read before a barrier of
 *            step s.  Crossing each step, both ways: the halves of H1^T
 *            (32 KB), the partial logits (2.5 KB), the partial dH1^T
 *            (32 KB): ~70 KB of data (~90 KB of padded lines).
 *
 * No buffer that one thread writes shares a 128-byte block with one that
 * the other writes (per-thread activations in batch mode, per-thread
 * halves of W2^T and batch-major H2 in features mode, 128-byte aligned
 * shared arrays and flags): the L2 prefetcher fetches lines in pairs, and
 * a pair split between the two threads ping-pongs between the cores at
 * every step (on this VM, vCPUs far, medians: batch 5,970 -> 8,120 and
 * features 7,500 -> 9,800 steps/s once removed).
 *
 * The two-thread modes sum in another order than one thread (the dW and
 * db sums over the two halves of the batch; the logits and dH1 sums over
 * the two halves of the features), so their results differ in the last
 * bits at the first step; 50 epochs of SGD at lr 0.1 amplify that to a
 * few 1e-3 of the final loss (batch 0.0316696465, features 0.0316812395
 * against 0.0315074411; ref_digits.c's own AVX2 build, which differs only
 * in the order of the bias-gradient sums, gives 0.0316451511).  At 10
 * epochs the three agree within 1e-6 (0.16479813, 0.164798019,
 * 0.164798046).
 *
 * Measured on the 2-vCPU Zen 5 VM (steps/s, medians, every run under
 * chrt -f 1, one / batch / features alternated with ref_digits.c and nnc's
 * W2 on one and two threads; runs sorted by the "barrier ns" they print):
 *   vCPUs close (barrier 40-65 ns, 9 rounds):  one 6,980, batch 12,340
 *     (1.77x), features 13,440 (1.93x); nnc --threads 2: 1.57x
 *   vCPUs far (barrier 220-380 ns, 73 rounds): one 6,900, batch 8,120
 *     (1.18x), features 9,800 (1.42x); nnc --threads 2: 1.19x
 * A step, per thread (REF_PROF=1): one thread 143-148 us; close: batch
 * 79-84 us (76-84 compute, 0-9 waiting), features 74-76 us (74-75
 * compute, 0.4-2 waiting); far: batch 117 us (110-113 compute, 4-6 waiting),
 * features 100 us (87-99 compute, 1-13 waiting).  Far, the features step
 * with its three exchanges reading the thread's own buffers instead (wrong
 * results, same work) still runs at only 1.5x: most of what is lost there
 * is not the data that crosses.
 */
#define _GNU_SOURCE	/* pthread_setaffinity_np, CPU_SET */
#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>	/* _mm_pause */
#include <x86intrin.h>	/* __rdtsc */

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
#define ALIGN128 __attribute__((aligned(128)))	/* what two threads share */
#define INLINE static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 16")

/* ------------------------------------------------------- vector layer */

#include "ref_digits_vec.h"

/* ------------------------------------------------------------- GEMM */

#include "ref_digits_gemm.h"

/* ------------------------------------------------------------- model */

/* parameters, W [out][in] */
static float W1[NH * NIN] ALIGN128, b1[NH] ALIGN128;
static float W2[NH * LDH] ALIGN128, b2[NH] ALIGN128;
static float W2T[NH * LDH] ALIGN128;	/* W2^T, refreshed before each dX GEMM */
static float W3[NOUT * NH] ALIGN128, b3[NOUT] ALIGN128;

/* data set, laid out once */
static float Xrow[MAX_ROWS * NIN] ALIGN64;		/* [row][in] */
static int label[MAX_ROWS];
static float XT[MAX_BATCHES][NIN * LDT] ALIGN64;	/* [batch][in][b] */
static float TT[MAX_BATCHES][NOUT * LDT] ALIGN64;	/* one-hot / nb, [class][b] */
static float VT[MAX_BATCHES][BATCH] ALIGN64;		/* 1/nb for real columns, else 0 */

/* activations and gradients, feature-major [feature][b] */
static float H1T[NH * LDT] ALIGN128, H2T[NH * LDT] ALIGN128;
static float Z3T[NOUT * LDT] ALIGN128, G3T[NOUT * LDT] ALIGN128;
static float G2T[NH * LDT] ALIGN128, G1T[NH * LDT] ALIGN128;
/* batch-major copies for the dW GEMMs [b][feature] */
static float H1[BATCH * LDH] ALIGN128, H2[BATCH * LDH] ALIGN128;
/* forward pass of one batch (n columns = nb rounded up to VL); leaves Z3T */
static void
forward(int bt, int n)
{
	gemm(EP_BIAS_RELU, NH, n, NIN, W1, NIN, 1, XT[bt], LDT, H1T, LDT, b1, NULL, NULL);
	gemm(EP_BIAS_RELU, NH, n, NH, W2, LDH, 1, H1T, LDT, H2T, LDT, b2, NULL, NULL);
	gemm(EP_BIAS, NOUT, n, NH, W3, NH, 1, H2T, LDT, Z3T, LDT, b3, NULL, NULL);
}

/* G = (softmax(Z) - onehot) / nb, 0 in padding columns, for n columns
 * (Z, G, T = TT[bt] and V = VT[bt], all from the same first column) */
static void
softmax_xent_grad(const float *restrict Z, float *restrict G,
    const float *restrict T, const float *restrict V, int n)
{
	for (int j = 0; j < n; j += VL) {
		vf z[NOUT], m = vload(Z + j), s;
		UNROLL for (int o = 1; o < NOUT; o++)
			m = vmax(m, vload(Z + o * LDT + j));
		s = vzero();
		UNROLL for (int o = 0; o < NOUT; o++) {
			z[o] = vexp(vsub(vload(Z + o * LDT + j), m));
			s = vadd(s, z[o]);
		}
		vf scale = vdiv(vload(V + j), s);
		UNROLL for (int o = 0; o < NOUT; o++)
			vstore(G + o * LDT + j, vsub(vmul(z[o], scale), vload(T + o * LDT + j)));
	}
}

/* time accounting (REF_PROF=1): per thread, cycles of compute before each
 * barrier (or step end) and of waiting in it */
enum { NSEG = 10 };
static int prof;
static struct {
	uint64_t last, comp[NSEG], wait[NSEG];
	long gen;
	char pad[128];
} ts[2] ALIGN128;

INLINE void
mark(int t, int seg)
{
	if (prof) {
		uint64_t now = __rdtsc();
		ts[t].comp[seg] += now - ts[t].last;
		ts[t].last = now;
	}
}

/* one step of the single-thread reference (ref_digits.c's train loop body) */
static void
step_one(int bt, int row0, int nb, int n)
{
	/* forward */
	forward(bt, n);
	mark(0, 0);
	softmax_xent_grad(Z3T, G3T, TT[bt], VT[bt], n);

	/* layer 3: dH2 = W3^T dZ3 (masked), then W3 -= lr dZ3 H2 */
	gemm(EP_MASK, NH, n, NOUT, W3, 1, NH, G3T, LDT, G2T, LDT, NULL, H2T, NULL);
	transpose(H2, LDH, H2T, LDT, NH, nb);
	gemm(EP_SGD, NOUT, NH, nb, G3T, LDT, 1, H2, LDH, W3, NH, NULL, NULL, NULL);
	bias_sgd(b3, G3T, NOUT, n);
	mark(0, 1);

	/* layer 2 */
	transpose(W2T, LDH, W2, LDH, NH, NH);
	mark(0, 2);
	gemm(EP_MASK, NH, n, NH, W2T, LDH, 1, G2T, LDT, G1T, LDT, NULL, H1T, NULL);
	mark(0, 3);
	transpose(H1, LDH, H1T, LDT, NH, nb);
	gemm(EP_SGD, NH, NH, nb, G2T, LDT, 1, H1, LDH, W2, LDH, NULL, NULL, NULL);
	bias_sgd(b2, G2T, NH, n);
	mark(0, 4);

	/* layer 1 */
	gemm(EP_SGD, NH, NIN, nb, G1T, LDT, 1, Xrow + (long)row0 * NIN, NIN, W1, NIN, NULL, NULL, NULL);
	bias_sgd(b1, G1T, NH, n);
	mark(0, 5);
}

/* ------------------------------------------------------------ threads */

enum { MODE_ONE, MODE_BATCH, MODE_FEATURES };
static int mode;

/* what the two-thread modes add: buffers one thread writes and the other
 * reads are marked (x) */
/* Every buffer that one thread writes lies in 128-byte blocks no other
 * thread writes: the L2 prefetcher fetches lines in 128-byte pairs, and a
 * pair split between the threads ping-pongs between the cores. */
static float W2Tb[NH * LDH] ALIGN128;	/* batch: thread 1's whole W2^T */
static struct {	/* batch: thread 1's activations (thread 0 has the globals) */
	float H1T[NH * LDT], H2T[NH * LDT], Z3T[NOUT * LDT], G3T[NOUT * LDT];
	float G2T[NH * LDT], G1T[NH * LDT], H1[BATCH * LDH], H2[BATCH * LDH];
} act1 ALIGN128;
enum { LDQ = NH / 2 + 16 };	/* features: half rows (576 bytes, 9 lines) */
static float W2Th[2][NH * LDQ] ALIGN128;	/* features: my columns of W2^T */
static float H2h[2][BATCH * LDQ] ALIGN128;	/* features: my columns of batch-major H2 */
static float PW1[NH * NIN] ALIGN128;	/* batch (x): partial dW, rows of the other thread */
static float PW2[NH * LDH] ALIGN128;
static float PW3[NOUT * NH] ALIGN128;
static float PB[2][3][NH] ALIGN128;	/* batch (x): partial bias gradients [thread][layer] */
static float H1b[BATCH * LDH] ALIGN128;	/* features: thread 1's batch-major H1 */
static float Zp[2][NOUT * LDT] ALIGN128;	/* features (x): partial logits */
static float Z3Tb[NOUT * LDT] ALIGN128, G3Tb[NOUT * LDT] ALIGN128; /* features: thread 1's */
static float D1p[2][(NH / 2) * LDT] ALIGN128; /* features (x): partial dH1^T, other's rows */

/*
 * Spin barrier for two threads pinned one per CPU.  Default: each thread
 * publishes how many barriers it has reached in its own cache line and
 * spins on the other's (REF_BARRIER=counter: one shared counter that both
 * increment atomically, the waiter spinning until it reaches 2 * gen).
 */
static struct {
	_Atomic long v;
	char pad[128 - sizeof(long)];
} flag[2] ALIGN128, counter ALIGN128;
static int use_counter;

static void
barrier(int t, int seg)
{
	long gen = ++ts[t].gen;
	uint64_t now = 0;
	if (prof && seg >= 0) {
		now = __rdtsc();
		ts[t].comp[seg] += now - ts[t].last;
	}
	if (use_counter) {
		atomic_fetch_add_explicit(&counter.v, 1, memory_order_acq_rel);
		while (atomic_load_explicit(&counter.v, memory_order_acquire) < 2 * gen)
			_mm_pause();
	} else {
		atomic_store_explicit(&flag[t].v, gen, memory_order_release);
		while (atomic_load_explicit(&flag[1 - t].v, memory_order_acquire) < gen)
			_mm_pause();
	}
	if (prof && seg >= 0) {
		uint64_t end = __rdtsc();
		ts[t].wait[seg] += end - now;
		ts[t].last = end;
	}
}

/* sums of the first n columns (n a multiple of VL, may be 0) of m rows */
static void
row_sums(float *restrict s, const float *restrict G, int m, int n)
{
	for (int o = 0; o < m; o++) {
		vf a = vzero();
		for (int j = 0; j < n; j += VL)
			a = vadd(a, vload(G + o * LDT + j));
		s[o] = vhsum(a);
	}
}

/*
 * Batch split: thread t takes columns [c0, c0 + nbt) of the batch (32 of
 * 64; of the last batch of 5 thread 0 takes all, thread 1 none and runs
 * its products with K = 0).  Forward and backward run on the thread's
 * columns against the whole (shared) weights; each thread owns half of
 * the output rows of every W and b (rows [t*128, +128) of W1, W2 and
 * their biases, rows [t*5, +5) of W3 and b3).  During the backward pass
 * it writes its partial dW for the OTHER thread's rows (PW*, PB); at the
 * middle barrier every read of the old weights is done; then it updates
 * its own rows, W -= lr (dW_mine + dW_other), the first sum straight from
 * the accumulators; the end barrier publishes the new weights.
 * Each thread computes its whole W2^T copy (a private buffer).
 */
static void
step_batch(int t, int bt, int row0, int nb)
{
	const int h = ((nb + 1) / 2 + VL - 1) / VL * VL;
	const int c0 = t * h;
	const int nbt = nb - c0 < 0 ? 0 : nb - c0 > h ? h : nb - c0;
	const int n = (nbt + VL - 1) / VL * VL;
	const int mrow = t * (NH / 2), orow = (1 - t) * (NH / 2);
	const int mrow3 = t * (NOUT / 2), orow3 = (1 - t) * (NOUT / 2);
	float *w2t = t ? W2Tb : W2T;
	float *h1t = t ? act1.H1T : H1T, *h2t = t ? act1.H2T : H2T;
	float *z3t = t ? act1.Z3T : Z3T, *g3t = t ? act1.G3T : G3T;
	float *g2t = t ? act1.G2T : G2T, *g1t = t ? act1.G1T : G1T;
	float *h1 = t ? act1.H1 : H1, *h2 = t ? act1.H2 : H2;
	const float *x = Xrow + (long)(row0 + c0) * NIN;

	/* forward on my columns */
	gemm(EP_BIAS_RELU, NH, n, NIN, W1, NIN, 1, XT[bt] + c0, LDT, h1t, LDT, b1, NULL, NULL);
	gemm(EP_BIAS_RELU, NH, n, NH, W2, LDH, 1, h1t, LDT, h2t, LDT, b2, NULL, NULL);
	gemm(EP_BIAS, NOUT, n, NH, W3, NH, 1, h2t, LDT, z3t, LDT, b3, NULL, NULL);
	softmax_xent_grad(z3t, g3t, TT[bt] + c0, VT[bt] + c0, n);
	mark(t, 0);

	/* layer 3 */
	gemm(EP_MASK, NH, n, NOUT, W3, 1, NH, g3t, LDT, g2t, LDT, NULL, h2t, NULL);
	transpose(h2, LDH, h2t, LDT, NH, nbt);
	gemm(EP_STORE, NOUT / 2, NH, nbt, g3t + orow3 * LDT, LDT, 1, h2, LDH,
	    PW3 + orow3 * NH, NH, NULL, NULL, NULL);
	row_sums(PB[t][2], g3t, NOUT, n);
	mark(t, 1);

	/* layer 2 */
	transpose(w2t, LDH, W2, LDH, NH, NH);
	mark(t, 2);
	gemm(EP_MASK, NH, n, NH, w2t, LDH, 1, g2t, LDT, g1t, LDT, NULL, h1t, NULL);
	mark(t, 3);
	transpose(h1, LDH, h1t, LDT, NH, nbt);
	gemm(EP_STORE, NH / 2, NH, nbt, g2t + (long)orow * LDT, LDT, 1, h1, LDH,
	    PW2 + (long)orow * LDH, LDH, NULL, NULL, NULL);
	row_sums(PB[t][1], g2t, NH, n);
	mark(t, 4);

	/* layer 1 */
	gemm(EP_STORE, NH / 2, NIN, nbt, g1t + (long)orow * LDT, LDT, 1, x, NIN,
	    PW1 + orow * NIN, NIN, NULL, NULL, NULL);
	row_sums(PB[t][0], g1t, NH, n);

	barrier(t, 5);

	/* my rows: W -= lr (mine + other's) */
	gemm(EP_SGD2, NOUT / 2, NH, nbt, g3t + mrow3 * LDT, LDT, 1, h2, LDH,
	    W3 + mrow3 * NH, NH, NULL, NULL, PW3 + mrow3 * NH);
	gemm(EP_SGD2, NH / 2, NH, nbt, g2t + (long)mrow * LDT, LDT, 1, h1, LDH,
	    W2 + (long)mrow * LDH, LDH, NULL, NULL, PW2 + (long)mrow * LDH);
	gemm(EP_SGD2, NH / 2, NIN, nbt, g1t + (long)mrow * LDT, LDT, 1, x, NIN,
	    W1 + mrow * NIN, NIN, NULL, NULL, PW1 + mrow * NIN);
	for (int o = mrow3; o < mrow3 + NOUT / 2; o++)
		b3[o] -= LR * (PB[t][2][o] + PB[1 - t][2][o]);
	for (int o = mrow; o < mrow + NH / 2; o++) {
		b2[o] -= LR * (PB[t][1][o] + PB[1 - t][1][o]);
		b1[o] -= LR * (PB[t][0][o] + PB[1 - t][0][o]);
	}

	barrier(t, 6);
}

/*
 * Feature split: thread t owns rows R = [t*128, t*128 + 128) of W1, W2,
 * b1, b2 and columns R of W3, i.e. the weights that produce its features
 * (and b3 belongs to thread 0).  The weights never cross; activations do:
 *   B1: H1^T[R] (each thread reads the other's half for layer 2, and
 *       transposes all of H1^T into its own batch-major H1 for dW2);
 *   B2: the partial logits W3[:, R] . H2^T[R] (10 x 64), summed by both
 *       in the same order (thread 0's includes b3), softmax by both;
 *   B3: dH1^T = W2^T dZ2^T is a sum over the 256 features of layer 2:
 *       each thread first computes its half of that sum for the OTHER
 *       thread's rows (D1p[t]), then, after B3, its own rows with the
 *       other's half added in the epilogue (and the relu mask).
 * No barrier at the end of the step: every buffer one thread writes in
 * step s+1 was last read by the other before a barrier of step s that the
 * writer had to pass (H1^T[R] before B3, Zp before B3, D1p after B3 of
 * step s but rewritten only after B2 of step s+1).
 */
static void
step_features(int t, int bt, int row0, int nb, int n)
{
	const int r = t * (NH / 2), o = (1 - t) * (NH / 2);
	float *h1 = t ? H1b : H1;
	float *z3t = t ? Z3Tb : Z3T, *g3t = t ? G3Tb : G3T;

	/* forward */
	gemm(EP_BIAS_RELU, NH / 2, n, NIN, W1 + r * NIN, NIN, 1, XT[bt], LDT,
	    H1T + (long)r * LDT, LDT, b1 + r, NULL, NULL);
	barrier(t, 0);
	gemm(EP_BIAS_RELU, NH / 2, n, NH, W2 + (long)r * LDH, LDH, 1, H1T, LDT,
	    H2T + (long)r * LDT, LDT, b2 + r, NULL, NULL);
	mark(t, 1);
	if (t == 0)
		gemm(EP_BIAS, NOUT, n, NH / 2, W3 + r, NH, 1, H2T + (long)r * LDT, LDT,
		    Zp[t], LDT, b3, NULL, NULL);
	else
		gemm(EP_STORE, NOUT, n, NH / 2, W3 + r, NH, 1, H2T + (long)r * LDT, LDT,
		    Zp[t], LDT, NULL, NULL, NULL);
	transpose(h1, LDH, H1T, LDT, NH, nb);
	barrier(t, 2);
	for (int i = 0; i < NOUT; i++)
		for (int j = 0; j < n; j += VL)
			vstore(z3t + i * LDT + j, vadd(vload(Zp[0] + i * LDT + j), vload(Zp[1] + i * LDT + j)));
	softmax_xent_grad(z3t, g3t, TT[bt], VT[bt], n);
	mark(t, 3);

	/* layer 3, my columns of W3 */
	gemm(EP_MASK, NH / 2, n, NOUT, W3 + r, 1, NH, g3t, LDT, G2T + (long)r * LDT, LDT,
	    NULL, H2T + (long)r * LDT, NULL);
	transpose(H2h[t], LDQ, H2T + (long)r * LDT, LDT, NH / 2, nb);
	gemm(EP_SGD, NOUT, NH / 2, nb, g3t, LDT, 1, H2h[t], LDQ, W3 + r, NH, NULL, NULL, NULL);
	if (t == 0)
		bias_sgd(b3, g3t, NOUT, n);
	mark(t, 4);

	/* layer 2: my columns of W2^T, my half of the dH1 sum for the other's rows */
	transpose(W2Th[t], LDQ, W2 + (long)r * LDH, LDH, NH / 2, NH);
	mark(t, 5);
	gemm(EP_STORE, NH / 2, n, NH / 2, W2Th[t] + (long)o * LDQ, LDQ, 1, G2T + (long)r * LDT, LDT,
	    D1p[t], LDT, NULL, NULL, NULL);
	barrier(t, 6);
	gemm(EP_ADDMASK, NH / 2, n, NH / 2, W2Th[t] + (long)r * LDQ, LDQ, 1, G2T + (long)r * LDT, LDT,
	    G1T + (long)r * LDT, LDT, NULL, H1T + (long)r * LDT, D1p[1 - t]);
	mark(t, 7);
	gemm(EP_SGD, NH / 2, NH, nb, G2T + (long)r * LDT, LDT, 1, h1, LDH, W2 + (long)r * LDH, LDH,
	    NULL, NULL, NULL);
	bias_sgd(b2 + r, G2T + (long)r * LDT, NH / 2, n);
	mark(t, 8);

	/* layer 1, my rows */
	gemm(EP_SGD, NH / 2, NIN, nb, G1T + (long)r * LDT, LDT, 1, Xrow + (long)row0 * NIN, NIN,
	    W1 + r * NIN, NIN, NULL, NULL, NULL);
	bias_sgd(b1 + r, G1T + (long)r * LDT, NH / 2, n);
	mark(t, 9);
}

static int nrows_g, epochs_g;
static int cpus[2];
static struct timespec t_start, t_end;	/* thread 0's clock around the loop */
static uint64_t tsc_start, tsc_end;
static double barrier_ns;	/* an empty barrier, measured before training */

static void
pin(int cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	int e = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
	if (e != 0) {
		fprintf(stderr, "ref_digits_threads: cannot pin to CPU %d: %s\n", cpu, strerror(e));
		exit(1);
	}
}

/* the training loop of thread t; returns the step count */
static long
run(int t)
{
	const int nbatches = (nrows_g + BATCH - 1) / BATCH;
	long steps = 0;
	if (mode != MODE_ONE) {
		/* the cost of a barrier alone, i.e. of a cache-line round trip
		 * between the two CPUs ("close" or "far" at the moment) */
		enum { NB = 20000 };
		barrier(t, -1);
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (int i = 0; i < NB; i++)
			barrier(t, -1);
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (t == 0)
			barrier_ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / NB;
		barrier(t, -1);	/* start together */
	}
	if (t == 0) {
		clock_gettime(CLOCK_MONOTONIC, &t_start);
		tsc_start = __rdtsc();
	}
	ts[t].last = __rdtsc();
	for (int ep = 0; ep < epochs_g; ep++) {
		for (int bt = 0; bt < nbatches; bt++) {
			const int row0 = bt * BATCH;
			const int nb = nrows_g - row0 < BATCH ? nrows_g - row0 : BATCH;
			const int n = (nb + VL - 1) / VL * VL;
			if (mode == MODE_ONE) {
				step_one(bt, row0, nb, n);
			} else if (mode == MODE_BATCH) {
				step_batch(t, bt, row0, nb);
			} else {
				step_features(t, bt, row0, nb, n);
			}
			steps++;
		}
	}
	if (mode != MODE_ONE)
		barrier(t, -1);	/* end together */
	if (t == 0) {
		clock_gettime(CLOCK_MONOTONIC, &t_end);
		tsc_end = __rdtsc();
	}
	return steps;
}

static void *
worker(void *arg)
{
	(void)arg;
	run(1);
	return NULL;
}

static long
train(int nrows, int epochs, double *flops)
{
	nrows_g = nrows;
	epochs_g = epochs;
	pthread_t th;
	if (mode != MODE_ONE) {
		/* born on its CPU: under SCHED_FIFO a thread created on thread
		 * 0's CPU would never run there while thread 0 spins */
		pthread_attr_t attr;
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(cpus[1], &set);
		pthread_attr_init(&attr);
		pthread_attr_setaffinity_np(&attr, sizeof set, &set);
		int e = pthread_create(&th, &attr, worker, NULL);
		pthread_attr_destroy(&attr);
		if (e != 0) {
			fprintf(stderr, "ref_digits_threads: pthread_create: %s\n", strerror(e));
			exit(1);
		}
	}
	long steps = run(0);
	if (mode != MODE_ONE)
		pthread_join(th, NULL);
	const int nbatches = (nrows + BATCH - 1) / BATCH;
	double fl = 0.0;
	for (int bt = 0; bt < nbatches; bt++) {
		const int nb = nrows - bt * BATCH < BATCH ? nrows - bt * BATCH : BATCH;
		fl += 2.0 * nb * ((double)NH * NIN + (double)NH * NH + (double)NOUT * NH /* forward */
		    + (double)NOUT * NH + (double)NH * NH /* dX, layers 3 and 2 */
		    + (double)NOUT * NH + (double)NH * NH + (double)NH * NIN); /* dW */
	}
	*flops = fl * epochs;
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

#define REF_NAME "ref_digits_threads"
#include "ref_digits_input.h"

/* the segments of a step that REF_PROF=1 reports, by mode */
static const char *const seg_name[3][NSEG] = {
	{ "forward (3 layers)", "softmax, layer 3 bwd + SGD", "W2^T transpose",
	  "dH1 GEMM", "H1 transpose, dW2 + SGD", "dW1 + SGD" },
	{ "forward (3 layers), softmax", "layer 3 bwd, partial dW3", "W2^T transpose (whole)",
	  "dH1 GEMM", "H1 transpose, partial dW2", "partial dW1 | B1: partials",
	  "update of my rows (mine + other's partials) | B2: new weights" },
	{ "fwd layer 1 (my features) | B1: H1^T halves", "fwd layer 2",
	  "partial logits, H1 transpose | B2: logits partials", "logits sum, softmax",
	  "layer 3 bwd + SGD (my columns)", "W2^T transpose (my columns)",
	  "dH1 half for the other's rows | B3: dH1 partials", "dH1 my rows (+ other's half)",
	  "dW2 + SGD", "dW1 + SGD" },
};

static void
report_prof(long steps, double secs)
{
	const double ticks_per_us = (double)(tsc_end - tsc_start) / (secs * 1e6);
	const int nt = mode == MODE_ONE ? 1 : 2;
	printf("profile (us/step; TSC %.0f MHz)\n", ticks_per_us);
	for (int t = 0; t < nt; t++) {
		double tc = 0, tw = 0;
		for (int k = 0; k < NSEG && seg_name[mode][k]; k++) {
			if (!ts[t].comp[k] && !ts[t].wait[k])
				continue;
			double c = ts[t].comp[k] / ticks_per_us / steps, w = ts[t].wait[k] / ticks_per_us / steps;
			tc += c;
			tw += w;
			printf("  thread %d  compute %7.2f  wait %6.2f  %s\n", t, c, w, seg_name[mode][k]);
		}
		printf("  thread %d  compute %7.2f  wait %6.2f  total %.2f\n", t, tc, tw, tc + tw);
	}
}

int
main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: ref_digits_threads DIGITS.csv INIT.safetensors one|batch|features [EPOCHS]\n");
		return 2;
	}
	if (strcmp(argv[3], "one") == 0)
		mode = MODE_ONE;
	else if (strcmp(argv[3], "batch") == 0)
		mode = MODE_BATCH;
	else if (strcmp(argv[3], "features") == 0)
		mode = MODE_FEATURES;
	else
		die("unknown mode %s (one, batch or features)", argv[3]);
	int epochs = argc == 5 ? atoi(argv[4]) : 50;
	if (epochs < 0)
		die("bad epoch count %s", argv[4]);
	const char *e = getenv("REF_PROF");
	prof = e && *e && strcmp(e, "0") != 0;
	e = getenv("REF_BARRIER");
	use_counter = e && strcmp(e, "counter") == 0;

	/* the first two CPUs this process may run on */
	cpu_set_t allowed;
	if (sched_getaffinity(0, sizeof allowed, &allowed) != 0)
		die("%s", "sched_getaffinity failed");
	int nc = 0;
	for (int c = 0; c < CPU_SETSIZE && nc < 2; c++)
		if (CPU_ISSET(c, &allowed))
			cpus[nc++] = c;
	if (nc < (mode == MODE_ONE ? 1 : 2))
		die("%s", "fewer than two CPUs allowed");
	pin(cpus[0]);

	int nrows = load_csv(argv[1]);
	if (nrows == 0)
		die("%s: no rows", argv[1]);
	layout_batches(nrows);
	load_init(argv[2]);
	/* fault in every buffer before the clock starts (a minor fault costs
	 * ~15 us on this kind of VM) */
	memset(W2T, 0, sizeof W2T);
	memset(W2Tb, 0, sizeof W2Tb);
	memset(PW1, 0, sizeof PW1);
	memset(PW2, 0, sizeof PW2);
	memset(PW3, 0, sizeof PW3);
	memset(PB, 0, sizeof PB);
	memset(H1T, 0, sizeof H1T);
	memset(H2T, 0, sizeof H2T);
	memset(Z3T, 0, sizeof Z3T);
	memset(G3T, 0, sizeof G3T);
	memset(G2T, 0, sizeof G2T);
	memset(G1T, 0, sizeof G1T);
	memset(H1, 0, sizeof H1);
	memset(H2, 0, sizeof H2);
	memset(H1b, 0, sizeof H1b);
	memset(Zp, 0, sizeof Zp);
	memset(Z3Tb, 0, sizeof Z3Tb);
	memset(G3Tb, 0, sizeof G3Tb);
	memset(D1p, 0, sizeof D1p);
	memset(&act1, 0, sizeof act1);
	memset(W2Th, 0, sizeof W2Th);
	memset(H2h, 0, sizeof H2h);

	double flops;
	long steps = train(nrows, epochs, &flops);
	double secs = (double)(t_end.tv_sec - t_start.tv_sec) + 1e-9 * (double)(t_end.tv_nsec - t_start.tv_nsec);

	double loss, acc;
	evaluate(nrows, &loss, &acc);
	printf("mode %s\n", argv[3]);
	printf("final train loss %.9g\n", loss);
	printf("final train accuracy %.9g\n", acc);
	printf("train time %.9f s\n", secs);
	printf("steps %ld\n", steps);
	printf("ns/step %.3f\n", steps > 0 ? secs * 1e9 / (double)steps : 0.0);
	printf("steps/s %.1f\n", secs > 0 ? (double)steps / secs : 0.0);
	printf("GFLOP/s %.2f\n", secs > 0 ? flops / secs * 1e-9 : 0.0);
	if (mode != MODE_ONE)
		printf("barrier ns %.1f\n", barrier_ns);
	if (prof)
		report_prof(steps, secs);
	return 0;
}
