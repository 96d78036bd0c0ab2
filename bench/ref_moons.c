/* ref_moons.c -- hand-written reference for benchmark workload W1 (moons).
 *
 * Build:
 *   gcc -O2 -march=native -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra \
 *       -o ref_moons bench/ref_moons.c -lcjson -lm
 *   (-O3 gives the same speed.)
 *
 * Usage:
 *   ref_moons TRAIN.csv VALID.csv INIT.safetensors [EPOCHS]
 *
 * The seed's training exactly: 2 -> linear(4) -> relu -> linear(4) -> relu
 * -> linear(4) -> relu -> linear(1), W stored [out][in], y = W x + b,
 * per-sample loss sum((t - y)^2), SGD lr 0.05, batch 1, dataset order,
 * 400 epochs by default, f64, relu'(0) = 0.
 *
 * Written the way an expert writes it: every size is a compile-time
 * constant, all parameters live in registers for the whole training loop,
 * every step is fully unrolled and fused (forward, loss, backward and
 * update in one pass, no gradient buffers), and nothing is allocated.
 * Each step depends on the previous one through the weights, so what
 * counts is the latency of the chain update -> forward -> backward ->
 * update, not the flop count:
 *
 *  - With AVX2 + FMA (also used when AVX-512 is there) a layer of width 4
 *    is one ymm register of doubles and a 4x4 matrix is four registers
 *    holding its wrapped diagonals (see the comment at train()), so no
 *    horizontal sums or per-element broadcasts sit on the chain.
 *  - Dot products are summed as two FMA chains added at the end; the
 *    learning rate is folded into the output error once (g = 2 lr (t - y))
 *    so every later gradient already carries it; the relu masks are
 *    compares and ANDs, not branches, and layer 3's mask is folded into w4
 *    during the forward pass; each layer's weights are updated right after
 *    they have propagated the error.
 *  - Without AVX2 + FMA the same step is written on scalars.
 *
 * The final losses are rounding-stable (expected.json: rounding_sensitivity
 * stable), so FMA and the different summation order agree with the golden
 * numbers to ~1e-15.
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

enum { N_IN = 2, N_H = 4, MAX_ROWS = 1 << 20 };

#define LR 0.05

typedef struct {
	double W1[N_H][N_IN], b1[N_H];
	double W2[N_H][N_H], b2[N_H];
	double W3[N_H][N_H], b3[N_H];
	double W4[N_H], b4;
} Params;

/* ---------------------------------------------------------------- input */

#define REF_NAME "ref_moons"
#include "ref_io.h"

/* CSV with header "x1,x2,t": returns the row count, X as [n][2], T as [n]. */
static int
load_csv(const char *path, double **X, double **T)
{
	char *buf, *p = csv_open(path, &buf);
	int cap = 1024, n = 0;
	double *x = malloc(sizeof(double) * 2 * (size_t)cap);
	double *t = malloc(sizeof(double) * (size_t)cap);
	double v[3];
	while (csv_row(path, &p, v, 3)) {
		if (n == cap) {
			cap *= 2;
			x = realloc(x, sizeof(double) * 2 * (size_t)cap);
			t = realloc(t, sizeof(double) * (size_t)cap);
		}
		x[2 * n] = v[0];
		x[2 * n + 1] = v[1];
		t[n] = v[2];
		if (++n > MAX_ROWS)
			die("%s: too many rows", path);
	}
	free(buf);
	*X = x;
	*T = t;
	return n;
}

