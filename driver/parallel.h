/*
 * parallel.h - training on several threads and several MPI ranks.
 *
 * Both split each batch into shards, compute every shard's gradients with
 * the compiled grad_part (engine.h), and sum them before one optimizer step:
 *
 *   global batch of G rows (P ranks x B rows, in data order)
 *     rank r takes rows [r B, (r+1) B) of it (possibly none at the end)
 *       thread k of N takes an equal slice of those (sizes differ by <= 1)
 *         grad_part: its rows' gradients x 1/G into the thread's own buffer
 *       threads' gradients summed in thread order 0..N-1 into the rank's buffer
 *     MPI_Allreduce(SUM) of the gradient range of the buffer across ranks
 *   update (each rank, the same step on the same numbers)
 *
 * The update sees the summed gradients of the whole global batch, so
 * clip_norm's norm is that batch's, as one process would compute it; it
 * reads the learning rate from the buffer, where the training loop wrote
 * the epoch's rate on every rank.
 *
 * So P ranks with batch B train as one process with batch P x B, up to the
 * order of the additions. A run with N threads is bit-for-bit repeatable; a
 * different N adds the same numbers in a different order.
 */
#ifndef NNC_PARALLEL_H
#define NNC_PARALLEL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"

/* Start MPI when the process was started by mpirun (and nnc has MPI);
 * exits with a message when it was and nnc has not. Ranks other than 0
 * lose their standard output and keep standard error in a temporary file
 * (par_agree passes a failing rank's message to rank 0). Call once, first. */
void par_init(int *argc, char ***argv);
/* Shut MPI down (a no-op without it). */
void par_finalize(void);
int par_rank(void);
int par_size(void);

/* nnc-mpi.so's entry (mpi.c), loaded by par_init under mpirun: the MPI
 * calls nnc makes, all on MPI_COMM_WORLD. */
typedef struct ParMpi {
  void (*init)(int *argc, char ***argv, int *rank, int *size);
  void (*finalize)(void);
  int (*min_int)(int v);                        /* the least v of all ranks */
  void (*sum)(void *data, int count, bool f64); /* element sums over the ranks, in place */
  void (*send_text)(const char *text, int len, int to);
  void (*recv_text)(char *text, int cap, int from);
  void (*bcast)(void *data, int bytes); /* rank 0's bytes to every rank */
} ParMpi;
#define PAR_MPI_SYMBOL "nnc_mpi"

/* Whether flag is set on any rank (every rank must ask at the same point).
 * flag itself without MPI. */
bool par_any(bool flag);

/* Every rank's status (0 ok) to every rank: returns 0 when all are 0, else
 * 1, after rank 0 printed the first failing rank's message when rank 0
 * itself did not fail. A no-op returning status without MPI. */
int par_agree(int status);

/* At the end of a run: a rank that has not yet agreed with the others
 * (it failed before the point where the ranks agree to train, or its task,
 * --predict or --emit, has none) agrees now, so that one rank's failure
 * ends every rank, with its message, instead of leaving the others
 * waiting. Returns status, or 1 when another rank failed. Every rank must
 * call it; a no-op without MPI. */
int par_finish(int status);

/* The CPUs this process may use: its affinity mask (taskset), lowered to a
 * cgroup v2 CPU quota (cpu.max, rounded up) when one is set. */
int par_available_cpus(void);
/* The CPUs a cgroup's cpu.max text ("150000 100000": 2) allows, 0 for none
 * ("max 100000") or text that is not a quota. */
int par_cgroup_cpus(const char *cpu_max);
/* Before training, every rank must be about to run the same steps: facts
 * is a rank's account of them, one thing a line (the compiled model, the
 * options that decide the steps, the data's shape). Rank 0's facts go to
 * every rank; a rank whose facts differ says which line differs, and every
 * rank stops through par_agree. Returns 0 when all agree, else 1. A no-op
 * returning 0 without MPI. */
int par_same_run(const char *facts);

/* The default --threads: the available CPUs when a step of `work` values
 * per row times `batch` rows is large enough to gain, else 1. */
int par_default_threads(int64_t work_per_row, int64_t batch);

/* An engine whose train_epoch splits every batch across `threads` threads
 * and the MPI ranks (inner->grad_part must exist when threads > 1). The rest
 * is inner's; the wrapper owns inner. */
Engine *par_engine_new(Engine *inner, int threads);

