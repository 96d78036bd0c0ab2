/*
 * fork.h - a second thread for the compiled code's matrix products: the
 * feature split of --threads 2.
 *
 * A model compiled for it (CgTarget's fork_gemms) calls nnc_fork_gemm
 * instead of its GEMM kernel, and nnc_fork_adam instead of its Adam
 * kernel. When the calling thread has entered a pool
 * (fork_pool_enter) and the product is large enough, its output columns
 * (or, with one panel of columns, its rows) are split in two: the pool's
 * worker computes the second part while the caller computes the first,
 * and the call returns when both are done. Every element of the product
 * is the same sum, in the same order, as on one thread, so a model
 * trains to the same bits on one thread or two. Without a pool the call
 * is the kernel's, whole.
 *
 * Waiting: the worker spins for a while after a product (the next one
 * usually comes within microseconds), then sleeps on a futex. The caller,
 * its part done, computes the worker's part as well when the worker has
 * not begun it (its CPU taken by other work); else it spins for it, then
 * sleeps too.
 */
#ifndef NNC_FORK_H
#define NNC_FORK_H

#include <stdbool.h>
#include <stdint.h>

typedef struct ForkPool ForkPool;

/* The numbers of a pool's waits (for --stats). */
typedef struct ForkStats {
  int64_t forks;      /* products (and Adam steps) split */
  int64_t whole;      /* run whole on the caller (too small) */
  int64_t waits;      /* the caller waited for the worker */
  int64_t wait_ns;    /* time it waited */
  int64_t slept;      /* the worker slept on the futex between products */
  int64_t stolen;     /* the caller computed the worker's part too: the
                         worker had not taken it when the caller's was done */
} ForkStats;

/* A pool with one worker thread, pinned to cpu when cpu >= 0. NULL with
 * errno set when the thread cannot start. */
ForkPool *fork_pool_start(int cpu);
/* Stops the worker and frees the pool (NULL: nothing). */
void fork_pool_stop(ForkPool *p);
/* The calling thread's compiled calls split their products with p from
 * now on (NULL: they run whole). */
void fork_pool_enter(ForkPool *p);
ForkStats fork_pool_stats(const ForkPool *p);

/* The GEMM kernel's arguments (gemm.c's macro-kernel), in its order, each
 * an i64 (pointers as integers); the last four are the part to compute:
 * rows [i0, i1) and columns [j0, j1). */
enum { FORK_GEMM_ARGS = 22, FORK_WS = 12, FORK_I0 = 18 };
/* Called by compiled code: gemm(args...) over the whole product, split
 * when the thread is in a pool; scratch is the worker's copy of args'
 * workspace scratch (FORK_WS), mr x nr the micro-kernel's tile, split
 * the dimension to split when it has two tiles or more (gemm.c's
 * fork_split). */
enum { FORK_EITHER, FORK_ROWS, FORK_COLUMNS };
void nnc_fork_gemm(void *gemm, const int64_t *args, void *scratch, int64_t mr, int64_t nr, int64_t split);
#define FORK_GEMM_SYMBOL "nnc_fork_gemm"

/* Adam's step of one parameter (compiler/optstep.h's kernel) the same
 * way: its arguments as i64s, a scalar as its bits (a float's in the low
 * half), elements [0, n) cut in two at a 64-byte line when n is large
 * enough; f64: the model's dtype. */
enum { FORK_ADAM_ARGS = 14, FORK_ADAM_N = 4, FORK_ADAM_G2 = 12 };
void nnc_fork_adam(void *adam, const int64_t *args, int64_t f64);
#define FORK_ADAM_SYMBOL "nnc_fork_adam"

#endif