/* The initial parameters: the F64 tensors of a safetensors file. */
static void
load_init(const char *path, Params *P)
{
	Safetensors st = st_open(path);
	st_get(&st, "linear1.W", "F64", &P->W1[0][0], N_H * N_IN, sizeof(double));
	st_get(&st, "linear1.b", "F64", P->b1, N_H, sizeof(double));
	st_get(&st, "linear2.W", "F64", &P->W2[0][0], N_H * N_H, sizeof(double));
	st_get(&st, "linear2.b", "F64", P->b2, N_H, sizeof(double));
	st_get(&st, "linear3.W", "F64", &P->W3[0][0], N_H * N_H, sizeof(double));
	st_get(&st, "linear3.b", "F64", P->b3, N_H, sizeof(double));
	st_get(&st, "linear4.W", "F64", P->W4, N_H, sizeof(double));
	st_get(&st, "linear4.b", "F64", &P->b4, 1, sizeof(double));
	st_close(&st);
}

/* ---------------------------------------------------------------- model */

#define UNROLL _Pragma("GCC unroll 16")

/* fused multiply-add where the hardware has it, a*b+c otherwise */
#ifdef __FMA__
#define FMA(a, b, c) fma(a, b, c)
#else
#define FMA(a, b, c) ((a) * (b) + (c))
#endif

static inline double
relu(double a)
{
	return a > 0.0 ? a : 0.0;
}

/* w . h + b for 4 inputs as two independent FMA chains (latency 4+4+3). */
static inline double
dot4b(const double w[N_H], const double h[N_H], double b)
{
	return FMA(w[1], h[1], FMA(w[0], h[0], b)) + FMA(w[3], h[3], w[2] * h[2]);
}

static double
predict(const Params *P, double x0, double x1)
{
	double h1[N_H], h2[N_H], h3[N_H];
	UNROLL for (int i = 0; i < N_H; i++)
		h1[i] = relu(FMA(P->W1[i][1], x1, FMA(P->W1[i][0], x0, P->b1[i])));
	UNROLL for (int i = 0; i < N_H; i++)
		h2[i] = relu(dot4b(P->W2[i], h1, P->b2[i]));
	UNROLL for (int i = 0; i < N_H; i++)
		h3[i] = relu(dot4b(P->W3[i], h2, P->b3[i]));
	return dot4b(P->W4, h3, P->b4);
}

static double
mean_loss(const Params *P, const double *X, const double *T, int n)
{
	double s = 0.0;
	for (int r = 0; r < n; r++) {
		double e = T[r] - predict(P, X[2 * r], X[2 * r + 1]);
		s += e * e;
	}
	return s / n;
}

/*
 * The training loop.  One step:
 *
 *   h1 = relu(W1 x + b1), h2 = relu(W2 h1 + b2), h3 = relu(W3 h2 + b3),
 *   y = W4 h3 + b4,  g = -lr dL/dy = 2 lr (t - y),
 *   g3 = [h3 > 0] W4^T g, then W4 += g h3, b4 += g,
 *   g2 = [h2 > 0] W3^T g3, then W3 += g3 h2^T, b3 += g3,
 *   g1 = [h1 > 0] W2^T g2, then W2 += g2 h1^T, b2 += g2,
 *   W1 += g1 x^T, b1 += g1.
 *
 * Every step depends on the previous one through the weights, so the time
 * per step is the latency of that chain, not the flop count.
 */
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

/*
 * AVX2 version: a layer of width 4 is one ymm register of doubles, and the
 * whole state is 15 registers.  A 4x4 matrix is kept as its four wrapped
 * diagonals D_k[i] = W[i][(i+k)%4], so with rot_k(v)[i] = v[(i+k)%4]:
 *
 *   forward   W h     = sum_k D_k * rot_k(h)
 *   backward  W^T g   = sum_k rot_{-k}(D_k * g)
 *   update    D_k    += g * rot_k(h)          (rot_k(h) from the forward)
 *
 * A rotation costs 4 cycles (vperm2f128 + vshufpd), less than broadcasting
 * each element.  y comes out of a butterfly sum in every lane, so g needs no
 * broadcast; b4 is folded into c = 2 lr (t - b4), computed off the chain.
 * The relu masks are applied to w4 during the forward pass, off the chain.
 */
typedef __m256d V;

