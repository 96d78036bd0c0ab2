/*
 * parallel.c - threads and MPI ranks over the compiled grad_part (see
 * parallel.h for the scheme and what it guarantees).
 *
 * Threads: a pool started once per engine. Each step the main thread
 * publishes the shards, bumps a generation counter and computes shard 0
 * itself. Every wait (a worker for the next step, every thread for the
 * others' shards, the main thread for the workers) spins for about what
 * waking a sleeper costs, since the other side is usually microseconds
 * away, and then sleeps on a futex, so a waiting thread does not keep a
 * core from a working one for long (two threads may share one core).
 * Every buffer is allocated when the engine is made: nothing is allocated
 * in the training loop.
 */
#include "parallel.h"

#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <immintrin.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fork.h"
#include "plugin.h"
#include "util.h"

/* ---- MPI (through nnc-mpi.so) ---- */

static int g_rank = 0, g_size = 1;
static const ParMpi *g_mpi; /* loaded and started */
static FILE *g_err_capture; /* ranks > 0: their standard error */

static bool par_have_mpi(void) {
#ifdef NNC_HAVE_MPI
  return true;
#else
  return false;
#endif
}

/* The world size a launcher announced in the environment (OpenMPI, PMIx,
 * MPICH's PMI), or 0. */
static int launcher_size(void) {
  const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", "MPI_LOCALNRANKS"};
  for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
    const char *v = getenv(vars[i]);
    if (v && atoi(v) > 0) return atoi(v);
  }
  return getenv("PMIX_RANK") || getenv("OMPI_COMM_WORLD_RANK") ? 1 : 0;
}

void par_init(int *argc, char ***argv) {
  int launched = launcher_size();
  if (!launched) return;
  char err[4352] = "this nnc was built without MPI (install libopenmpi-dev and rebuild)";
  const ParMpi *mpi = par_have_mpi() ? plugin_symbol("mpi", PAR_MPI_SYMBOL, err, sizeof err) : NULL;
  if (!mpi) {
    if (launched == 1) return; /* one process: it runs alone */
    if (!getenv("OMPI_COMM_WORLD_RANK") || atoi(getenv("OMPI_COMM_WORLD_RANK")) == 0)
      fprintf(stderr, "nnc: started by mpirun with %d processes, but %s\n", launched, err);
    exit(1);
  }
  mpi->init(argc, argv, &g_rank, &g_size);
  g_mpi = mpi;
  if (g_rank != 0) {
    /* one report per job: rank 0 prints; the others' messages wait in a
       file until par_agree asks for them */
    fflush(stdout);
    if (!freopen("/dev/null", "w", stdout)) nnc_die("cannot silence standard output of rank %d", g_rank);
    g_err_capture = tmpfile();
    if (g_err_capture) {
      fflush(stderr);
      dup2(fileno(g_err_capture), STDERR_FILENO);
    }
  }
}

void par_finalize(void) {
  if (g_mpi) g_mpi->finalize();
  g_mpi = NULL;
}

int par_rank(void) { return g_rank; }
int par_size(void) { return g_size; }

bool par_any(bool flag) {
  if (!g_mpi || g_size == 1) return flag;
  return g_mpi->min_int(flag ? 0 : 1) == 0;
}

static bool g_agreed; /* par_agree was called: the ranks met */

int par_agree(int status) {
  if (!g_mpi) return status;
  g_agreed = true;
  int me = status ? g_rank : g_size;
  int first_bad = g_mpi->min_int(me);
  if (first_bad == g_size) return 0;
  if (first_bad == 0) return 1; /* rank 0 failed and said why itself */
  if (g_rank == first_bad) {
    char text[4096] = "";
    size_t len = 0;
    if (g_err_capture) {
      fflush(stderr);
      rewind(g_err_capture);
      len = fread(text, 1, sizeof text - 1, g_err_capture);
    }
    text[len] = 0;
    g_mpi->send_text(text, (int)len + 1, 0);
  } else if (g_rank == 0) {
    char text[4096];
    g_mpi->recv_text(text, sizeof text, first_bad);
    text[sizeof text - 1] = 0;
    size_t len = strlen(text);
    while (len && text[len - 1] == '\n') text[--len] = 0;
    fprintf(stderr, "nnc: rank %d of %d failed, so every rank stops: %s\n", first_bad, g_size,
            len ? text : "(no message)");
  }
  return 1;
}

int par_finish(int status) {
  if (!g_mpi || g_size == 1 || g_agreed) return status;
  int all = par_agree(status);
  return status ? status : all;
}

/* The line of text that starts at s, without its newline, for a message. */
static int line_len(const char *s) { return (int)strcspn(s, "\n"); }

int par_same_run(const char *facts) {
  if (!g_mpi || g_size == 1) return 0;
  int len = g_rank == 0 ? (int)strlen(facts) : 0;
  g_mpi->bcast(&len, sizeof len);
  char *first = nnc_xmalloc((size_t)len + 1);
  if (g_rank == 0) memcpy(first, facts, (size_t)len);
  g_mpi->bcast(first, len);
  first[len] = 0;
  /* the first line that differs, here and on rank 0 */
  const char *mine = facts, *theirs = first;
  while (*mine && *theirs && line_len(mine) == line_len(theirs) && memcmp(mine, theirs, (size_t)line_len(mine)) == 0) {
    mine += line_len(mine) + (mine[line_len(mine)] == '\n');
    theirs += line_len(theirs) + (theirs[line_len(theirs)] == '\n');
  }
  int differs = *mine || *theirs;
  if (differs)
    fprintf(stderr, "it would not run the same steps as rank 0: \"%.*s\" here, \"%.*s\" on rank 0\n", line_len(mine),
            *mine ? mine : "(nothing)", line_len(theirs), *theirs ? theirs : "(nothing)");
  free(first);
  return par_agree(differs);
}

static void allreduce_sum(void *data, int64_t count, bool f64) {
  if (!g_mpi || g_size == 1) return;
  /* MPI counts are int: large buffers go in pieces */
  const int64_t piece = 1 << 30;
  size_t es = f64 ? 8 : 4;
  for (int64_t at = 0; at < count; at += piece) {
    int64_t k = count - at < piece ? count - at : piece;
    g_mpi->sum((char *)data + (size_t)at * es, (int)k, f64);
  }
}

/* ---- threads ---- */

int par_cgroup_cpus(const char *cpu_max) {
  char quota[32];
  long long period = 0;
  if (sscanf(cpu_max, "%31s %lld", quota, &period) != 2 || period <= 0 || strcmp(quota, "max") == 0) return 0;
  char *end;
  long long q = strtoll(quota, &end, 10);
  if (*end || q <= 0) return 0;
  long long cpus = (q + period - 1) / period; /* 1.5 CPUs of time: 2 threads */
  return cpus > INT_MAX ? INT_MAX : (int)cpus;
}

