/*
 * test_fork.c - runtime/fork.c, the feature split's worker, with a GEMM
 * kernel that only records the part each call computes:
 *   - without a pool, or below the size that pays, one call of the whole;
 *   - split by columns at a panel boundary (the first half of the panels
 *     on the caller), or by rows at a tile boundary when the product has
 *     one panel or the hint asks for rows; the two parts cover the product
 *     once; the worker's part packs into the worker's scratch;
 *   - thousands of products in a row, and a worker that went to sleep
 *     between two of them (woken, its sleep counted);
 *   - a pool stopped while its worker sleeps;
 *   - the worker's part taken back by the caller when the worker has not
 *     begun it;
 *   - Adam's step of a parameter: whole below 2^14 elements, else halves
 *     from a 64-byte line, every pointer of the second half moved, the
 *     scalars (floats in an i64's low half, or doubles) passed intact.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fork.h"

#include "../check.h"

enum { MR = 6, NR = 64 };

typedef struct Part {
  int64_t i0, i1, j0, j1;
  intptr_t ws;
  pthread_t thread;
} Part;

static Part parts[2];
static atomic_int nparts;
static pthread_t caller;
/* the caller's part waits (up to 200 ms) until the worker has taken its
 * own, so that the worker computes it instead of the caller taking it
 * back (fork.c's finish) */
static bool wait_for_worker = true;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void await_worker(atomic_int *count) {
  if (!wait_for_worker || !pthread_equal(pthread_self(), caller)) return;
  for (int64_t until = now_ms() + 200; atomic_load(count) < 2 && now_ms() < until;) {
  }
}

static void record(int64_t M, int64_t N, int64_t K, void *A, int64_t rsa, int64_t csa, void *pack, void *bdesc,
                   void *C, int64_t ldc, void *epi, int64_t *ctx, void *ws, int64_t kb, int64_t add, int64_t *roff,
                   int64_t *koff, int64_t trans, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  (void)M, (void)N, (void)K, (void)A, (void)rsa, (void)csa, (void)pack, (void)bdesc, (void)C, (void)ldc, (void)epi;
  (void)ctx, (void)kb, (void)add, (void)roff, (void)koff, (void)trans;
  int k = atomic_fetch_add(&nparts, 1);
  if (k < 2) parts[k] = (Part){i0, i1, j0, j1, (intptr_t)ws, pthread_self()};
  await_worker(&nparts);
}

static int64_t args[FORK_GEMM_ARGS];
static char own_ws[1], worker_ws[1];

/* Calls nnc_fork_gemm for an M x N x K product; returns the parts made. */
static int call(int64_t M, int64_t N, int64_t K, int64_t split) {
  memset(args, 0, sizeof args);
  args[0] = M, args[1] = N, args[2] = K;
  args[FORK_WS] = (int64_t)(intptr_t)own_ws;
  args[FORK_I0] = 0, args[FORK_I0 + 1] = M, args[FORK_I0 + 2] = 0, args[FORK_I0 + 3] = N;
  atomic_store(&nparts, 0);
  nnc_fork_gemm((void *)record, args, worker_ws, MR, NR, split);
  return atomic_load(&nparts);
}

static bool is_whole(int64_t M, int64_t N) {
  return parts[0].i0 == 0 && parts[0].i1 == M && parts[0].j0 == 0 && parts[0].j1 == N &&
         parts[0].ws == (intptr_t)own_ws && pthread_equal(parts[0].thread, pthread_self());
}

/* parts[0] and parts[1] in either order: the caller's first, on own_ws,
 * from 0 to `at` along the split dimension; the worker's from `at` on, on
 * worker_ws, on another thread. */
static bool is_split(int64_t M, int64_t N, bool rows, int64_t at) {
  Part mine = parts[0], theirs = parts[1];
  if (!pthread_equal(mine.thread, pthread_self())) mine = parts[1], theirs = parts[0];
  if (!pthread_equal(mine.thread, pthread_self()) || pthread_equal(theirs.thread, pthread_self())) return false;
  if (mine.ws != (intptr_t)own_ws || theirs.ws != (intptr_t)worker_ws) return false;
  if (rows)
    return mine.i0 == 0 && mine.i1 == at && theirs.i0 == at && theirs.i1 == M && mine.j0 == 0 && mine.j1 == N &&
           theirs.j0 == 0 && theirs.j1 == N;
  return mine.j0 == 0 && mine.j1 == at && theirs.j0 == at && theirs.j1 == N && mine.i0 == 0 && mine.i1 == M &&
         theirs.i0 == 0 && theirs.i1 == M;
}