#define VFMA(a, b, c) _mm256_fmadd_pd(a, b, c)
#define VMUL(a, b) _mm256_mul_pd(a, b)
#define VADD(a, b) _mm256_add_pd(a, b)
#define VAND(a, b) _mm256_and_pd(a, b)
#define VGT0(a) _mm256_cmp_pd(a, _mm256_setzero_pd(), _CMP_GT_OQ)
#define VRELU(a) _mm256_max_pd(a, _mm256_setzero_pd())
#define ROT2(v) _mm256_permute2f128_pd(v, v, 1)

/* r[k] = rot_k(h), k = 0..3 */
#define ROTATE(r, h) do { \
	V r2_ = ROT2(h); \
	r[0] = h; \
	r[1] = _mm256_shuffle_pd(h, r2_, 5); \
	r[2] = r2_; \
	r[3] = _mm256_shuffle_pd(r2_, h, 5); \
} while (0)

/* W h + b = sum_k D_k * rot_k(h) + b: two chains of two, then one add */
#define FWD(D, r, b) \
	VADD(VFMA(D[1], r[1], VFMA(D[0], r[0], b)), VFMA(D[3], r[3], VMUL(D[2], r[2])))

/* W^T g = D_0 g + rot_3(D_1 g) + rot_2(D_2 g) + rot_1(D_3 g) */
static inline V
bwd(const V D[4], V g)
{
	V p1 = VMUL(D[1], g), p2 = VMUL(D[2], g), p3 = VMUL(D[3], g);
	V q1 = ROT2(p1), q3 = ROT2(p3);
	V r3p1 = _mm256_shuffle_pd(q1, p1, 5);
	V r1p3 = _mm256_shuffle_pd(p3, q3, 5);
	return VADD(VFMA(D[0], g, ROT2(p2)), VADD(r3p1, r1p3));
}