/* The tightest CPU quota of this process's cgroup (v2) and the cgroups
 * above it, or 0 when none is set. */
static int cgroup_quota(void) {
  FILE *f = fopen("/proc/self/cgroup", "r");
  if (!f) return 0;
  char line[4096], dir[4200] = "";
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "0::/", 4) == 0) {
      line[strcspn(line, "\n")] = 0;
      snprintf(dir, sizeof dir, "/sys/fs/cgroup%s", line + 3);
    }
  fclose(f);
  int least = 0;
  const size_t root = strlen("/sys/fs/cgroup");
  while (strlen(dir) > root) {
    char path[4300], text[128];
    snprintf(path, sizeof path, "%s/cpu.max", dir);
    FILE *m = fopen(path, "r");
    if (m && fgets(text, sizeof text, m)) {
      int cpus = par_cgroup_cpus(text);
      if (cpus > 0 && (least == 0 || cpus < least)) least = cpus;
    }
    if (m) fclose(m);
    *strrchr(dir, '/') = 0; /* the parent */
  }
  return least;
}

int par_available_cpus(void) {
  cpu_set_t set;
  long cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
  int quota = cgroup_quota();
  if (quota > 0 && quota < cpus) cpus = quota;
  return cpus < 1 ? 1 : cpus > 1024 ? 1024 : (int)cpus;
}

int par_default_threads(int64_t work_per_row, int64_t batch) {
  int cpus = par_available_cpus();
  if (cpus < 2) return 1;
  /* below ~16 rows a thread or 2^27 values per step, two threads do not
     pay for sure: a shard of half the rows costs a little more than half
     the step (whole weight gradients), the sum and the update move the
     weights between the cores' caches, and a wait that sleeps costs a wake
     of up to hundreds of microseconds on a busy VM. W2 (about 2^22 values,
     310 us a step on the Zen 4 VM) gains up to 1.6x with both CPUs its
     own, but a preempted partner costs a short step more than it gains;
     fashion_mlp.nn (2^25.7, 2 ms a step) at 0.79x to 1.12x of one at
     quiet moments on a Zen 5 VM; fashion_cnn.nn
     (2^28.4, 80 ms) gains (docs/internals.md, section 10; bench/scaling) */
  int64_t by_rows = batch / 16;
  if (by_rows < 2 || work_per_row * batch < (1 << 27)) return 1;
  return (int)(cpus < by_rows ? cpus : by_rows);
}

typedef struct Shard {
  void *grad, *ws;      /* this thread's gradient buffer and workspace */
  void *grad_mem;       /* the gradient range grad addresses */
  /* when the shard may hold more rows than grad_part takes (fewer threads
     started than it was compiled for): a piece's gradients, added to grad */
  void *piece, *piece_mem;
  const void *x, *t;    /* its rows */
  int64_t first;        /* its first row's place in the whole batch */
  int64_t n;
  double loss;
} Shard;

/* What a thread spent waiting (NNC_THREAD_STATS=1 prints it at the end). */
typedef struct WaitStats {
  _Alignas(64) int64_t spin_limit_ns; /* this thread's spin before it sleeps (see await_change) */
  int64_t back_at;  /* when it last ran again after a sleep */
  int queue_fd;     /* its /proc/thread-self/schedstat (-1: none), opened at its first sleep */
  bool queue_tried; /* that open was tried */
  bool shared;      /* it waited for a CPU since the sleep before (par_spin_target) */
  int64_t queued_ns; /* its time waiting for a CPU (schedstat) at its last sleep */
  uint64_t waits, slept, futex_waits, wakes; /* waits that found the value unchanged, those that slept */
  uint64_t shared_sleeps;                    /* sleeps after which it spun as on a shared CPU */
  int64_t spin_ns, sleep_ns, wake_ns, work_ns, reduce_ns, update_ns, cpu_ns;
  /* the CPU time of the shard, the sum and the update (with the wall
     times above, what other jobs took from them) */
  int64_t work_cpu_ns, reduce_cpu_ns, update_cpu_ns;
  int64_t pulled_bytes; /* the parameters read before a shard (pull_params) */
} WaitStats;

typedef struct Par Par;
typedef struct Worker {
  Par *p;
  int k;
  pthread_t thread;
} Worker;

struct Par {
  Engine *inner;
  int threads;
  int started; /* workers running: threads - 1 once made */
  bool f64;
  int64_t grad_lo, grad_hi; /* the gradients' element range in the buffer */
  Shard *shard;
  Worker *worker;
  int64_t total; /* rows of the current global batch */
  /* futex words */
  atomic_uint generation; /* bumped for each step */
  atomic_uint pending;    /* workers still busy with this step */
  atomic_uint arrived;    /* shards done with their gradients */
  /* threads asleep (or about to be) in a futex wait on generation,
     pending, arrived: a wake makes a syscall only for a word slept on */
  atomic_uint sleep_generation, sleep_pending, sleep_arrived;
  atomic_bool quit;
  atomic_uint_least64_t wake_ns;      /* running mean of what a sleep costs (add_wake_cost) */
  atomic_uint wake_samples;           /* how many went into it (the first replaces the guess) */
  atomic_int_least64_t woken_at;      /* when the last FUTEX_WAKE began */
  atomic_int_least64_t waker_back_at; /* when the thread that made it last ran again after a sleep */
  WaitStats *stats; /* one per thread */
  void (*add_f32)(float *restrict dst, const float *restrict src, int64_t n);
  void (*add_f64)(double *restrict dst, const double *restrict src, int64_t n);
  uint64_t steps;
  bool print_stats;
  bool one_barrier; /* two threads: the main thread sums both shards (see run_step_part) */
  /* every thread sums and updates its slice of every tensor (update_part;
     run_step_part), instead of the main thread updating alone */
  bool sliced_update;
  bool clflushopt; /* the CPU has it (drop_read_slices) */
  ParDrop drop;    /* this step's way of handing lines over (par_drop_next), set before the workers start it */
  bool drop_now;   /* drop.drop with update_part, when the buffer is 64-byte aligned (its non-temporal stores need it) */
  uint64_t drop_steps;
};



/* Zero the gradient range of buf (a buffer of the layout). */
static void zero_grads(const Par *p, void *buf) {
  size_t es = (size_t)p->inner->layout->elem_size;
  memset((char *)buf + (size_t)p->grad_lo * es, 0, (size_t)(p->grad_hi - p->grad_lo) * es);
}