static void test_no_pool(void) {
  fork_pool_enter(NULL);
  CHECK(call(256, 256, 256, FORK_EITHER) == 1 && is_whole(256, 256));
}

static void test_split(void) {
  ForkPool *p = fork_pool_start(-1);
  REQUIRE(p);
  fork_pool_enter(p);
  /* too small to pay: fewer than 2^18 multiply-adds stay whole */
  CHECK(call(64, 64, 16, FORK_EITHER) == 1 && is_whole(64, 64));
  CHECK(call(64, 64, 63, FORK_EITHER) == 1 && is_whole(64, 64));
  CHECK(call(64, 64, 64, FORK_EITHER) == 2 && is_split(64, 64, true, 36));
  /* one tile of rows and one panel: nothing to split */
  CHECK(call(6, 64, 100000, FORK_EITHER) == 1 && is_whole(6, 64));
  /* columns: 4 panels, 2 here */
  CHECK(call(64, 256, 64, FORK_EITHER) == 2 && is_split(64, 256, false, 128));
  /* 3 panels (the last partial): 2 here */
  CHECK(call(64, 130, 64, FORK_COLUMNS) == 2 && is_split(64, 130, false, 128));
  /* one panel: the rows, 43 tiles, 22 here */
  CHECK(call(256, 64, 256, FORK_EITHER) == 2 && is_split(256, 64, true, 132));
  CHECK(call(256, 10, 256, FORK_COLUMNS) == 2 && is_split(256, 10, true, 132));
  /* rows asked for: 11 tiles (the last of 4 rows), 6 here */
  CHECK(call(64, 256, 256, FORK_ROWS) == 2 && is_split(64, 256, true, 36));
  /* rows asked for, one tile: the columns */
  CHECK(call(6, 256, 1000, FORK_ROWS) == 2 && is_split(6, 256, false, 128));
  /* K = 0 (no rows to sum over) counts as 1 */
  CHECK(call(256, 64, 0, FORK_EITHER) == 1 && is_whole(256, 64));
  ForkStats s = fork_pool_stats(p);
  CHECK(s.forks == 7 && s.whole == 4);
  /* many in a row, each covered once */
  int bad = 0;
  for (int r = 0; r < 20000; r++)
    if (call(64 + r % 7, 256 + 64 * (r % 3), 64, FORK_EITHER) != 2) bad++;
  CHECK(bad == 0);
  /* the worker sleeps after its spin, and wakes for the next product */
  usleep(300000);
  CHECK(call(64, 256, 64, FORK_EITHER) == 2 && is_split(64, 256, false, 128));
  CHECK(fork_pool_stats(p).slept >= 1);
  /* stopped while it sleeps */
  usleep(300000);
  fork_pool_stop(p);
  /* the thread is out of the pool: whole again */
  CHECK(call(64, 256, 64, FORK_EITHER) == 1 && is_whole(64, 256));
}

/* The worker asleep and the caller's part instant: the caller takes the
 * worker's part back (a woken worker needs microseconds), and the two
 * parts are the same as the worker's would have been. */
static void test_taken_back(void) {
  ForkPool *p = fork_pool_start(-1);
  REQUIRE(p);
  fork_pool_enter(p);
  wait_for_worker = false;
  int both_here = 0;
  for (int round = 0; round < 5 && !both_here; round++) {
    usleep(300000); /* past the worker's spin: asleep */
    if (call(64, 256, 64, FORK_EITHER) == 2 && pthread_equal(parts[0].thread, pthread_self()) &&
        pthread_equal(parts[1].thread, pthread_self()))
      both_here = parts[0].j0 == 0 && parts[0].j1 == 128 && parts[0].ws == (intptr_t)own_ws && parts[1].j0 == 128 &&
                  parts[1].j1 == 256 && parts[1].ws == (intptr_t)worker_ws;
  }
  CHECK(both_here);
  CHECK(fork_pool_stats(p).stolen >= 1);
  /* and the worker, woken for a part it no longer had, takes the next */
  wait_for_worker = true;
  int bad = 0;
  for (int r = 0; r < 1000; r++)
    if (call(64, 256, 64, FORK_EITHER) != 2 || !is_split(64, 256, false, 128)) bad++;
  CHECK(bad == 0);
  fork_pool_stop(p);
}

/* ---- Adam's step ---- */

typedef struct AdamPart {
  intptr_t p, g, m, v, g2;
  int64_t n, nt;
  double scalars[7];
  pthread_t thread;
} AdamPart;

static AdamPart adam_parts[2];
static atomic_int nadam;