static long
train(Params *P, const double *restrict X, const double *restrict T, int n,
    int epochs)
{
	V C0, C1, b1, D2[4], b2, D3[4], b3, w4, b4;

	C0 = _mm256_setr_pd(P->W1[0][0], P->W1[1][0], P->W1[2][0], P->W1[3][0]);
	C1 = _mm256_setr_pd(P->W1[0][1], P->W1[1][1], P->W1[2][1], P->W1[3][1]);
	b1 = _mm256_loadu_pd(P->b1);
	b2 = _mm256_loadu_pd(P->b2);
	b3 = _mm256_loadu_pd(P->b3);
	w4 = _mm256_loadu_pd(P->W4);
	b4 = _mm256_set1_pd(P->b4);
	UNROLL for (int k = 0; k < 4; k++) {
		D2[k] = _mm256_setr_pd(P->W2[0][k & 3], P->W2[1][(1 + k) & 3],
		    P->W2[2][(2 + k) & 3], P->W2[3][(3 + k) & 3]);
		D3[k] = _mm256_setr_pd(P->W3[0][k & 3], P->W3[1][(1 + k) & 3],
		    P->W3[2][(2 + k) & 3], P->W3[3][(3 + k) & 3]);
	}
	const V two_lr = _mm256_set1_pd(2.0 * LR), m_two_lr = _mm256_set1_pd(-2.0 * LR);

	for (int ep = 0; ep < epochs; ep++) {
		for (int r = 0; r < n; r++) {
#ifndef __AVX512VL__
			/* Only 16 ymm registers: keep the parameters that start the
			 * chain (layer 1) and w4, b4 in registers; GCC would
			 * otherwise spill exactly these (~12% slower on Zen 3). */
			__asm__("" : "+x"(C0), "+x"(C1), "+x"(b1), "+x"(w4), "+x"(b4));
#endif
			const V x0 = _mm256_broadcast_sd(&X[2 * r]);
			const V x1 = _mm256_broadcast_sd(&X[2 * r + 1]);
			const V t = _mm256_broadcast_sd(&T[r]);
			V h1[4], h2[4];

			/* c = 2 lr (t - b4), ready long before y */
			const V c = VMUL(two_lr, _mm256_sub_pd(t, b4));

			/* forward */
			V h = VRELU(VFMA(C1, x1, VFMA(C0, x0, b1)));
			ROTATE(h1, h);
			h = VRELU(FWD(D2, h1, b2));
			ROTATE(h2, h);
			const V h3 = VRELU(FWD(D3, h2, b3));
			const V w4m = VAND(VGT0(h3), w4);

			/* y - b4 = sum(w4 * h3) in every lane; g = 2 lr (t - y) */
			V s = VMUL(w4, h3);
			s = VADD(s, ROT2(s));
			s = VADD(s, _mm256_permute_pd(s, 5));
			const V g = VFMA(s, m_two_lr, c);

			/* layer 4 */
			const V g3 = VMUL(w4m, g);
			w4 = VFMA(g, h3, w4);
			b4 = VADD(b4, g);

			/* layer 3 */
			const V g2 = VAND(VGT0(h2[0]), bwd(D3, g3));
			UNROLL for (int k = 0; k < 4; k++)
				D3[k] = VFMA(g3, h2[k], D3[k]);
			b3 = VADD(b3, g3);

			/* layer 2 */
			const V g1 = VAND(VGT0(h1[0]), bwd(D2, g2));
			UNROLL for (int k = 0; k < 4; k++)
				D2[k] = VFMA(g2, h1[k], D2[k]);
			b2 = VADD(b2, g2);

			/* layer 1 */
			C0 = VFMA(g1, x0, C0);
			C1 = VFMA(g1, x1, C1);
			b1 = VADD(b1, g1);
		}
	}

	double c0[4], c1[4], d2[4][4], d3[4][4];
	_mm256_storeu_pd(c0, C0);
	_mm256_storeu_pd(c1, C1);
	_mm256_storeu_pd(P->b1, b1);
	_mm256_storeu_pd(P->b2, b2);
	_mm256_storeu_pd(P->b3, b3);
	_mm256_storeu_pd(P->W4, w4);
	P->b4 = _mm256_cvtsd_f64(b4);
	UNROLL for (int k = 0; k < 4; k++) {
		_mm256_storeu_pd(d2[k], D2[k]);
		_mm256_storeu_pd(d3[k], D3[k]);
	}
	UNROLL for (int i = 0; i < 4; i++) {
		P->W1[i][0] = c0[i];
		P->W1[i][1] = c1[i];
		UNROLL for (int k = 0; k < 4; k++) {
			P->W2[i][(i + k) & 3] = d2[k][i];
			P->W3[i][(i + k) & 3] = d3[k][i];
		}
	}
	return (long)epochs * n;
}

#else /* portable scalar version */