/* The feature split of two threads: an engine whose inner engine was
 * compiled with CG_FORK_GEMMS and whose every call runs inner's on this
 * thread in a fork pool (runtime/fork.h), so that each large matrix
 * product is split between this thread and a worker, by output columns
 * or rows. The results are inner's to the bit. inner itself when the
 * worker cannot start (after a note); the wrapper owns inner. */
Engine *par_fork_engine_new(Engine *inner);

/* The threads engine e trains on (*threads; 1 for an engine of neither
 * kind above); true for the feature split's. */
bool par_engine_threads(const Engine *e, int *threads);

/* How long a waiting thread spins before it sleeps in the kernel
 * (parallel.c, await_change): the target is 1.5x the running mean of what
 * waking a sleeping thread costs (from the start of the FUTEX_WAKE until
 * the sleeper runs: par_resume_cost), within [PAR_SPIN_MIN_NS,
 * PAR_SPIN_MAX_NS], or at most PAR_SPIN_SHARED_MAX_NS for a thread whose
 * CPU other work wants (`shared`, below); par_spin_next is a thread's next limit after a wait
 * that slept or not, in which the other thread took waited_ns to change
 * the value (par_waited). */
enum { PAR_SPIN_MIN_NS = 2000, PAR_SPIN_MAX_NS = 1000000, PAR_SPIN_SHARED_MAX_NS = 300000 };
int64_t par_spin_target(int64_t wake_ns, bool shared);
/* A thread whose time waiting for a CPU (runnable, not running) grew by
 * more than PAR_SHARED_QUEUE_NS between two of its sleeps shares its CPU
 * with other work: its next spins follow the shared bound. That time is
 * the second number of /proc/thread-self/schedstat (nanoseconds), which
 * par_schedstat_queued reads (-1 when the text has no such number). */
enum { PAR_SHARED_QUEUE_NS = 20000 };
int64_t par_schedstat_queued(const char *text);
int64_t par_spin_next(int64_t limit, int64_t target, int64_t waited_ns, bool slept);
/* A wait that began at `began`, slept from slept_at and ran again at
 * resumed_at, when the last FUTEX_WAKE began at woken_at, made by a
 * thread that had last run again after a sleep of its own at
 * waker_back_at: how long the other thread took, up to its wake (the
 * sleeper's own return after it is the wake's cost, not the other
 * thread's lateness) and from its own return when that came during the
 * wait (its way back from a sleep is what that sleep's wake cost, not
 * lateness either), or from the start up to the return when the wake
 * began before the sleep (no wake reached it). */
int64_t par_waited(int64_t began, int64_t slept_at, int64_t woken_at, int64_t waker_back_at, int64_t resumed_at);
/* A thread that went to sleep at slept_at and ran again at resumed_at,
 * when the last FUTEX_WAKE began at woken_at: how long the wake took to
 * reach it, or -1 when that wake began before the sleep (it was for an
 * earlier wait; this one ended without one). */
int64_t par_resume_cost(int64_t slept_at, int64_t woken_at, int64_t resumed_at);

/* Whether the threads hand the step's lines to each other through memory
 * ("drop": update_part stores the parameters non-temporally and each
 * thread flushes the other shards' gradient lines it read) or through the
 * caches, chosen by measuring both: steps go in phases of PAR_DROP_PHASE,
 * one way each; the first two phases try both, phase PAR_DROP_RECHECK + 1
 * tries the way not chosen once more, then a phase tries the other way
 * again once PAR_DROP_EVERY phases and PAR_DROP_GAP_NS of steps have
 * passed since the last such try, and the way whose last phase had the
 * lower median step time is used. The same values either way: it moves
 * only where the lines are. */
enum { PAR_DROP_PHASE = 16, PAR_DROP_RECHECK = 6, PAR_DROP_EVERY = 32 };
#define PAR_DROP_GAP_NS 500000000LL
typedef struct ParDrop {
  int64_t t[PAR_DROP_PHASE]; /* this phase's step times */
  int n;                     /* steps in this phase so far */
  int64_t since, since_ns;   /* phases and step time since the last try of the other way */
  int64_t median[2];         /* the last phase's median, without drop and with (0: not measured) */
  bool rechecked;            /* the first choice was tried again (PAR_DROP_RECHECK) */
  bool drop;                 /* this phase's way */
} ParDrop;
void par_drop_init(ParDrop *d);
/* After a step of step_ns taken the way d->drop says: the way of the next. */
bool par_drop_next(ParDrop *d, int64_t step_ns);

#endif