static void adam_f32(float *p, const float *g, float *m, float *v, int64_t n, float b1, float c1, float b2, float c2,
                     float eps, float ss, float bc, const float *g2, int64_t nt) {
  int k = atomic_fetch_add(&nadam, 1);
  if (k < 2)
    adam_parts[k] = (AdamPart){(intptr_t)p, (intptr_t)g, (intptr_t)m, (intptr_t)v, (intptr_t)g2, n, nt,
                               {b1, c1, b2, c2, eps, ss, bc}, pthread_self()};
  await_worker(&nadam);
}

static void adam_f64(double *p, const double *g, double *m, double *v, int64_t n, double b1, double c1, double b2,
                     double c2, double eps, double ss, double bc, const double *g2, int64_t nt) {
  int k = atomic_fetch_add(&nadam, 1);
  if (k < 2)
    adam_parts[k] = (AdamPart){(intptr_t)p, (intptr_t)g, (intptr_t)m, (intptr_t)v, (intptr_t)g2, n, nt,
                               {b1, c1, b2, c2, eps, ss, bc}, pthread_self()};
  await_worker(&nadam);
}

static const double adam_k[7] = {0.9, 0.1, 0.999, 0.001, 1e-8, 0.0123, 0.5};

/* Adam's step of n elements of es bytes at base addresses 0x100000 (p),
 * 0x200000 (g), ...; g2 at 0x600000 when with_g2. Returns the parts. */
static int adam_call(int64_t n, int es, bool with_g2) {
  int64_t a[FORK_ADAM_ARGS] = {0x100000, 0x200000, 0x300000, 0x400000, n};
  for (int i = 0; i < 7; i++) {
    if (es == 8)
      memcpy(&a[5 + i], &adam_k[i], 8);
    else {
      float f = (float)adam_k[i];
      uint32_t b;
      memcpy(&b, &f, 4);
      a[5 + i] = (int64_t)b;
    }
  }
  a[FORK_ADAM_G2] = with_g2 ? 0x600000 : 0;
  a[13] = 1;
  atomic_store(&nadam, 0);
  nnc_fork_adam(es == 8 ? (void *)adam_f64 : (void *)adam_f32, a, es == 8);
  return atomic_load(&nadam);
}

/* The parts: the caller's [0, at), the worker's [at, n), scalars intact. */
static bool adam_split_ok(int64_t n, int es, int64_t at, bool with_g2) {
  AdamPart mine = adam_parts[0], theirs = adam_parts[1];
  if (!pthread_equal(mine.thread, pthread_self())) mine = adam_parts[1], theirs = adam_parts[0];
  if (!pthread_equal(mine.thread, pthread_self()) || pthread_equal(theirs.thread, pthread_self())) return false;
  intptr_t off = (intptr_t)(at * es);
  bool ok = mine.n == at && theirs.n == n - at && mine.p == 0x100000 && theirs.p == 0x100000 + off &&
            theirs.g == 0x200000 + off && theirs.m == 0x300000 + off && theirs.v == 0x400000 + off &&
            mine.g2 == (with_g2 ? 0x600000 : 0) && theirs.g2 == (with_g2 ? 0x600000 + off : 0) && mine.nt == 1 &&
            theirs.nt == 1;
  for (int i = 0; i < 7; i++) {
    double want = es == 8 ? adam_k[i] : (double)(float)adam_k[i];
    ok = ok && mine.scalars[i] == want && theirs.scalars[i] == want;
  }
  return ok;
}

static void test_adam(void) {
  fork_pool_enter(NULL);
  CHECK(adam_call(100000, 4, false) == 1 && adam_parts[0].n == 100000 && adam_parts[0].scalars[5] == (double)(float)0.0123);
  ForkPool *p = fork_pool_start(-1);
  REQUIRE(p);
  fork_pool_enter(p);
  /* below 2^14 elements: whole */
  CHECK(adam_call(16383, 4, false) == 1 && adam_parts[0].n == 16383);
  /* halves from a 64-byte line: 16 floats, 8 doubles */
  CHECK(adam_call(16384, 4, false) == 2 && adam_split_ok(16384, 4, 8192, false));
  CHECK(adam_call(100010, 4, false) == 2 && adam_split_ok(100010, 4, 50016, false));
  CHECK(adam_call(100010, 8, true) == 2 && adam_split_ok(100010, 8, 50008, true));
  CHECK(adam_call(16390, 8, false) == 2 && adam_split_ok(16390, 8, 8200, false));
  fork_pool_stop(p);
}

int main(void) {
  caller = pthread_self();
  run_group("no pool", test_no_pool);
  run_group("split", test_split);
  run_group("adam", test_adam);
  run_group("taken back", test_taken_back);
  return check_report();
}
