/* ref_digits_vec.h -- the vector layer of bench/ref_digits.c and
 * bench/ref_digits_threads.c: VL floats a vector, an MR x NV-vector tile
 * of accumulators and the few vector operations their microkernel uses,
 * for AVX-512, AVX2 + FMA, or portable scalar code.  Needs INLINE.
 */

#if defined(__AVX512F__)
#include <immintrin.h>
#define VL 16	/* floats per vector */
#define MR 6	/* tile rows */
#define NV 4	/* tile vectors: 6 x 64 floats, 24 zmm accumulators */
typedef __m512 vf;
#define vzero() _mm512_setzero_ps()
#define vset1(x) _mm512_set1_ps(x)
#define vbcast(p) _mm512_set1_ps(*(p))
#define vload(p) _mm512_load_ps(p)
#define vstore(p, v) _mm512_store_ps(p, v)
#define vfma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define vmul(a, b) _mm512_mul_ps(a, b)
#define vadd(a, b) _mm512_add_ps(a, b)
#define vsub(a, b) _mm512_sub_ps(a, b)
#define vdiv(a, b) _mm512_div_ps(a, b)
#define vmax(a, b) _mm512_max_ps(a, b)
#define vrelu(a) _mm512_max_ps(a, _mm512_setzero_ps())
/* x where h > 0, else 0 */
#define vmask_gt0(h, x) _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(h, _mm512_setzero_ps(), _CMP_GT_OQ), x)
#define vround(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define vpow2i(n) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define VL 8
#define MR 6
#define NV 2	/* 6 x 16 floats, 12 ymm accumulators */
typedef __m256 vf;
#define vzero() _mm256_setzero_ps()
#define vset1(x) _mm256_set1_ps(x)
#define vbcast(p) _mm256_broadcast_ss(p)
#define vload(p) _mm256_load_ps(p)
#define vstore(p, v) _mm256_store_ps(p, v)
#define vfma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define vmul(a, b) _mm256_mul_ps(a, b)
#define vadd(a, b) _mm256_add_ps(a, b)
#define vsub(a, b) _mm256_sub_ps(a, b)
#define vdiv(a, b) _mm256_div_ps(a, b)
#define vmax(a, b) _mm256_max_ps(a, b)
#define vrelu(a) _mm256_max_ps(a, _mm256_setzero_ps())
#define vmask_gt0(h, x) _mm256_and_ps(_mm256_cmp_ps(h, _mm256_setzero_ps(), _CMP_GT_OQ), x)
#define vround(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define vpow2i(n) _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#else
#define SCALAR_FALLBACK 1
#define VL 1
#define MR 4
#define NV 8	/* 4 x 8 scalars */
typedef float vf;
#define vzero() 0.0f
#define vset1(x) (x)
#define vbcast(p) (*(p))
#define vload(p) (*(p))
#define vstore(p, v) (*(p) = (v))
#define vfma(a, b, c) ((a) * (b) + (c))
#define vmul(a, b) ((a) * (b))
#define vadd(a, b) ((a) + (b))
#define vsub(a, b) ((a) - (b))
#define vdiv(a, b) ((a) / (b))
#define vmax(a, b) ((a) > (b) ? (a) : (b))
#define vrelu(a) ((a) > 0.0f ? (a) : 0.0f)
#define vmask_gt0(h, x) ((h) > 0.0f ? (x) : 0.0f)
#endif

#define NR (NV * VL)	/* tile columns */

/* exp(x) for x <= 0 (softmax after subtracting the max), ~1 ulp:
 * x = n ln2 + r, |r| <= ln2/2, exp(r) by the Cephes expf polynomial. */
INLINE vf
vexp(vf x)
{
#ifdef SCALAR_FALLBACK
	return expf(x);
#else
	x = vmax(x, vset1(-87.0f));
	vf n = vround(vmul(x, vset1(1.44269504088896341f)));
	vf r = vfma(n, vset1(-0.693359375f), x);
	r = vfma(n, vset1(2.12194440e-4f), r);
	vf p = vset1(1.9875691500e-4f);
	p = vfma(p, r, vset1(1.3981999507e-3f));
	p = vfma(p, r, vset1(8.3334519073e-3f));
	p = vfma(p, r, vset1(4.1665795894e-2f));
	p = vfma(p, r, vset1(1.6666665459e-1f));
	p = vfma(p, r, vset1(5.0000001201e-1f));
	p = vfma(p, vmul(r, r), vadd(r, vset1(1.0f)));
	return vmul(p, vpow2i(n));
#endif
}
