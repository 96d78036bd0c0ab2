/*
 * fma_peak.c - the core's measured FP32 (or FP64) FMA throughput: many
 * independent chains of vector FMAs, no memory traffic, the best of
 * several timed rounds. Prints GFLOP/s (an FMA counts as 2 flops).
 *
 *   cc -O2 -march=native bench/fma_peak.c -o fma_peak && ./fma_peak [f32|f64]
 *
 * The widest vectors the compiler was allowed (-march) are used: 512-bit
 * with AVX-512, else 256-bit. bench/gemm_peak builds and runs it.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#if defined(__AVX512F__)
#define VBYTES 64
#else
#define VBYTES 32
#endif

typedef float vf __attribute__((vector_size(VBYTES)));
typedef double vd __attribute__((vector_size(VBYTES)));

/* Enough independent chains to cover FMA latency x ports on current cores
 * (4-5 cycles x 2 ports): 16. */
enum { CHAINS = 16 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* 16 named accumulators (registers, not an array the compiler might keep
 * in memory), each acc = acc * a + b: one FMA per chain per iteration. */
#define STEP(x) x = x * a + b
#define KERNEL(NAME, V, T)                                                                                   \
  static double NAME(long iters) {                                                                           \
    V a, b, s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15;                           \
    for (int l = 0; l < (int)(sizeof(V) / sizeof(T)); l++) a[l] = (T)0.999999, b[l] = (T)1e-7;               \
    V *s[CHAINS] = {&s0, &s1, &s2, &s3, &s4, &s5, &s6, &s7, &s8, &s9, &s10, &s11, &s12, &s13, &s14, &s15};  \
    for (int c = 0; c < CHAINS; c++) /* different values: no two chains are the same computation */        \
      for (int l = 0; l < (int)(sizeof(V) / sizeof(T)); l++) (*s[c])[l] = (T)(c + 1) * (T)(l + 1);          \
    __asm__ volatile("" : "+x"(s0), "+x"(s1), "+x"(s2), "+x"(s3), "+x"(s4), "+x"(s5), "+x"(s6), "+x"(s7)); \
    __asm__ volatile("" : "+x"(s8), "+x"(s9), "+x"(s10), "+x"(s11), "+x"(s12), "+x"(s13), "+x"(s14),      \
                     "+x"(s15));                                                                             \
    double t0 = now();                                                                                       \
    for (long i = 0; i < iters; i++) {                                                                       \
      STEP(s0), STEP(s1), STEP(s2), STEP(s3), STEP(s4), STEP(s5), STEP(s6), STEP(s7);                        \
      STEP(s8), STEP(s9), STEP(s10), STEP(s11), STEP(s12), STEP(s13), STEP(s14), STEP(s15);                  \
    }                                                                                                        \
    double dt = now() - t0;                                                                                  \
    V sum = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7 + s8 + s9 + s10 + s11 + s12 + s13 + s14 + s15;            \
    if (sum[0] == (T)-1) puts(""); /* the sums are used */                                                  \
    return 2.0 * CHAINS * (double)(sizeof(V) / sizeof(T)) * (double)iters / dt * 1e-9;                     \
  }

KERNEL(peak_f32, vf, float)
KERNEL(peak_f64, vd, double)

int main(int argc, char **argv) {
  int f64 = argc > 1 && !strcmp(argv[1], "f64");
  if (argc > 1 && !f64 && strcmp(argv[1], "f32")) {
    fprintf(stderr, "usage: fma_peak [f32|f64]\n");
    return 2;
  }
  double best = 0;
  for (int round = 0; round < 15; round++) { /* ~0.1 s each: the best is the core's, the rest the load's */
    double g = f64 ? peak_f64(4000000) : peak_f32(4000000);
    if (g > best) best = g;
  }
  printf("%.1f GFLOP/s %s FMA peak (%d-bit vectors, %d chains, best of 15 rounds)\n", best, f64 ? "f64" : "f32",
         VBYTES * 8, CHAINS);
  return 0;
}
