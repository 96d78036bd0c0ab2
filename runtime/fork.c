/*
 * fork.c - the worker thread that computes part of each large matrix
 * product (see fork.h).
 *
 * One job at a time: the caller writes the job, then bumps `posted`; the
 * worker claims it (`claimed` from its number - 1 to its number, by
 * compare-and-swap), computes its part and sets `done` to the job's
 * number. The caller, its own part done, tries the same claim: when the
 * worker has not started (preempted by other work, or asleep and not yet
 * back), the caller computes the worker's part itself and sets `done`,
 * so a worker that lost its CPU costs the step the worker's part, not
 * the wait for a time slice. Whoever computes it, every element is the
 * same sum. The counters only grow, so a waiter compares against the
 * number it wants. A waiter spins, then sleeps on the counter's futex
 * after announcing itself in `sleeping`; the other side wakes it only
 * when it announced (sequentially consistent accesses on both sides, so
 * no wake is lost).
 */
#include "fork.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif

/* Products of fewer multiply-adds run whole: splitting one costs two
 * cache-line round trips between the cores (0.1-1 us) and brings the
 * other core's half of its operands over, which a product of 2^18
 * multiply-adds (about 4 us on one core) pays back (W2's products of
 * 164k, 64 x 256 x 10 and the like, took longer split than whole; 2^18
 * gave W2 3% more steps than 2^17 on the Intel VM). */
enum { FORK_MIN_WORK = 1 << 18 };
/* Adam's steps of fewer elements run whole (2^14: about 450 KB of
 * parameters, gradients and moments to read, some 20 us). */
enum { FORK_MIN_ELEMS = 1 << 14 };
/* How long a waiter spins before it sleeps: the worker between products
 * (those of one step come microseconds apart), the caller for the
 * worker's part. */
enum { WORKER_SPIN_NS = 200000, CALLER_SPIN_NS = 200000 };

/* Adam's step of a parameter (compiler/optstep.h), f32 and f64. */
typedef void AdamF32(float *, const float *, float *, float *, int64_t, float, float, float, float, float, float,
                     float, const float *, int64_t);
typedef void AdamF64(double *, const double *, double *, double *, int64_t, double, double, double, double, double,
                     double, double, const double *, int64_t);

typedef void GemmFn(int64_t, int64_t, int64_t, void *, int64_t, int64_t, void *, void *, void *, int64_t, void *,
                    int64_t *, void *, int64_t, int64_t, int64_t *, int64_t *, int64_t, int64_t, int64_t, int64_t,
                    int64_t);

struct ForkPool {
  _Alignas(64) atomic_uint posted; /* jobs posted (the worker's futex) */
  atomic_uint worker_sleeps;       /* the worker sleeps on posted */
  atomic_bool quit;
  _Alignas(64) void *fn;           /* the job: a kernel, its kind and its arguments */
  int kind;                        /* JOB_GEMM, JOB_ADAM_F32, JOB_ADAM_F64 */
  int64_t args[FORK_GEMM_ARGS];
  atomic_uint claimed;             /* the last job the worker or the caller took */
  _Alignas(64) atomic_uint done;   /* jobs done (the caller's futex) */
  atomic_uint caller_sleeps;
  _Alignas(64) ForkStats stats;    /* the caller's, but slept: the worker's */
  atomic_int_least64_t worker_slept; /* the worker's count of its sleeps */
  pthread_t thread;
};

static _Thread_local ForkPool *tl_pool;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

enum { JOB_GEMM, JOB_ADAM_F32, JOB_ADAM_F64 };