static void run_shard(Par *p, Shard *s) {
  Engine *in = p->inner;
  if (s->n == 0) { /* nothing to add: zeros keep the reduction's order */
    zero_grads(p, s->grad);
    s->loss = 0;
    return;
  }
  if (s->n <= in->part_rows) {
    s->loss = in->grad_part(in, s->grad, s->ws, s->x, s->t, s->n, p->total, s->first);
    return;
  }
  /* in pieces of the rows grad_part's workspace holds */
  size_t es = (size_t)in->layout->elem_size;
  size_t xrow = (size_t)engine_input_cols(in->g) * es, trow = (size_t)engine_target_cols(in->g) * es;
  double loss = 0;
  for (int64_t at = 0; at < s->n; at += in->part_rows) {
    int64_t rows = s->n - at < in->part_rows ? s->n - at : in->part_rows;
    void *into = at == 0 ? s->grad : s->piece;
    loss += in->grad_part(in, into, s->ws, (const char *)s->x + (size_t)at * xrow, (const char *)s->t + (size_t)at * trow,
                          rows, p->total, s->first + at);
    if (at == 0) continue;
    int64_t lo = p->grad_lo, len = p->grad_hi - p->grad_lo;
    if (p->f64)
      p->add_f64((double *)s->grad + lo, (const double *)s->piece + lo, len);
    else
      p->add_f32((float *)s->grad + lo, (const float *)s->piece + lo, len);
  }
  s->loss = loss;
}

static void run_step_part(Par *p, int k);

/* ---- waiting: a short spin, then the kernel ---- */

/* How long a wait spins before it sleeps. A sleep costs the time from the
 * waker's FUTEX_WAKE until the sleeper runs again, which on a
 * paravirtualized VM is 100 to 500 us at times (a W2 step takes 130 to
 * 320 us), mostly outside the syscall; on bare metal a few microseconds.
 * A wait that spins for as long as a wake costs and then sleeps is never
 * worse than twice the better of the two, so the spin's target is the
 * measured cost of the wakes (Par.wake_ns, a running mean of
 * par_resume_cost), within [PAR_SPIN_MIN_NS, PAR_SPIN_MAX_NS], or
 * PAR_SPIN_SHARED_MAX_NS while the thread's CPU is shared with other work
 * (it waited for a CPU since its last sleep: queued_ns), whose time a long
 * spin would take. Each
 * thread's own limit halves when the other thread took longer than the
 * target (preempted by another job, or a long pause between epochs),
 * becomes the target when it took less but the limit had run out, and
 * grows back when spins succeed, so a thread whose partner shares a busy
 * core soon spins briefly. How long the other thread took is measured up
 * to its FUTEX_WAKE (par_waited): the sleeper's own way back after it is
 * what the wake cost, 100 to 220 us on the Zen 4 VM: counted as
 * lateness, it would make every sleep of W2's worker (a 45 us wait for
 * the sum and update) look late, and its limit would never grow back; nor
 * from before the waker's own return from a sleep during the wait, which
 * is what that sleep's wake cost: counted as lateness, two threads whose
 * wakes cost more than their limits kept each other asleep, each late for
 * the other by its own wake (W2 on the Zen 5 VM at 1330-1420 steps/s
 * against 5260-5530 on one thread, wakes of 200-500 us, the limits halved
 * to 150-180 us). On a shared CPU it counts again: there the way back is
 * the other work's time on the CPU, and the spins should shorten. */
enum { WAKE_GUESS_NS = 50000 };

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* This thread's CPU time. */
static int64_t cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

int64_t par_spin_target(int64_t wake_ns, bool shared) {
  int64_t t = wake_ns / 2 * 3, most = shared ? PAR_SPIN_SHARED_MAX_NS : PAR_SPIN_MAX_NS;
  return t < PAR_SPIN_MIN_NS ? PAR_SPIN_MIN_NS : t > most ? most : t;
}

int64_t par_spin_next(int64_t limit, int64_t target, int64_t waited_ns, bool slept) {
  if (!slept) limit += limit / 4 + PAR_SPIN_MIN_NS; /* spins succeed: grow back towards the target */
  else if (waited_ns <= target) limit = target;     /* the whole target would have covered it */
  else limit /= 2;                                  /* the other thread is late */
  return limit < PAR_SPIN_MIN_NS ? PAR_SPIN_MIN_NS : limit > target ? target : limit;
}

int64_t par_waited(int64_t began, int64_t slept_at, int64_t woken_at, int64_t waker_back_at, int64_t resumed_at) {
  if (woken_at <= slept_at) return resumed_at - began; /* no wake reached it */
  int64_t from = waker_back_at > began ? waker_back_at : began;
  return woken_at > from ? woken_at - from : 0;
}

/* A sample of what a sleep costs, into the running mean the spins
 * follow: the time from the FUTEX_WAKE's start until the sleeper ran
 * again. On a VM an idle vCPU is woken by the host, which takes tens to
 * hundreds of microseconds, mostly not in the syscall. */
static void add_wake_cost(Par *p, int64_t cost) {
  uint64_t mean = atomic_load_explicit(&p->wake_ns, memory_order_relaxed);
  bool first = atomic_fetch_add_explicit(&p->wake_samples, 1, memory_order_relaxed) == 0;
  atomic_store_explicit(&p->wake_ns, first ? (uint64_t)cost : (mean * 7 + (uint64_t)cost) / 8, memory_order_relaxed);
}

int64_t par_resume_cost(int64_t slept_at, int64_t woken_at, int64_t resumed_at) {
  return woken_at > slept_at ? resumed_at - woken_at : -1;
}

int64_t par_schedstat_queued(const char *text) {
  long long run, queued;
  return sscanf(text, "%lld %lld", &run, &queued) == 2 && queued >= 0 ? (int64_t)queued : -1;
}

/* This thread's time so far runnable but waiting for a CPU, or -1. */
static int64_t queued_ns(WaitStats *st) {
  if (!st->queue_tried) {
    st->queue_tried = true;
    st->queue_fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
  }
  char text[128];
  ssize_t n = st->queue_fd >= 0 ? pread(st->queue_fd, text, sizeof text - 1, 0) : -1;
  if (n <= 0) return -1;
  text[n] = 0;
  return par_schedstat_queued(text);
}

static atomic_uint *sleepers_of(Par *p, atomic_uint *word) {
  return word == &p->generation ? &p->sleep_generation : word == &p->pending ? &p->sleep_pending : &p->sleep_arrived;
}

