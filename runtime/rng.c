/*
 * rng.c - the one random number generator of the runtime: xoshiro256**
 * (Blackman and Vigna), its state filled from the seed by splitmix64 as the
 * authors recommend. Everything random in nnc (data generators, shuffling,
 * initializers) draws from it, so a seed gives the same run on every machine.
 */
#include <math.h>

#include "runtime.h"

/* 2 pi; M_PI is not part of C11 or plain POSIX. */
#define TWO_PI 6.283185307179586476925286766559

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void nnc_rng_seed(NncRng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++)
    r->s[i] = splitmix64(&x);
  r->has_spare = 0;
  r->spare = 0;
}

uint64_t nnc_rng_next(NncRng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* The top 53 bits scaled to [0, 1): every double of the form k / 2^53. */
double nnc_rng_uniform(NncRng *r) {
  return (double)(nnc_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Box-Muller in its trigonometric form. u1 is taken in (0, 1] so that the
 * log never sees 0; the second normal of the pair is kept for the next call. */
double nnc_rng_normal(NncRng *r) {
  if (r->has_spare) {
    r->has_spare = 0;
    return r->spare;
  }
  double u1 = 1.0 - nnc_rng_uniform(r);
  double u2 = nnc_rng_uniform(r);
  double radius = sqrt(-2.0 * log(u1));
  double theta = TWO_PI * u2;
  r->spare = radius * sin(theta);
  r->has_spare = 1;
  return radius * cos(theta);
}

/* An unbiased integer in [0, bound): draws below 2^64 mod bound are rejected
 * so that every residue is equally likely. */
static uint64_t uniform_below(NncRng *r, uint64_t bound) {
  uint64_t threshold = -bound % bound;
  for (;;) {
    uint64_t x = nnc_rng_next(r);
    if (x >= threshold)
      return x % bound;
  }
}

void nnc_rng_permutation(NncRng *r, size_t n, size_t *perm) {
  for (size_t i = 0; i < n; i++)
    perm[i] = i;
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)uniform_below(r, i);
    size_t tmp = perm[i - 1];
    perm[i - 1] = perm[j];
    perm[j] = tmp;
  }
}