static float f32_of(int64_t bits) {
  uint32_t b = (uint32_t)bits;
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

static double f64_of(int64_t bits) {
  double d;
  memcpy(&d, &bits, sizeof d);
  return d;
}

static void run_adam(void *fn, int kind, const int64_t *a) {
#define P(i) ((void *)(intptr_t)a[i])
  if (kind == JOB_ADAM_F32)
    ((AdamF32 *)fn)(P(0), P(1), P(2), P(3), a[4], f32_of(a[5]), f32_of(a[6]), f32_of(a[7]), f32_of(a[8]),
                    f32_of(a[9]), f32_of(a[10]), f32_of(a[11]), P(12), a[13]);
  else
    ((AdamF64 *)fn)(P(0), P(1), P(2), P(3), a[4], f64_of(a[5]), f64_of(a[6]), f64_of(a[7]), f64_of(a[8]),
                    f64_of(a[9]), f64_of(a[10]), f64_of(a[11]), P(12), a[13]);
#undef P
}

static void run(GemmFn *gemm, const int64_t *a) {
  gemm(a[0], a[1], a[2], (void *)(intptr_t)a[3], a[4], a[5], (void *)(intptr_t)a[6], (void *)(intptr_t)a[7],
       (void *)(intptr_t)a[8], a[9], (void *)(intptr_t)a[10], (int64_t *)(intptr_t)a[11], (void *)(intptr_t)a[12],
       a[13], a[14], (int64_t *)(intptr_t)a[15], (int64_t *)(intptr_t)a[16], a[17], a[18], a[19], a[20], a[21]);
}

/* Waits until *word differs from seen (spinning up to spin_ns first);
 * returns the new value. */
static unsigned await_change(atomic_uint *word, atomic_uint *sleepers, unsigned seen, int64_t spin_ns,
                             atomic_int_least64_t *slept) {
  unsigned v;
  int64_t until = now_ns() + spin_ns;
  do {
    for (int i = 0; i < 64; i++) {
      if ((v = atomic_load_explicit(word, memory_order_acquire)) != seen) return v;
      cpu_relax();
    }
  } while (now_ns() < until);
  atomic_fetch_add(sleepers, 1);
  while ((v = atomic_load(word)) == seen) syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
  atomic_fetch_sub(sleepers, 1);
  if (slept) atomic_fetch_add_explicit(slept, 1, memory_order_relaxed);
  return v;
}

static void wake(atomic_uint *word, atomic_uint *sleepers) {
  if (atomic_load(sleepers) > 0) syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void run_job(ForkPool *p) {
  if (p->kind == JOB_GEMM)
    run((GemmFn *)p->fn, p->args);
  else
    run_adam(p->fn, p->kind, p->args);
}

static void *worker_main(void *arg) {
  ForkPool *p = arg;
  unsigned seen = 0;
  for (;;) {
    seen = await_change(&p->posted, &p->worker_sleeps, seen, WORKER_SPIN_NS, &p->worker_slept);
    if (atomic_load(&p->quit)) return NULL;
    unsigned before = seen - 1;
    if (!atomic_compare_exchange_strong(&p->claimed, &before, seen)) continue; /* the caller took it */
    run_job(p);
    atomic_store(&p->done, seen);
    wake(&p->done, &p->caller_sleeps);
  }
}

ForkPool *fork_pool_start(int cpu) {
  ForkPool *p = aligned_alloc(64, (sizeof(ForkPool) + 63) / 64 * 64);
  if (!p) return NULL;
  memset(p, 0, sizeof *p);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
#ifdef __linux__
  if (cpu >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_attr_setaffinity_np(&attr, sizeof set, &set);
  }
#endif
  int err = pthread_create(&p->thread, &attr, worker_main, p);
  pthread_attr_destroy(&attr);
  if (err) {
    free(p);
    errno = err;
    return NULL;
  }
  return p;
}

void fork_pool_stop(ForkPool *p) {
  if (!p) return;
  atomic_store(&p->quit, true);
  atomic_fetch_add(&p->posted, 1);
  wake(&p->posted, &p->worker_sleeps);
  pthread_join(p->thread, NULL);
  if (tl_pool == p) tl_pool = NULL;
  free(p);
}

void fork_pool_enter(ForkPool *p) { tl_pool = p; }

ForkStats fork_pool_stats(const ForkPool *p) {
  ForkStats s = p->stats;
  s.slept = atomic_load_explicit(&((ForkPool *)p)->worker_slept, memory_order_relaxed);
  return s;
}

/* Posts the job written in p (the worker's part); returns its number. */
static unsigned post(ForkPool *p) {
  unsigned job = atomic_fetch_add(&p->posted, 1) + 1;
  wake(&p->posted, &p->worker_sleeps);
  p->stats.forks++;
  return job;
}

/* The worker's part of job done: by the worker (waited for), or here
 * when the worker has not taken it. */
static void finish(ForkPool *p, unsigned job) {
  unsigned before = job - 1;
  if (atomic_compare_exchange_strong(&p->claimed, &before, job)) {
    p->stats.stolen++;
    run_job(p);
    atomic_store(&p->done, job);
    return;
  }
  if (atomic_load_explicit(&p->done, memory_order_acquire) != job) {
    int64_t t0 = now_ns();
    p->stats.waits++;
    await_change(&p->done, &p->caller_sleeps, job - 1, CALLER_SPIN_NS, NULL);
    p->stats.wait_ns += now_ns() - t0;
  }
}

void nnc_fork_gemm(void *gemm, const int64_t *args, void *scratch, int64_t mr, int64_t nr, int64_t split) {
  GemmFn *fn = (GemmFn *)gemm;
  ForkPool *p = tl_pool;
  int64_t M = args[0], N = args[1], K = args[2];
  int64_t panels = (N + nr - 1) / nr, tiles = (M + mr - 1) / mr;
  if (!p || M * N * (K > 0 ? K : 1) < FORK_MIN_WORK || (panels < 2 && tiles < 2)) {
    if (p) p->stats.whole++;
    run(fn, args);
    return;
  }
  if (split == FORK_ROWS && tiles < 2) split = FORK_COLUMNS;
  if (split == FORK_COLUMNS && panels < 2) split = FORK_ROWS;
  if (split == FORK_EITHER) split = panels >= 2 ? FORK_COLUMNS : FORK_ROWS;
  int64_t mine[FORK_GEMM_ARGS];
  memcpy(mine, args, sizeof mine);
  memcpy(p->args, args, sizeof mine);
  p->args[FORK_WS] = (int64_t)(intptr_t)scratch; /* the worker packs into its own scratch */
  if (split == FORK_COLUMNS) { /* the first half of the panels here, the rest there */
    int64_t j = (panels + 1) / 2 * nr;
    mine[FORK_I0 + 3] = j;
    p->args[FORK_I0 + 2] = j;
  } else { /* the same with tiles of rows */
    int64_t i = (tiles + 1) / 2 * mr;
    mine[FORK_I0 + 1] = i;
    p->args[FORK_I0] = i;
  }
  p->fn = (void *)fn, p->kind = JOB_GEMM;
  unsigned job = post(p);
  run(fn, mine);
  finish(p, job);
}

void nnc_fork_adam(void *adam, const int64_t *args, int64_t f64) {
  ForkPool *p = tl_pool;
  int kind = f64 ? JOB_ADAM_F64 : JOB_ADAM_F32;
  int64_t n = args[FORK_ADAM_N], es = f64 ? 8 : 4, line = 64 / es;
  if (!p || n < FORK_MIN_ELEMS) {
    if (p) p->stats.whole++;
    run_adam(adam, kind, args);
    return;
  }
  /* the second half from a line boundary (the kernel's vectors), so
     that no line is written by both threads */
  int64_t h = (n / 2 + line - 1) / line * line;
  int64_t mine[FORK_ADAM_ARGS];
  memcpy(mine, args, sizeof mine);
  memcpy(p->args, args, sizeof mine);
  mine[FORK_ADAM_N] = h;
  p->args[FORK_ADAM_N] = n - h;
  for (int i = 0; i < 4; i++) p->args[i] += h * es; /* the parameter, its gradient and moments */
  if (p->args[FORK_ADAM_G2]) p->args[FORK_ADAM_G2] += h * es;
  p->fn = adam, p->kind = kind;
  unsigned job = post(p);
  run_adam(adam, kind, mine);
  finish(p, job);
}
