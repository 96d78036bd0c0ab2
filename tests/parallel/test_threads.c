/*
 * test_threads.c - the thread pool of runtime/parallel.c:
 *   - how many CPUs nnc may use: the affinity mask (as taskset sets it) and a
 *     cgroup's CPU quota, which the default --threads follows;
 *   - waiting threads sleep: while one thread's shard takes long, the others
 *     are asleep in the kernel (state S), not spinning (state R), so they
 *     never take a core from the thread that works;
 *   - how long a wait spins before it sleeps: as long as a wake costs
 *     (bounded), shorter after waits that a spin could not have covered;
 *   - how the threads hand lines over (par_drop_next): both ways tried
 *     first, then the faster, the other tried once more early on and
 *     then now and then (not before PAR_DROP_GAP_NS of steps), and the
 *     choice follows a change of which is faster.
 * The pool runs over the interpreter's engine of a small model with a
 * grad_part that only sleeps and looks at the other threads.
 */
#include <dirent.h>
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver.h"
#include "engine.h"
#include "interp.h"
#include "parallel.h"
#include "util.h"

#include "../check.h"

static void test_cgroup_text(void) {
  CHECK(par_cgroup_cpus("max 100000\n") == 0);
  CHECK(par_cgroup_cpus("100000 100000\n") == 1);
  CHECK(par_cgroup_cpus("150000 100000\n") == 2);
  CHECK(par_cgroup_cpus("50000 100000") == 1);
  CHECK(par_cgroup_cpus("400000 100000") == 4);
  CHECK(par_cgroup_cpus("") == 0);
  CHECK(par_cgroup_cpus("12x 100000") == 0);
  CHECK(par_cgroup_cpus("100000 0") == 0);
}

static void test_affinity(void) {
  cpu_set_t all, one;
  if (sched_getaffinity(0, sizeof all, &all) != 0) {
    CHECK(!"sched_getaffinity");
    return;
  }
  int first = 0;
  while (!CPU_ISSET(first, &all)) first++;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  CHECK(sched_setaffinity(0, sizeof one, &one) == 0);
  CHECK(par_available_cpus() == 1);
  CHECK(par_default_threads(1 << 20, 256) == 1); /* work enough for many threads */
  CHECK(sched_setaffinity(0, sizeof all, &all) == 0);
  int cpus = par_available_cpus();
  CHECK(cpus >= 1 && cpus <= CPU_COUNT(&all));
  CHECK(par_default_threads(1 << 20, 256) == (cpus < 16 ? cpus : 16));
}

/* ---- waiting ---- */

static const char MODEL[] = "model m {\n  dtype f64\n  input x[2]\n  target t[1]\n"
                            "  y = x -> linear(3) -> relu -> linear(1)\n  loss squared(y, t)\n}\n"
                            "train {\n  batch 4\n}\n";

static volatile pid_t main_tid, worker_tid;
static atomic_int step;
static char worker_state, main_state; /* what the other saw while it slept */

/* The scheduler state of thread tid of this process: 'R' running or
 * runnable, 'S' asleep, ... */
static char thread_state(pid_t tid) {
  char path[64], text[512];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
  FILE *f = fopen(path, "r");
  if (!f) return '?';
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  char *paren = strrchr(text, ')');
  return paren && paren[1] == ' ' ? paren[2] : '?';
}

/* tid's state once it has had the time to settle: a thread that sleeps
 * is 'S' soon after it starts waiting (on a busy machine it may first wait
 * a while to be scheduled at all); one that spins stays 'R'. */
static char settled_state(const volatile pid_t *tid) {
  char state = '?';
  for (int tries = 0; tries < 20 && state != 'S'; tries++) {
    usleep(100000);
    state = *tid ? thread_state(*tid) : '?';
  }
  return state;
}

/* Step 1: the main thread's shard looks at the worker, which is waiting
 * for it; step 2: the other way round. */
static double slow_grad_part(Engine *e, void *grad, void *ws, const void *x, const void *t, int64_t n,
                             int64_t total, int64_t first) {
  pid_t me = gettid();
  if (me == main_tid) {
    int s = atomic_fetch_add(&step, 1);
    if (s == 0) worker_state = settled_state(&worker_tid);
  } else {
    static int calls;
    worker_tid = me;
    if (++calls == 2) main_state = settled_state(&main_tid);
  }
  return 0;
}

