/* ref_digits_gemm.h -- the kernels of bench/ref_digits.c and
 * bench/ref_digits_threads.c: the register-blocked GEMM with its epilogues
 * (the partial-sum ones, EP_STORE, EP_SGD2 and EP_ADDMASK with their P
 * operand, only the threads use), the 8 x 8 transpose, a vector's sum and
 * the bias step.  Included by both after ref_digits_vec.h, with the sizes
 * (MR, NV, NR, VL, LDT), LR, INLINE and UNROLL defined.
 */

/* What happens to a finished tile. */
enum {
	EP_BIAS_RELU,	/* C = relu(acc + bias[row]) */
	EP_BIAS,	/* C = acc + bias[row] */
	EP_MASK,	/* C = acc where H > 0, else 0 (H has C's layout) */
	EP_SGD,		/* C -= lr * acc */
	EP_STORE,	/* C = acc (a partial sum the other thread reads) */
	EP_SGD2,	/* C -= lr * (acc + P), P the other thread's partial dW */
	EP_ADDMASK,	/* C = acc + P where H > 0, else 0 */
};

/*
 * One mr x (nv*VL) tile:  C(i, j) <- epilogue(sum_k A(i,k) B(k,j))
 * with A(i,k) = A[i*ars + k*aks] (broadcast from memory, any strides),
 * B(k,j) = B[k*ldb + j] and C(i,j) = C[i*ldc + j] (64-byte aligned rows;
 * H and P, when used, have C's layout).
 * Called with constant mr, nv, ep, so the accumulators live in registers.
 */
INLINE void
tile(const int ep, const int mr, const int nv, int K,
    const float *restrict A, long ars, long aks,
    const float *restrict B, long ldb,
    float *restrict C, long ldc, const float *restrict bias,
    const float *restrict H, const float *restrict P)
{
	vf acc[MR][NV];
	UNROLL for (int i = 0; i < mr; i++)
		UNROLL for (int v = 0; v < nv; v++)
			acc[i][v] = vzero();
	if (ep == EP_SGD || ep == EP_SGD2)	/* the weights come from L2: fetch them early */
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
		} else if (ep == EP_STORE) {
			UNROLL for (int v = 0; v < nv; v++)
				vstore(c + v * VL, acc[i][v]);
		} else if (ep == EP_SGD2) {
			const float *q = P + i * ldc;
			UNROLL for (int v = 0; v < nv; v++)
				vstore(c + v * VL, vfma(vadd(acc[i][v], vload(q + v * VL)), vset1(-LR), vload(c + v * VL)));
		} else if (ep == EP_ADDMASK) {
			const float *h = H + i * ldc, *q = P + i * ldc;
			UNROLL for (int v = 0; v < nv; v++)
				vstore(c + v * VL, vmask_gt0(vload(h + v * VL), vadd(acc[i][v], vload(q + v * VL))));
		} else {
			UNROLL for (int v = 0; v < nv; v++)
				vstore(c + v * VL, vfma(acc[i][v], vset1(-LR), vload(c + v * VL)));
		}
	}
}

/* A tile with run-time mr (1..MR) and nv (1..NV), dispatched to constant
 * shapes (the clamps only keep impossible cases well-formed). */
#define TILE(mr_, nv_) tile(ep, (mr_) < MR ? (mr_) : MR, (nv_) < NV ? (nv_) : NV, \
	K, A, ars, aks, B, ldb, C, ldc, bias, H, P)
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
    const float *restrict H, const float *restrict P)
{
#if MR > 6 || NV > 8
#error "tile_any handles tiles up to 6 x 8 vectors"
#endif
	if (mr == MR && nv == NV) {	/* the hot case */
		tile(ep, MR, NV, K, A, ars, aks, B, ldb, C, ldc, bias, H, P);
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
    const float *restrict H, const float *restrict P)
{
	for (int j = 0; j < N; j += NR) {
		int nv = (N - j < NR ? N - j : NR) / VL;
		for (int i = 0; i < M; i += MR) {
			int mr = M - i < MR ? M - i : MR;
			tile_any(ep, mr, nv, K, A + i * ars, ars, aks, B + j, ldb,
			    C + i * ldc + j, ldc, bias ? bias + i : bias,
			    H ? H + i * ldc + j : H, P ? P + i * ldc + j : P);
		}
	}
}


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