/* Waits until *word is no longer seen; returns its new value. The sleepers
 * count is incremented before the value is looked at again and the waker
 * looks at it after changing the value (both sequentially consistent), so a
 * wake is never missed; FUTEX_WAIT itself returns at once when the value
 * has changed. */
static unsigned await_change(Par *p, WaitStats *st, atomic_uint *word, unsigned seen) {
  unsigned v;
  if ((v = atomic_load_explicit(word, memory_order_acquire)) != seen) return v;
  st->waits++;
  int64_t target = par_spin_target((int64_t)atomic_load_explicit(&p->wake_ns, memory_order_relaxed), st->shared);
  if (st->spin_limit_ns <= 0 || st->spin_limit_ns > target) st->spin_limit_ns = target;
  int64_t t0 = now_ns(), t = t0, until = t0 + st->spin_limit_ns;
  do {
    for (int i = 0; i < 32; i++) {
      if ((v = atomic_load_explicit(word, memory_order_acquire)) != seen) {
        t = now_ns();
        st->spin_ns += t - t0;
        st->spin_limit_ns = par_spin_next(st->spin_limit_ns, target, t - t0, false);
        return v;
      }
      _mm_pause();
    }
  } while ((t = now_ns()) < until);
  st->spin_ns += t - t0;
  st->slept++;
  atomic_uint *sleepers = sleepers_of(p, word);
  atomic_fetch_add(sleepers, 1);
  while ((v = atomic_load(word)) == seen) {
    st->futex_waits++;
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
  }
  atomic_fetch_sub(sleepers, 1);
  int64_t end = now_ns(), woken_at = atomic_load_explicit(&p->woken_at, memory_order_relaxed);
  int64_t waker_back_at = atomic_load_explicit(&p->waker_back_at, memory_order_relaxed);
  int64_t resume = par_resume_cost(t, woken_at, end);
  if (resume >= 0) add_wake_cost(p, resume);
  st->sleep_ns += end - t;
  st->back_at = end;
  int64_t queued = queued_ns(st);
  if (queued >= 0) {
    st->shared = st->queued_ns && queued - st->queued_ns > PAR_SHARED_QUEUE_NS;
    st->queued_ns = queued;
  }
  st->shared_sleeps += st->shared;
  if (st->shared) waker_back_at = 0; /* a late return is the other work's, as lateness: spin less */
  st->spin_limit_ns =
      par_spin_next(st->spin_limit_ns, target, par_waited(t0, t, woken_at, waker_back_at, end), true);
  return v;
}

/* After changing *word: wakes whoever waits on it, and keeps a running
 * mean of what that costs. */
static void wake(Par *p, WaitStats *st, atomic_uint *word) {
  if (atomic_load(sleepers_of(p, word)) > 0) {
    st->wakes++;
    int64_t t0 = now_ns();
    atomic_store_explicit(&p->waker_back_at, st->back_at, memory_order_relaxed);
    atomic_store_explicit(&p->woken_at, t0, memory_order_relaxed);
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    int64_t cost = now_ns() - t0;
    st->wake_ns += cost;
  }
}

/* Waits until *word reaches at least goal (a count that only grows). */
static void await_count(Par *p, WaitStats *st, atomic_uint *word, unsigned goal) {
  for (unsigned v = atomic_load_explicit(word, memory_order_acquire); v < goal;) v = await_change(p, st, word, v);
}

static void *worker_main(void *arg) {
  Worker *w = arg;
  Par *p = w->p;
  unsigned seen = 0;
  for (;;) {
    seen = await_change(p, &p->stats[w->k], &p->generation, seen);
    if (atomic_load(&p->quit)) {
      p->stats[w->k].cpu_ns = cpu_ns();
      if (p->stats[w->k].queue_fd >= 0) close(p->stats[w->k].queue_fd);
      return NULL;
    }
    run_step_part(p, w->k);
    if (p->one_barrier) continue;
    atomic_fetch_sub(&p->pending, 1);
    wake(p, &p->stats[w->k], &p->pending);
  }
}

static void wake_workers(Par *p) {
  atomic_fetch_add(&p->generation, 1);
  wake(p, &p->stats[0], &p->generation);
}

/* dst[i] += src[i] for i < n: each element on its own, so the sums are
 * those of the scalar loop, bit for bit. GCC's -O2 leaves the plain loop
 * scalar (dst and src may overlap); AVX2 where the CPU has it. */
static void add_f32_sse(float *restrict dst, const float *restrict src, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j += 4)
      _mm_storeu_ps(dst + i + j, _mm_add_ps(_mm_loadu_ps(dst + i + j), _mm_loadu_ps(src + i + j)));
  for (; i < n; i++) dst[i] += src[i];
}

static void add_f64_sse(double *restrict dst, const double *restrict src, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j += 2)
      _mm_storeu_pd(dst + i + j, _mm_add_pd(_mm_loadu_pd(dst + i + j), _mm_loadu_pd(src + i + j)));
  for (; i < n; i++) dst[i] += src[i];
}

__attribute__((target("avx2"))) static void add_f32_avx2(float *restrict dst, const float *restrict src, int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 32; j += 8)
      _mm256_storeu_ps(dst + i + j, _mm256_add_ps(_mm256_loadu_ps(dst + i + j), _mm256_loadu_ps(src + i + j)));
  for (; i < n; i++) dst[i] += src[i];
}

__attribute__((target("avx2"))) static void add_f64_avx2(double *restrict dst, const double *restrict src,
                                                         int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; j += 4)
      _mm256_storeu_pd(dst + i + j, _mm256_add_pd(_mm256_loadu_pd(dst + i + j), _mm256_loadu_pd(src + i + j)));
  for (; i < n; i++) dst[i] += src[i];
}

/* Sum the threads' gradients, in thread order, into the engine's buffer:
 * thread k sums slice k of the gradient range (every element still in
 * order 0..N-1, so the bits do not depend on who sums what). */
/* buf's elements [lo, hi) += shards 1..upto-1's, in thread order (buf
 * holds shard 0's gradients) */
static void add_shards(Par *p, int64_t lo, int64_t hi, int upto) {
  for (int k = 1; k < upto; k++)
    if (p->f64)
      p->add_f64((double *)p->inner->buf + lo, (const double *)p->shard[k].grad + lo, hi - lo);
    else
      p->add_f32((float *)p->inner->buf + lo, (const float *)p->shard[k].grad + lo, hi - lo);
}

static void reduce_slice(Par *p, int slice) {
  int64_t len = p->grad_hi - p->grad_lo;
  int64_t per = ((len + p->threads - 1) / p->threads + 15) / 16 * 16; /* whole cache lines */
  int64_t lo = p->grad_lo + per * slice, hi = lo + per;
  if (hi > p->grad_hi) hi = p->grad_hi;
  if (lo < hi) add_shards(p, lo, hi, p->threads);
}