static void test_waits_sleep(void) {
  NncOptions o;
  nnc_options_default(&o);
  o.file = "threads.nn";
  o.train = true;
  Compilation c = {.opt = &o};
  arena_init(&c.arena);
  source_from_text(&c.src, o.file, nnc_xstrdup(MODEL), strlen(MODEL));
  if (compilation_run(&c) != 0) {
    CHECK(!"the model compiles");
    return;
  }
  Engine *in = interp_engine_new(c.opt_g, c.layout, 4);
  in->grad_part = slow_grad_part;
  in->ws_bytes = 64;
  main_tid = gettid();
  int threads = 0;
  CHECK(!par_engine_threads(in, &threads) && threads == 1);
  Engine *e = par_engine_new(in, 2);
  CHECK(!par_engine_threads(e, &threads) && threads == 2);
  double x[16] = {0}, t[8] = {0};
  e->train_epoch(e, x, t, 8); /* two steps of 4 rows: 2 per thread */
  e->destroy(e);
  /* the feature split's engine (over the interpreter, which has no
     products to split: the same training) */
  Engine *f = par_fork_engine_new(interp_engine_new(c.opt_g, c.layout, 4));
  CHECK(par_engine_threads(f, &threads) && threads == 2);
  CHECK(isfinite(f->train_epoch(f, x, t, 8)));
  f->destroy(f);
  source_free(&c.src);
  arena_free(&c.arena);
  CHECK(worker_tid != 0 && worker_tid != main_tid);
  printf("waiting worker: %c, waiting main thread: %c\n", worker_state, main_state);
  CHECK(worker_state == 'S');
  CHECK(main_state == 'S');
}

static void test_spin_limits(void) {
  /* the target follows the cost of a wake, within the bounds */
  CHECK(par_spin_target(0, false) == PAR_SPIN_MIN_NS);
  CHECK(par_spin_target(1000, false) == PAR_SPIN_MIN_NS);
  CHECK(par_spin_target(40000, false) == 60000);
  CHECK(par_spin_target(200000, false) == 300000);
  CHECK(par_spin_target(800000, false) == PAR_SPIN_MAX_NS);
  CHECK(par_spin_target(INT64_MAX / 4, false) == PAR_SPIN_MAX_NS);
  /* a thread the kernel preempted (its CPU shared with other work) spins
     at most PAR_SPIN_SHARED_MAX_NS, less than a thread with a CPU of its own */
  CHECK(par_spin_target(40000, true) == 60000);
  CHECK(par_spin_target(800000, true) == PAR_SPIN_SHARED_MAX_NS);
  CHECK(PAR_SPIN_SHARED_MAX_NS < PAR_SPIN_MAX_NS);
  /* the time a thread waited for a CPU: schedstat's second number */
  CHECK(par_schedstat_queued("6819217 33502476 3\n") == 33502476);
  CHECK(par_schedstat_queued("0 0 0\n") == 0);
  CHECK(par_schedstat_queued("6819217\n") == -1);
  CHECK(par_schedstat_queued("") == -1);
  int64_t target = 60000;
  /* a spin that succeeds: the limit grows back, never past the target */
  CHECK(par_spin_next(8000, target, 5000, false) == 8000 + 2000 + PAR_SPIN_MIN_NS);
  CHECK(par_spin_next(target, target, 5000, false) == target);
  /* a wait that slept but that the whole target would have covered:
     spin the whole target next time */
  CHECK(par_spin_next(4000, target, 45000, true) == target);
  /* a longer one (the other thread was late, e.g. preempted): half as long,
     never below the minimum */
  CHECK(par_spin_next(target, target, 5000000, true) == target / 2);
  CHECK(par_spin_next(PAR_SPIN_MIN_NS, target, 5000000, true) == PAR_SPIN_MIN_NS);
  /* what a sleep cost the sleeper: from the wake's start until it ran,
     counted only for a wake that began while it slept */
  CHECK(par_resume_cost(1000, 5000, 125000) == 120000);
  CHECK(par_resume_cost(1000, 900, 125000) == -1);
  CHECK(par_resume_cost(1000, 1000, 125000) == -1);
  /* how long the other thread took: until its wake, not until the sleeper
     ran again. A 45 us wait for the sum and update that slept on a 4 us
     limit and ran 200 us after the wake was not late: the next spin covers
     the whole target */
  CHECK(par_waited(0, 4000, 45000, 0, 245000) == 45000);
  CHECK(par_spin_next(4000, target, par_waited(0, 4000, 45000, 0, 245000), true) == target);
  /* nor from before the waker's own return from a sleep during the wait:
     its way back is what its wake cost. Two threads that each sleep
     through a wait for the other, whose wakes cost 300 us: the other
     thread ran again 300 us into the wait and woke this one 15 us later.
     Counted from the start, 315 us against a target of 60 would halve
     the limit at every step, and both threads would keep sleeping */
  CHECK(par_waited(0, 60000, 315000, 300000, 600000) == 15000);
  CHECK(par_spin_next(60000, target, par_waited(0, 60000, 315000, 300000, 600000), true) == target);
  /* a return before the wait began changes nothing */
  CHECK(par_waited(10000, 70000, 400000, 5000, 600000) == 390000);
  /* no wake reached the sleeper (it came before the sleep): until it ran */
  CHECK(par_waited(0, 4000, 3000, 0, 4500) == 4500);
  CHECK(par_waited(0, 4000, 3000, 2000, 4500) == 4500);
  CHECK(par_waited(1000, 4000, 4000, 0, 9000) == 8000);
  /* repeated late partners: down to the minimum in a few waits */
  int64_t limit = target;
  for (int i = 0; i < 8; i++) limit = par_spin_next(limit, target, 10000000, true);
  CHECK(limit == PAR_SPIN_MIN_NS);
}

