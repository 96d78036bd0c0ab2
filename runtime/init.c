/*
 * init.c - initial parameter values (the train block's `init`): Xavier/Glorot
 * and He scaling from the tensor's fans, plain normal and uniform, zeros and
 * constants. Which tensors get which kind (biases zero, say) is the caller's
 * choice.
 */
#include <math.h>

#include "runtime.h"

/* PyTorch's _calculate_fan_in_and_fan_out, with the rank 0 and 1 cases that
 * PyTorch refuses given the obvious meaning. */
static void fans(int rank, const int64_t *dims, double *fan_in,
                 double *fan_out) {
  if (rank == 0) {
    *fan_in = *fan_out = 1;
    return;
  }
  if (rank == 1) {
    *fan_in = *fan_out = (double)dims[0];
    return;
  }
  double receptive = 1;
  for (int i = 2; i < rank; i++)
    receptive *= (double)dims[i];
  *fan_in = (double)dims[1] * receptive;
  *fan_out = (double)dims[0] * receptive;
}

static void fill_normal(NncRng *rng, double std, size_t n, double *out) {
  for (size_t i = 0; i < n; i++)
    out[i] = nnc_rng_normal(rng) * std;
}

static void fill_uniform(NncRng *rng, double limit, size_t n, double *out) {
  for (size_t i = 0; i < n; i++)
    out[i] = (2 * nnc_rng_uniform(rng) - 1) * limit;
}

/* Zeros and constants draw nothing, so rng may be NULL for them. An empty
 * tensor's fans may be 0; its scale is then never used. */
void nnc_init_fill(NncInitKind kind, double arg, NncRng *rng, int rank,
                   const int64_t *dims, double *out) {
  size_t n = 1;
  for (int i = 0; i < rank; i++)
    n *= (size_t)dims[i];
  double fan_in, fan_out;
  fans(rank, dims, &fan_in, &fan_out);

  switch (kind) {
  case NNC_INIT_XAVIER_NORMAL:
    fill_normal(rng, sqrt(2 / (fan_in + fan_out)), n, out);
    break;
  case NNC_INIT_XAVIER_UNIFORM:
    fill_uniform(rng, sqrt(6 / (fan_in + fan_out)), n, out);
    break;
  case NNC_INIT_HE_NORMAL:
    fill_normal(rng, sqrt(2 / fan_in), n, out);
    break;
  case NNC_INIT_NORMAL:
    fill_normal(rng, arg, n, out);
    break;
  case NNC_INIT_UNIFORM:
    fill_uniform(rng, arg, n, out);
    break;
  case NNC_INIT_ZEROS:
  case NNC_INIT_CONSTANT:
    for (size_t i = 0; i < n; i++)
      out[i] = kind == NNC_INIT_ZEROS ? 0.0 : arg;
    break;
  }
}