static long
train(Params *P, const double *restrict X, const double *restrict T, int n,
    int epochs)
{
	double W1[N_H][N_IN], b1[N_H], W2[N_H][N_H], b2[N_H];
	double W3[N_H][N_H], b3[N_H], W4[N_H], b4 = P->b4;
	memcpy(W1, P->W1, sizeof W1);
	memcpy(b1, P->b1, sizeof b1);
	memcpy(W2, P->W2, sizeof W2);
	memcpy(b2, P->b2, sizeof b2);
	memcpy(W3, P->W3, sizeof W3);
	memcpy(b3, P->b3, sizeof b3);
	memcpy(W4, P->W4, sizeof W4);

	for (int ep = 0; ep < epochs; ep++) {
		for (int r = 0; r < n; r++) {
			const double x0 = X[2 * r], x1 = X[2 * r + 1], t = T[r];
			double h1[N_H], h2[N_H], h3[N_H];
			double g1[N_H], g2[N_H], g3[N_H];

			/* forward */
			UNROLL for (int i = 0; i < N_H; i++)
				h1[i] = relu(FMA(W1[i][1], x1, FMA(W1[i][0], x0, b1[i])));
			UNROLL for (int i = 0; i < N_H; i++)
				h2[i] = relu(dot4b(W2[i], h1, b2[i]));
			UNROLL for (int i = 0; i < N_H; i++)
				h3[i] = relu(dot4b(W3[i], h2, b3[i]));
			const double y = dot4b(W4, h3, b4);

			/* loss (t - y)^2; g = -lr * dL/dy */
			const double g = (2.0 * LR) * (t - y);

			/* layer 4 */
			UNROLL for (int j = 0; j < N_H; j++)
				g3[j] = h3[j] > 0.0 ? W4[j] * g : 0.0;
			UNROLL for (int j = 0; j < N_H; j++)
				W4[j] = FMA(g, h3[j], W4[j]);
			b4 += g;

			/* layer 3 */
			UNROLL for (int j = 0; j < N_H; j++) {
				double d = FMA(W3[1][j], g3[1], W3[0][j] * g3[0]) +
				    FMA(W3[3][j], g3[3], W3[2][j] * g3[2]);
				g2[j] = h2[j] > 0.0 ? d : 0.0;
			}
			UNROLL for (int i = 0; i < N_H; i++) {
				UNROLL for (int j = 0; j < N_H; j++)
					W3[i][j] = FMA(g3[i], h2[j], W3[i][j]);
				b3[i] += g3[i];
			}

			/* layer 2 */
			UNROLL for (int j = 0; j < N_H; j++) {
				double d = FMA(W2[1][j], g2[1], W2[0][j] * g2[0]) +
				    FMA(W2[3][j], g2[3], W2[2][j] * g2[2]);
				g1[j] = h1[j] > 0.0 ? d : 0.0;
			}
			UNROLL for (int i = 0; i < N_H; i++) {
				UNROLL for (int j = 0; j < N_H; j++)
					W2[i][j] = FMA(g2[i], h1[j], W2[i][j]);
				b2[i] += g2[i];
			}

			/* layer 1 */
			UNROLL for (int i = 0; i < N_H; i++) {
				W1[i][0] = FMA(g1[i], x0, W1[i][0]);
				W1[i][1] = FMA(g1[i], x1, W1[i][1]);
				b1[i] += g1[i];
			}
		}
	}

	memcpy(P->W1, W1, sizeof W1);
	memcpy(P->b1, b1, sizeof b1);
	memcpy(P->W2, W2, sizeof W2);
	memcpy(P->b2, b2, sizeof b2);
	memcpy(P->W3, W3, sizeof W3);
	memcpy(P->b3, b3, sizeof b3);
	memcpy(P->W4, W4, sizeof W4);
	P->b4 = b4;
	return (long)epochs * n;
}

#endif

int
main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: ref_moons TRAIN.csv VALID.csv INIT.safetensors [EPOCHS]\n");
		return 2;
	}
	int epochs = argc == 5 ? atoi(argv[4]) : 400;
	if (epochs < 0)
		die("bad epoch count %s", argv[4]);

	double *Xtr, *Ttr, *Xva, *Tva;
	int ntr = load_csv(argv[1], &Xtr, &Ttr);
	int nva = load_csv(argv[2], &Xva, &Tva);
	if (ntr == 0 || nva == 0)
		die("%s", "empty data set");
	static Params P;
	load_init(argv[3], &P);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long steps = train(&P, Xtr, Ttr, ntr, epochs);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);

	printf("final train loss %.17g\n", mean_loss(&P, Xtr, Ttr, ntr));
	printf("final valid loss %.17g\n", mean_loss(&P, Xva, Tva, nva));
	printf("train time %.9f s\n", secs);
	printf("steps %ld\n", steps);
	printf("ns/step %.3f\n", steps > 0 ? secs * 1e9 / (double)steps : 0.0);
	free(Xtr);
	free(Ttr);
	free(Xva);
	free(Tva);
	return 0;
}