/* Phases of steps of ns each (drop or not: the time of the way the step
 * took); returns how many of the steps dropped. */
static int drop_phases(ParDrop *d, int phases, int64_t without_ns, int64_t with_ns) {
  int dropped = 0;
  for (int i = 0; i < phases * PAR_DROP_PHASE; i++) {
    dropped += d->drop;
    par_drop_next(d, d->drop ? with_ns : without_ns);
  }
  return dropped;
}

static void test_drop_choice(void) {
  ParDrop d;
  par_drop_init(&d);
  /* the first phase drops, the second does not (steps of 2 and 3 ms) */
  CHECK(drop_phases(&d, 1, 3000000, 2000000) == PAR_DROP_PHASE);
  CHECK(drop_phases(&d, 1, 3000000, 2000000) == 0);
  CHECK(d.median[0] == 3000000 && d.median[1] == 2000000);
  /* dropping is faster: it drops, but phase PAR_DROP_RECHECK + 1 tries
     the other way once more, and then one phase of every PAR_DROP_EVERY */
  CHECK(drop_phases(&d, PAR_DROP_RECHECK - 2, 3000000, 2000000) == (PAR_DROP_RECHECK - 2) * PAR_DROP_PHASE);
  CHECK(drop_phases(&d, 1, 3000000, 2000000) == 0);
  CHECK(drop_phases(&d, PAR_DROP_EVERY - 1, 3000000, 2000000) == (PAR_DROP_EVERY - 1) * PAR_DROP_PHASE);
  CHECK(drop_phases(&d, PAR_DROP_EVERY, 3000000, 2000000) == (PAR_DROP_EVERY - 1) * PAR_DROP_PHASE);
  /* the machine changes: that phase sees it, and the choice follows */
  CHECK(drop_phases(&d, PAR_DROP_EVERY, 1500000, 2000000) == 0);
  CHECK(drop_phases(&d, PAR_DROP_EVERY, 1500000, 2000000) == PAR_DROP_PHASE);
  /* short steps: after the recheck, no try of the other way before
     PAR_DROP_GAP_NS */
  par_drop_init(&d);
  drop_phases(&d, 2, 300000, 200000);
  CHECK(drop_phases(&d, 4 * PAR_DROP_EVERY, 300000, 200000) == (4 * PAR_DROP_EVERY - 1) * PAR_DROP_PHASE);
  CHECK(drop_phases(&d, 8 * PAR_DROP_EVERY, 300000, 200000) < 8 * PAR_DROP_EVERY * PAR_DROP_PHASE);
  /* a first choice the machine no longer bears out (the caches' way was
     faster in the second phase, dropping is now): the recheck undoes it */
  par_drop_init(&d);
  CHECK(drop_phases(&d, 2, 2000000, 3000000) == PAR_DROP_PHASE);
  CHECK(drop_phases(&d, PAR_DROP_RECHECK - 2, 2000000, 1000000) == 0);
  CHECK(drop_phases(&d, 8, 2000000, 1000000) == 8 * PAR_DROP_PHASE);
  CHECK(d.rechecked);
  /* a phase's median: a few slow steps (preempted) do not move it */
  par_drop_init(&d);
  for (int i = 0; i < PAR_DROP_PHASE; i++) par_drop_next(&d, i % 5 == 0 ? 9000000 : 200000);
  CHECK(d.median[1] == 200000 && !d.drop);
}

int main(void) {
  test_cgroup_text();
  test_spin_limits();
  test_drop_choice();
  test_affinity();
  test_waits_sleep();
  return check_report();
}