/* Thread k's slice of every gradient tensor (engine_slice, as
 * update_part cuts the tensors), summed in thread order as reduce_slice
 * sums, so it can update what it summed; but the last shard, which
 * update_part adds where it reads the gradients (its grad2): the sum is
 * not stored and read back, and with two threads there is no pass of its
 * own (each thread's slice of the other core's gradients is read once,
 * and the buffer's gradient lines stay in the core that wrote them). */
static void reduce_tensor_slices(Par *p, int k) {
  if (p->threads < 3) return;
  const Graph *g = p->inner->g;
  const Layout *L = p->inner->layout;
  for (int i = 0; i < g->params.len; i++) {
    int64_t lo, hi;
    engine_slice(shape_numel(&((const Node *)g->params.items[i])->shape), L->elem_size, k, p->threads, &lo, &hi);
    if (lo < hi) add_shards(p, L->grad_off[i] + lo, L->grad_off[i] + hi, p->threads - 1);
  }
}

__attribute__((target("clflushopt"))) static void flush_lines(const char *at, size_t bytes) {
  for (size_t b = 0; b < bytes; b += 64) _mm_clflushopt((void *)(uintptr_t)(at + b));
}

/* After thread k's update: its slice of the other shards' gradients,
 * which it read from the other cores' caches, leaves every cache
 * (clflushopt, written back), so that the shard that writes those lines
 * next step finds no copy of them in another core to invalidate first.
 * On the Zen 4 VM at moments when the vCPUs were far apart, an ordinary
 * store to such a line waited about 30 ns; with the parameters stored
 * non-temporally (update_part), this took a W2 shard from 275-310 us of
 * CPU to 215-240 (objects of --emit obj driven from C, both threads at
 * chrt -f 1). Then the fence that makes update_part's non-temporal
 * stores visible before the thread says it is done. */
static void drop_read_slices(Par *p, int k) {
  const Graph *g = p->inner->g;
  const Layout *L = p->inner->layout;
  size_t es = (size_t)L->elem_size;
  for (int i = 0; p->clflushopt && i < g->params.len; i++) {
    int64_t lo, hi;
    engine_slice(shape_numel(&((const Node *)g->params.items[i])->shape), L->elem_size, k, p->threads, &lo, &hi);
    for (int j = 0; j < p->threads && lo < hi; j++)
      if (j != k)
        flush_lines((const char *)p->shard[j].grad + (size_t)(L->grad_off[i] + lo) * es, (size_t)(hi - lo) * es);
  }
  _mm_sfence();
}

/* CPUID leaf 7, EBX bit 23. Not __builtin_cpu_supports("clflushopt"):
 * clang (the fuzzing build) does not know that name. */
static bool have_clflushopt(void) {
  unsigned a, b, c, d;
  return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 23));
}

void par_drop_init(ParDrop *d) {
  memset(d, 0, sizeof *d);
  d->drop = true;
}

static int64_t median_of(const int64_t *t, int n) {
  int64_t s[PAR_DROP_PHASE];
  for (int i = 0; i < n; i++) { /* insertion sort */
    int j = i;
    for (; j > 0 && s[j - 1] > t[i]; j--) s[j] = s[j - 1];
    s[j] = t[i];
  }
  return s[n / 2];
}

bool par_drop_next(ParDrop *d, int64_t step_ns) {
  int64_t t = step_ns < 1 ? 1 : step_ns;
  d->t[d->n++] = t;
  d->since_ns += t;
  if (d->n < PAR_DROP_PHASE) return d->drop;
  d->median[d->drop] = median_of(d->t, d->n);
  d->n = 0;
  d->since++;
  if (!d->median[0] || !d->median[1]) { /* try the way not measured yet */
    d->drop = !d->median[1];
    return d->drop;
  }
  bool best = d->median[1] <= d->median[0];
  /* a try of the worse way costs its difference for a phase: not more
     often than every PAR_DROP_EVERY phases, nor PAR_DROP_GAP_NS (W2 on
     the Zen 4 VM: 0.3 s of training, 20% between the ways) */
  bool again = d->since >= PAR_DROP_EVERY && d->since_ns >= PAR_DROP_GAP_NS;
  /* but the first choice rests on one phase of each way at the start (caches
     still cold, the host's moment): it is tried once more early on. W2 on
     two threads at moments when the vCPUs were far apart kept the caches'
     way in 8 of 88 runs: a step of 310 us against 212 dropped, 3050
     steps/s against 4300 to 4600 */
  again |= !d->rechecked && d->since >= PAR_DROP_RECHECK;
  if (again) d->since = d->since_ns = 0, d->rechecked = true;
  d->drop = again ? !best : best;
  return d->drop;
}

/* The lines of [at, at + bytes), read one by one in address order. */
static void touch_lines(const char *at, size_t bytes) {
  for (size_t b = 0; b < bytes; b += 64) (void)*(const volatile char *)(at + b);
}

/* Before a shard whose lines go through memory (drop): every parameter,
 * which the last update stored non-temporally (out of every cache, the
 * storing thread's own slice too), read in address order, so that it
 * comes from memory as a stream the hardware fetches ahead rather than at
 * the pace of the shard's first reads of it, the packing of each weight
 * for its layer's product (nnc.gemm.pack_b: a transposing copy that
 * reads 16 of the weight's rows at once, lines 1 KiB apart in W2's
 * second layer). W2 on two threads at moments when the vCPUs were far
 * apart (drop chosen; chrt -f 1, load 3): 4595 steps/s against 4300
 * reading the other thread's slice alone, after which the main thread's
 * shard, reading its own slice from memory, took 201 us against the
 * worker's 189 (now 184 and 186). The
 * caches' way does not gain from it: there the shards' reads already run
 * near their time alone. The parameters lie before the gradients. */
static void pull_params(Par *p, int k) {
  size_t bytes = (size_t)p->grad_lo * (size_t)p->inner->layout->elem_size;
  touch_lines(p->inner->buf, bytes);
  p->stats[k].pulled_bytes += (int64_t)bytes;
}

