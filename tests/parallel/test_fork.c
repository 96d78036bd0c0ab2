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
 *   - a pool stopped while its worker sleeps.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
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

static void record(int64_t M, int64_t N, int64_t K, void *A, int64_t rsa, int64_t csa, void *pack, void *bdesc,
                   void *C, int64_t ldc, void *epi, int64_t *ctx, void *ws, int64_t kb, int64_t add, int64_t *roff,
                   int64_t *koff, int64_t trans, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  (void)M, (void)N, (void)K, (void)A, (void)rsa, (void)csa, (void)pack, (void)bdesc, (void)C, (void)ldc, (void)epi;
  (void)ctx, (void)kb, (void)add, (void)roff, (void)koff, (void)trans;
  int k = atomic_fetch_add(&nparts, 1);
  if (k < 2) parts[k] = (Part){i0, i1, j0, j1, (intptr_t)ws, pthread_self()};
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
  /* too small to pay: fewer than 2^17 multiply-adds stay whole */
  CHECK(call(64, 64, 16, FORK_EITHER) == 1 && is_whole(64, 64));
  CHECK(call(32, 64, 63, FORK_EITHER) == 1 && is_whole(32, 64));
  CHECK(call(32, 64, 64, FORK_EITHER) == 2 && is_split(32, 64, true, 18));
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

int main(void) {
  run_group("no pool", test_no_pool);
  run_group("split", test_split);
  return check_report();
}
