/* shuffle_latency.c -- the latency of the AVX shuffles the register step
 * chooses between, on this machine: chains of one instruction, timed
 * against a chain of vaddpd (3 cycles on Zen 2-4), printed in cycles.
 *
 *   gcc -O2 -mavx2 -o shuffle_latency bench/shuffle_latency.c && ./shuffle_latency
 *
 * On this project's Zen 3: vpermpd 6, vperm2f128 3, vpermilpd 1,
 * vbroadcastsd 3 (why codegen.c names vperm2f128 for the swap of 128-bit
 * halves, and builds its diagonals on xor permutations). */
#define _POSIX_C_SOURCE 200809L
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

#define CHAIN(insn)                                                                                   \
  do {                                                                                                \
    double t0 = now();                                                                                \
    for (long i = 0; i < N; i++) __asm__ volatile(insn "\n\t" insn "\n\t" insn "\n\t" insn : "+x"(v)); \
    times[k++] = (now() - t0) / (4.0 * N);                                                            \
  } while (0)

int main(void) {
  enum { N = 50000000 };
  __m256d v = _mm256_set_pd(1, 2, 3, 4);
  double times[6];
  int k = 0;
  CHAIN("vaddpd %0, %0, %0");
  CHAIN("vpermpd $78, %0, %0");
  CHAIN("vperm2f128 $1, %0, %0, %0");
  CHAIN("vpermilpd $5, %0, %0");
  CHAIN("vbroadcastsd %x0, %0");
  CHAIN("vshufpd $5, %0, %0, %0");
  const char *names[] = {"vaddpd", "vpermpd", "vperm2f128", "vpermilpd", "vbroadcastsd", "vshufpd"};
  for (int i = 0; i < 6; i++) printf("%-13s %.1f cycles\n", names[i], 3.0 * times[i] / times[0]);
  double out[4];
  _mm256_storeu_pd(out, v);
  return out[0] > 1e300;
}