/* Shard k's gradients, then (once every shard is done) slice k of the sum
 * and, with update_part (sliced_update), the update of that slice (which
 * adds the last shard's gradients as it reads them): no
 * thread waits while another sums and updates, and each moves only its
 * slice of the weights and gradients between the cores' caches (W2 on the
 * Zen 4 VM with both threads given the CPUs: 4993 against 4365 steps/s
 * with the main thread updating, docs/internals.md, "Waiting").
 * Without it, with two threads (one_barrier) the worker only computes its shard and
 * the main thread sums all of it: the worker then waits once a step (for
 * the next one) and the main thread once (for the worker's shard), instead
 * of two more waits around the reduction's slices. Each wait that sleeps
 * costs a FUTEX_WAKE of hundreds of microseconds on a VM; the sum on one
 * thread costs 2x its slice (W2: 8 to 16 us; fashion_cnn: about 1 ms of a
 * 50 ms step). At load average 6 this halved the wakes a step (main thread
 * 1.6 -> 0.9, worker 1.1-1.5 -> 0.5-0.6) and fashion_mlp's CPU time a
 * step by 3-25% (six pairs of six, when Adam had no update_part); W2 and
 * fashion_cnn within the noise. With update_part the extra wait is paid
 * for by the update in slices: fashion_mlp (Adam) on two threads at 600
 * steps/s against 419 with the main thread updating, with both threads
 * given the CPUs (chrt -f 1, five alternating runs), and 123 against 130
 * at load 6 without (one thread 163).
 * With more threads every thread sums a slice. The order of the additions
 * is that of the threads either way: the same bits. */
static void run_step_part(Par *p, int k) {
  WaitStats *st = &p->stats[k];
  int64_t t0 = now_ns(), c0 = p->print_stats ? cpu_ns() : 0;
  if (p->drop_now) pull_params(p, k);
  run_shard(p, &p->shard[k]);
  st->work_ns += now_ns() - t0;
  if (p->print_stats) st->work_cpu_ns += cpu_ns() - c0;
  atomic_fetch_add(&p->arrived, 1);
  wake(p, st, &p->arrived);
  if (p->one_barrier && k > 0) return;
  await_count(p, st, &p->arrived, (unsigned)p->threads);
  t0 = now_ns(), c0 = p->print_stats ? cpu_ns() : 0;
  if (p->sliced_update)
    reduce_tensor_slices(p, k);
  else if (p->one_barrier)
    for (int j = 0; j < p->threads; j++) reduce_slice(p, j);
  else
    reduce_slice(p, k);
  st->reduce_ns += now_ns() - t0;
  if (p->print_stats) st->reduce_cpu_ns += cpu_ns() - c0;
  if (!p->sliced_update) return;
  t0 = now_ns(), c0 = p->print_stats ? cpu_ns() : 0;
  bool drop = p->drop_now;
  p->inner->update_part(p->inner, k, p->threads, p->shard[p->threads - 1].grad, drop);
  if (drop) drop_read_slices(p, k);
  else _mm_sfence();
  st->update_ns += now_ns() - t0;
  if (p->print_stats) st->update_cpu_ns += cpu_ns() - c0;
}

/* Scale the gradient range of the buffer by f (the interpreter's fallback:
 * backward gives the mean over its own rows). */
static void scale_grads(Par *p, double f) {
  Engine *in = p->inner;
  if (p->f64)
    for (int64_t i = p->grad_lo; i < p->grad_hi; i++) ((double *)in->buf)[i] *= f;
  else
    for (int64_t i = p->grad_lo; i < p->grad_hi; i++) ((float *)in->buf)[i] = (float)(((float *)in->buf)[i] * f);
}

/* This rank's rows [x, x + n rows) of a global batch of `total` rows, from
 * its row `first`: gradients summed into the buffer (x 1/total); returns
 * the loss sum / total of those rows. */
static double rank_gradients(Par *p, const void *x, const void *t, int64_t n, int64_t first) {
  Engine *in = p->inner;
  if (!in->grad_part) { /* the interpreter, one thread */
    if (n == 0) {
      zero_grads(p, in->buf);
      return 0;
    }
    double loss = in->backward(in, x, t, n);
    scale_grads(p, (double)n / (double)p->total);
    return loss * (double)n / (double)p->total;
  }
  size_t es = (size_t)in->layout->elem_size;
  size_t xrow = (size_t)engine_input_cols(in->g) * es, trow = (size_t)engine_target_cols(in->g) * es;
  int64_t at = 0;
  for (int k = 0; k < p->threads; k++) {
    int64_t rows = n / p->threads + (k < n % p->threads ? 1 : 0);
    p->shard[k].x = (const char *)x + (size_t)at * xrow;
    p->shard[k].t = (const char *)t + (size_t)at * trow;
    p->shard[k].n = rows;
    p->shard[k].first = first + at;
    at += rows;
  }
  p->shard[0].grad = in->buf; /* a caller may have lent the engine another buffer */
  /* aligned as nnc.h asks of a buffer, but not relied on */
  p->drop_now = p->sliced_update && p->drop.drop && (uintptr_t)in->buf % 64 == 0;
  atomic_store(&p->arrived, 0);
  if (p->threads > 1) {
    if (!p->one_barrier) atomic_store(&p->pending, (unsigned)p->threads - 1);
    wake_workers(p);
  }
  run_step_part(p, 0);
  for (unsigned v; (v = atomic_load_explicit(&p->pending, memory_order_acquire)) > 0;)
    await_change(p, &p->stats[0], &p->pending, v);
  if (p->sliced_update) { /* every part has read the scalar states (Adam's b1^t): the tail writes them */
    int64_t t0 = now_ns(), c0 = p->print_stats ? cpu_ns() : 0;
    in->update_part(in, p->threads, p->threads, p->shard[p->threads - 1].grad, p->drop_now);
    _mm_sfence();
    p->stats[0].update_ns += now_ns() - t0;
    if (p->print_stats) p->stats[0].update_cpu_ns += cpu_ns() - c0;
  }
  double loss = 0;
  for (int k = 0; k < p->threads; k++) loss += p->shard[k].loss;
  return loss;
}

/* train_epoch: global batches of ranks x max_batch rows, each split across
 * the ranks and their threads, one update per global batch. Returns the sum
 * over rows of each row's loss before its step (as every train_epoch). */
static double par_train_epoch(Engine *e, const void *x, const void *t, int64_t rows) {
  Par *p = e->impl;
  Engine *in = p->inner;
  int64_t B = in->max_batch, G = B * par_size();
  size_t es = (size_t)in->layout->elem_size;
  size_t xrow = (size_t)engine_input_cols(in->g) * es, trow = (size_t)engine_target_cols(in->g) * es;
  double sum = 0;
  int64_t cpu0 = p->print_stats ? cpu_ns() : 0;
  for (int64_t g0 = 0; g0 < rows; g0 += G) {
    int64_t step0 = now_ns();
    p->total = rows - g0 < G ? rows - g0 : G;
    int64_t lo = (int64_t)par_rank() * B, hi = lo + B;
    if (lo > p->total) lo = p->total;
    if (hi > p->total) hi = p->total;
    double loss = rank_gradients(p, (const char *)x + (size_t)(g0 + lo) * xrow,
                                 (const char *)t + (size_t)(g0 + lo) * trow, hi - lo, lo);
    allreduce_sum((char *)in->buf + (size_t)p->grad_lo * es, p->grad_hi - p->grad_lo, p->f64);
    allreduce_sum(&loss, 1, true);
    if (p->sliced_update) { /* the threads have updated: the way of the next step */
      p->drop_steps += p->drop_now;
      par_drop_next(&p->drop, now_ns() - step0); /* the workers read it after the next wake */
    } else {
      int64_t t0 = now_ns(), c0 = p->print_stats ? cpu_ns() : 0;
      in->update(in);
      p->stats[0].update_ns += now_ns() - t0;
      if (p->print_stats) p->stats[0].update_cpu_ns += cpu_ns() - c0;
    }
    p->steps++;
    sum += loss * (double)p->total;
  }
  if (p->print_stats) p->stats[0].cpu_ns += cpu_ns() - cpu0;
  return sum;
}

static double par_train_step(Engine *e, const void *x, const void *t, int64_t n) {
  return par_train_epoch(e, x, t, n) / (double)(n ? n : 1);
}

static double par_backward(Engine *e, const void *x, const void *t, int64_t n) {
  Par *p = e->impl;
  return p->inner->backward(p->inner, x, t, n);
}

static void par_update(Engine *e) {
  Par *p = e->impl;
  p->inner->update(p->inner);
}

static void par_forward(Engine *e, const void *x, const void *t, int64_t n, void *y, void *loss) {
  Par *p = e->impl;
  p->inner->forward(p->inner, x, t, n, y, loss);
}

static void print_stats(const Par *p) {
  double n = p->steps ? (double)p->steps : 1, us = 1e3 * n;
  fprintf(stderr, "threads: %d, steps: %llu, spin target %.1f us; per step (us):\n", p->threads,
          (unsigned long long)p->steps, (double)par_spin_target((int64_t)atomic_load(&p->wake_ns), false) / 1e3);
  for (int k = 0; k < p->threads; k++) {
    const WaitStats *s = &p->stats[k];
    fprintf(stderr,
            "  thread %d: work %.1f reduce %.1f update %.1f | waits %.2f slept %.2f shared %.2f futex_waits %.2f"
            " wakes %.2f"
            " | spin %.1f sleep %.1f wake %.1f | cpu %.1f\n",
            k, (double)s->work_ns / us, (double)s->reduce_ns / us, (double)s->update_ns / us, (double)s->waits / n,
            (double)s->slept / n, (double)s->shared_sleeps / n, (double)s->futex_waits / n, (double)s->wakes / n, (double)s->spin_ns / us,
            (double)s->sleep_ns / us, (double)s->wake_ns / us, (double)s->cpu_ns / us);
    fprintf(stderr, "  thread %d CPU: work %.1f reduce %.1f update %.1f\n", k, (double)s->work_cpu_ns / us,
            (double)s->reduce_cpu_ns / us, (double)s->update_cpu_ns / us);
  }
  if (p->sliced_update) {
    fprintf(stderr, "  lines through memory (drop) in %llu of %llu steps; last medians %.1f us without, %.1f with\n",
            (unsigned long long)p->drop_steps, (unsigned long long)p->steps, (double)p->drop.median[0] / 1e3,
            (double)p->drop.median[1] / 1e3);
    int64_t pulled = 0;
    for (int k = 0; k < p->threads; k++) pulled += p->stats[k].pulled_bytes;
    fprintf(stderr, "  parameters read ahead: %.0f bytes a dropped step\n",
            p->drop_steps ? (double)pulled / (double)p->drop_steps : 0.0);
  }
}

/* Stop the workers and free what p holds but its inner engine. */
static void par_free(Par *p) {
  if (p->started > 0) {
    atomic_store(&p->quit, true);
    wake_workers(p);
    for (int k = 1; k <= p->started; k++) pthread_join(p->worker[k].thread, NULL);
  }
  if (p->print_stats) print_stats(p);
  if (p->stats[0].queue_fd >= 0) close(p->stats[0].queue_fd);
  for (int k = 0; k < p->threads; k++) {
    free(p->shard[k].grad_mem);
    free(p->shard[k].piece_mem);
    free(p->shard[k].ws);
  }
  free(p->shard);
  free(p->worker);
  free(p->stats);
  free(p);
}

static void par_destroy(Engine *e) {
  Par *p = e->impl;
  Engine *inner = p->inner;
  par_free(p);
  inner->destroy(inner);
  free(e);
}

/* An engine that is inner but for the entries `entries` sets (backward,
 * update, train_step, train_epoch, forward, destroy) and impl: no
 * grad_part or update_part (its entries run them). */
static Engine *wrapper_of(const Engine *inner, const Engine *entries, void *impl) {
  Engine *e = nnc_xmalloc(sizeof *e);
  *e = *inner;
  e->backward = entries->backward;
  e->update = entries->update;
  e->train_step = entries->train_step;
  e->train_epoch = entries->train_epoch;
  e->forward = entries->forward;
  e->destroy = entries->destroy;
  e->grad_part = NULL;
  e->update_part = NULL;
  e->impl = impl;
  return e;
}

Engine *par_engine_new(Engine *inner, int threads) {
  if (threads < 1) threads = 1;
  if (threads > 1 && !inner->grad_part) nnc_die("parallel: threads need compiled code");
  Par *p = nnc_xcalloc(1, sizeof *p);
  p->inner = inner;
  p->threads = threads;
  p->f64 = inner->layout->elem_size == 8;
  const Layout *L = inner->layout;
  p->grad_lo = L->grad_lo, p->grad_hi = L->grad_hi;
  p->shard = nnc_xcalloc((size_t)threads, sizeof(Shard));
  p->worker = nnc_xcalloc((size_t)threads, sizeof(Worker));
  p->stats = nnc_xaligned((size_t)threads * sizeof(WaitStats));
  memset(p->stats, 0, (size_t)threads * sizeof(WaitStats));
  for (int k = 0; k < threads; k++) p->stats[k].queue_fd = -1;
  const char *ps = getenv("NNC_THREAD_STATS");
  p->print_stats = ps && *ps && strcmp(ps, "0") != 0;
  /* the ranks' sum (MPI) comes between the threads' sum and the update */
  p->sliced_update = threads > 1 && inner->update_part && par_size() == 1;
  p->one_barrier = threads == 2 && !p->sliced_update;
  atomic_store(&p->wake_ns, WAKE_GUESS_NS);
  par_drop_init(&p->drop);
  bool avx2 = __builtin_cpu_supports("avx2");
  p->add_f32 = avx2 ? add_f32_avx2 : add_f32_sse;
  p->add_f64 = avx2 ? add_f64_avx2 : add_f64_sse;
  p->clflushopt = have_clflushopt();
  /* grad_part writes the gradient range of a buffer of the layout and
     nothing else: a shard's buffers hold that range only, addressed as if
     it sat in a whole buffer */
  size_t es = (size_t)L->elem_size, grad_bytes = (size_t)(p->grad_hi - p->grad_lo) * es;
  bool pieces = (inner->max_batch + threads - 1) / threads > inner->part_rows;
  if (inner->grad_part)
    for (int k = 0; k < threads; k++) {
      Shard *s = &p->shard[k];
      s->ws = nnc_xaligned((size_t)inner->ws_bytes);
      if (pieces) {
        s->piece_mem = nnc_xaligned(grad_bytes);
        s->piece = (void *)((uintptr_t)s->piece_mem - (uintptr_t)p->grad_lo * es);
      }
      if (k == 0) continue; /* shard 0 writes the engine's own buffer */
      s->grad_mem = nnc_xaligned(grad_bytes);
      s->grad = (void *)((uintptr_t)s->grad_mem - (uintptr_t)p->grad_lo * es);
    }
  for (int k = 1; k < threads; k++) {
    p->worker[k] = (Worker){.p = p, .k = k};
    int rc = pthread_create(&p->worker[k].thread, NULL, worker_main, &p->worker[k]);
    if (rc) {
      /* (a limit on processes: a container's pids, `ulimit -u`) train on
         the threads that started, as a smaller --threads would */
      fprintf(stderr, "nnc: note: cannot start training thread %d of %d (%s); training on %d\n", k + 1, threads,
              strerror(rc), k);
      par_free(p);
      /* one process on one thread: the engine itself (its train_epoch,
         compiled on its first call, as for --threads 1) */
      if (k == 1 && par_size() == 1) return inner;
      return par_engine_new(inner, k);
    }
    p->started = k;
  }
  static const Engine entries = {.backward = par_backward, .update = par_update, .train_step = par_train_step,
                                 .train_epoch = par_train_epoch, .forward = par_forward, .destroy = par_destroy};
  Engine *e = wrapper_of(inner, &entries, p);
  e->rows_per_step = inner->max_batch * par_size();
  return e;
}

/* ---- the feature split ----
 *
 * The engine's code was compiled with CG_FORK_GEMMS: each product calls
 * nnc_fork_gemm, which splits it with the pool's worker while the
 * calling thread is in the pool. Every entry enters it around the inner
 * engine's call. */

typedef struct ForkEngine {
  Engine *inner;
  void *inner_buf; /* inner's own buffer (its entries run on the wrapper's, which a caller may lend) */
  ForkPool *pool;
  uint64_t steps;
  bool print_stats;
} ForkEngine;

/* Each entry runs inner's on this thread inside the pool, on the
 * wrapper's buffer, and leaves the pool after (the thread may call other
 * code, or outlive the pool). */
static Engine *fork_inner(Engine *e) {
  ForkEngine *f = e->impl;
  fork_pool_enter(f->pool);
  f->inner->buf = e->buf;
  return f->inner;
}

static double fork_backward(Engine *e, const void *x, const void *t, int64_t n) {
  Engine *in = fork_inner(e);
  double loss = in->backward(in, x, t, n);
  fork_pool_enter(NULL);
  return loss;
}

static void fork_update(Engine *e) {
  Engine *in = fork_inner(e);
  in->update(in);
  fork_pool_enter(NULL);
}

static double fork_train_step(Engine *e, const void *x, const void *t, int64_t n) {
  Engine *in = fork_inner(e);
  ((ForkEngine *)e->impl)->steps++;
  double loss = in->train_step(in, x, t, n);
  fork_pool_enter(NULL);
  return loss;
}

static double fork_train_epoch(Engine *e, const void *x, const void *t, int64_t rows) {
  Engine *in = fork_inner(e);
  ((ForkEngine *)e->impl)->steps += (uint64_t)((rows + in->max_batch - 1) / in->max_batch);
  double sum = in->train_epoch(in, x, t, rows);
  fork_pool_enter(NULL);
  return sum;
}

static void fork_forward(Engine *e, const void *x, const void *t, int64_t n, void *y, void *loss) {
  Engine *in = fork_inner(e);
  in->forward(in, x, t, n, y, loss);
  fork_pool_enter(NULL);
}

static void fork_destroy(Engine *e) {
  ForkEngine *f = e->impl;
  if (f->print_stats) {
    ForkStats s = fork_pool_stats(f->pool);
    double n = f->steps ? (double)f->steps : 1;
    fprintf(stderr,
            "threads: 2 (features), steps: %llu; per step: products split %.2f, whole %.2f, waits %.2f (%.1f us),"
            " worker slept %.2f, its part taken back %.2f\n",
            (unsigned long long)f->steps, (double)s.forks / n, (double)s.whole / n, (double)s.waits / n,
            (double)s.wait_ns / 1e3 / n, (double)s.slept / n, (double)s.stolen / n);
  }
  fork_pool_stop(f->pool);
  f->inner->buf = f->inner_buf;
  f->inner->destroy(f->inner);
  free(f);
  free(e);
}

Engine *par_fork_engine_new(Engine *inner) {
  ForkPool *pool = fork_pool_start(-1);
  if (!pool) {
    fprintf(stderr, "nnc: note: cannot start training thread 2 of 2 (%s); training on 1\n", strerror(errno));
    return inner;
  }
  ForkEngine *f = nnc_xcalloc(1, sizeof *f);
  f->inner = inner;
  f->inner_buf = inner->buf;
  f->pool = pool;
  const char *ps = getenv("NNC_THREAD_STATS");
  f->print_stats = ps && *ps && strcmp(ps, "0") != 0;
  static const Engine entries = {.backward = fork_backward, .update = fork_update, .train_step = fork_train_step,
                                 .train_epoch = fork_train_epoch, .forward = fork_forward, .destroy = fork_destroy};
  return wrapper_of(inner, &entries, f);
}

bool par_engine_threads(const Engine *e, int *threads) {
  *threads = e->destroy == par_destroy ? ((const Par *)e->impl)->started + 1 : e->destroy == fork_destroy ? 2 : 1;
  return e->destroy == fork_destroy;
}
